"""Transferability of a detection run's own pretrained backbone (analysis/transferability.json, beside the same
detector at random initialisation) and ``compare`` across detection runs: each run's place by every detection score
(``logme_box`` included) beside its place by the measured mAP and AP50, Kendall's tau from three runs."""

from __future__ import annotations

import json

import pytest
from detection_report_fixtures import write_detection_run
from scipy import stats

from xferdiag.commands.analyze import analyze_run
from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
from xferdiag.report import fmt, render_report
from xferdiag.report.compare import compare_runs, render_compare
from xferdiag.rundir import RunDir, read_json, write_json
from xferdiag.tasks.descriptor import describe_task
from xferdiag.tasks.detection.data import make_scenes, write_coco
from xferdiag.tasks.detection.task import DetectionTask
from xferdiag.tasks.detection.transferability import SCORES


def test_compare_sets_the_detection_scores_rank_computes():
    assert describe_task("detection").scores == SCORES == DetectionTask.rank_scores and "logme_box" in SCORES
    assert "transferability" in describe_task("detection").analyses


@pytest.mark.slow
def test_a_detection_runs_analysis_scores_its_imagenet_backbone_above_random_weights(tmp_path, one_thread):
    """The face scenes rank's test reads (40 scenes, seed 0): ImageNet MobileNetV2 above the same backbone at random
    initialisation by LogME, shrunk H-score and the box-regression LogME, as ``rank`` orders them; the report shows both."""
    write_coco(make_scenes(40, seed=0), tmp_path / "faces")
    root = write_detection_run(tmp_path / "run")
    meta = read_json(RunDir(root).run_json)
    write_json(RunDir(root).run_json, {**meta, "config": {**meta["config"], "data": str(tmp_path / "faces"),
                                                          "backbone": "mobilenet_v2",
                                                          "pretrained_checkpoint": mobilenet_v2_imagenet_weights()}})
    results = analyze_run(root, n_permutations=50, quiet=True)
    saved = read_json(RunDir(root).transferability_json)
    assert saved == json.loads(json.dumps(results["transferability"]))
    assert (saved["model"], saved["split"], saved["n"], saved["unit"]) == ("pretrained", "train", 24, "images")
    assert saved["reference"]["model"] == "random initialisation" and saved["transfer"] == "backbone"
    assert saved["reference"]["transfer"] == "scratch" and saved["boxes"] == saved["reference"]["boxes"] > 20
    for score in ("logme", "h_score_shrinkage", "logme_box"):
        assert saved["scores"][score] > saved["reference"]["scores"][score], score
    assert set(saved["not_applicable"]) == {"leep", "nce"}
    assert results["shift"]["instance"]["objects"]["mmd"]["groups"] == (results["shift"]["instance"]["objects"]["n_source_images"]
                                                                        + results["shift"]["instance"]["objects"]["n_target_images"])
    html = render_report(root).html
    section = html[html.index('id="transferability"'):]
    section = section[:section.index("</section>")]
    assert "At random initialisation" in section and "LogME (boxes)" in section and "24 images, 44 boxes" in section
    assert f">{fmt.num(saved['reference']['scores']['logme_box'], 4)}<" in section


def _runs(tmp_path, outcomes: dict[str, tuple[float, float, dict]]) -> list:
    """Hand-made detection runs (tests/detection_report_fixtures.py) whose transfer seeds score the given mAP and AP50 and
    whose transferability.json holds the given scores."""
    runs = []
    for name, (map_, ap50, scores) in outcomes.items():
        run = RunDir(write_detection_run(tmp_path / name))
        for seed in (0, 1):
            folder = run.seed("transfer", seed)
            metrics = read_json(folder.metrics_json)
            write_json(folder.metrics_json, {**metrics, "test": {**metrics["test"], "map": map_ + 0.01 * seed, "ap50": ap50}})
        write_json(run.transferability_json, {"model": "pretrained", "split": "train", "n": 4, "scores": scores,
                                              "not_applicable": {}, "notes": {}, "seconds": {}})
        runs.append(run.root)
    return runs


def test_compare_of_two_detection_runs_puts_predicted_beside_measured_order(tmp_path):
    """LogME and H-score put run b first, the box LogME run a; a measured the better mAP and AP50."""
    runs = _runs(tmp_path, {"a": (0.40, 0.70, {"logme": -0.5, "h_score": 0.6, "h_score_shrinkage": 0.5, "logme_box": -1.2}),
                            "b": (0.20, 0.50, {"logme": -0.1, "h_score": 0.8, "h_score_shrinkage": 0.6, "logme_box": -1.4})})
    comparison = compare_runs(runs)
    orders = comparison["orders"]
    assert orders["scores"] == list(SCORES) and orders["measured"][:2] == ["transfer_mean", "transfer_second_mean"]
    a, b = orders["runs"]
    assert (a["logme"], a["logme_box"], a["transfer_mean"], a["transfer_second_mean"]) == (2, 1, 1, 1)
    assert (b["logme"], b["logme_box"], b["transfer_mean"], b["transfer_second_mean"]) == (1, 2, 2, 2)
    assert comparison["runs"][0]["logme_box"] == -1.2
    report = render_compare(runs, tmp_path / "cmp.html")
    page = (tmp_path / "cmp.html").read_text()
    table = page[page.index("Predicted and measured order"):]
    assert "by LogME (boxes)" in table and "measured: transfer AP50" in table and "Needs ≥ 3 runs for Kendall" in table
    assert "logme_box" in (tmp_path / "cmp.csv").read_text().splitlines()[0]
    assert not any("transferability" in line for line in report.missing)


def test_compare_of_three_detection_runs_gives_kendalls_tau_of_the_box_score(tmp_path):
    box = {"a": -1.0, "b": -1.3, "c": -1.1}
    runs = _runs(tmp_path, {name: (m, m + 0.3, {"logme": -0.5, "logme_box": box[name]})
                            for name, m in (("a", 0.40), ("b", 0.30), ("c", 0.20))})
    comparison = compare_runs(runs, measure="transfer_mean")
    tau = {t["score"]: t for t in comparison["kendall"]}
    expected = stats.kendalltau([-1.0, -1.3, -1.1], [0.405, 0.305, 0.205]).statistic
    assert tau["logme_box"]["tau"] == pytest.approx(expected) == pytest.approx(1 / 3) and tau["logme_box"]["n"] == 3
    assert tau["logme"]["tau"] is None and "the same for every run" in tau["logme"]["note"]
    assert [t["score"] for t in comparison["kendall"]] == list(SCORES)


def test_too_few_training_boxes_leave_every_score_not_applicable_and_say_why(tmp_path):
    """One shot of one object: nothing to score, each score's reason given, no model built."""
    from xferdiag.config import RunConfig
    from xferdiag.tasks.detection.analysis import transferability

    write_coco(make_scenes(8, seed=0, size=64, max_objects=1, empty_fraction=0.0), tmp_path / "single")
    config = RunConfig(data=str(tmp_path / "single"), model="fasterrcnn", backbone="mobilenet_v2", shots=[1],
                       pretrained_checkpoint=mobilenet_v2_imagenet_weights())
    result = transferability(config)
    assert (result["n"], result["scores"], set(result["not_applicable"])) == (1, {}, set(SCORES))
    assert result["not_applicable"]["logme_box"] == "1 box in 1 training image: too few to score (at least 3)"
