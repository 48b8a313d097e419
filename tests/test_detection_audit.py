"""``xferdiag audit`` of a detector fine-tuned elsewhere, and ``compare`` across detection runs.

The detector is fine-tuned by a plain torchvision loop (:mod:`tests.plain_detector`, no xferdiag) and saved the
ways other tools save one: a torchvision-references training checkpoint, and a DDP state_dict of a user's own
builder (``file.py:function``). Each is audited end to end into a report; the audited arm's stored detections
must be the user's model's own, and every stored number what pycocotools computes from the stored files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from scipy import stats

from benchmarks.coco_reference import coco_eval
from tests import plain_detector
from tests.cli_helpers import xferdiag
from tests.detection_report_fixtures import write_detection_run
from xferdiag.errors import InputError
from xferdiag.report.compare import compare_runs, render_compare
from xferdiag.rundir import RunDir, read_json, write_json
from xferdiag.tasks.detection.checkpoints import load_finetuned
from xferdiag.tasks.detection.data import make_scenes, write_coco
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.settings import CPU_SCALE, settings_for

USER_MODULE = """import torchvision


def build(num_classes):
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                                              num_classes=num_classes)
"""


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """COCO scenes with their own train/val/test files (so the user's script and the audit split alike) and a
    "pretrained" MobileNetV3-Large classifier (random weights, as a stand-in for ImageNet's)."""
    root = tmp_path_factory.mktemp("detaudit")
    data = make_scenes(22, seed=5, size=plain_detector.SIZE)
    splits = {"train": np.arange(0, 12), "val": np.arange(12, 15), "test": np.arange(15, 22)}
    write_coco(dataclasses.replace(data, splits=splits), root / "scenes")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_large().state_dict(), root / "mnv3.pt")
    (root / "mydet.py").write_text(USER_MODULE)
    return root


@pytest.fixture(scope="module")
def audits(scenes):
    """The plain loop's model saved references-style and as a DDP state_dict, each audited with a scratch arm and
    reported; the user's own detections on the test split."""
    torch.set_num_threads(1)
    model = plain_detector.fine_tune(scenes / "scenes", scenes / "mnv3.pt", steps=6)
    plain_detector.save_references(model, {"state": {}, "param_groups": []}, scenes / "references.pth", epoch=2)
    plain_detector.save_ddp(model, scenes / "ddp.pt")
    own = plain_detector.predict(model, scenes / "scenes", "test")
    runs = {}
    for name, model_spec, checkpoint in (("references", "fasterrcnn_mobilenet_v3_large_320_fpn", "references.pth"),
                                         ("ddp", "mydet.py:build", "ddp.pt")):
        done = xferdiag("audit", "--data", "scenes", "--model", model_spec, "--checkpoint", checkpoint,
                        "--pretrained-checkpoint", "mnv3.pt", "--image-size", plain_detector.SIZE, "--baseline", "scratch",
                        "--epochs", "1", "--batch-size", "4", "--out", name, cwd=scenes, timeout=900)
        assert done.returncode == 0, done.stderr
        # the first report computes what it lacks (analysis, D-RISE: about a minute), as a user's would; the second
        # renders what the audit wrote, which is what this file checks of it
        report = xferdiag("report", name, *([] if name == "references" else ["--no-compute"]), cwd=scenes, timeout=600)
        assert report.returncode == 0, report.stderr
        runs[name] = (scenes / name, done.stdout)
    return runs, own


def _sorted(results: list[dict]) -> list[dict]:
    return sorted(results, key=lambda r: (r["image_id"], -r["score"], r["bbox"]))


@pytest.mark.slow
@pytest.mark.parametrize("name, form", [("references", "training checkpoint (state_dict under 'model')"),
                                        ("ddp", "state_dict, 'module.' prefixes removed")])
def test_a_detector_trained_by_a_plain_torchvision_loop_is_audited_into_a_report(audits, name, form):
    runs, own = audits
    run, stdout = runs[name]
    meta = read_json(run / "run.json")
    assert meta["audit"]["checkpoint_form"] == form and meta["config"]["task"] == "detection"
    assert meta["model"]["settings"]["min_size"] == plain_detector.SIZE
    assert "audited model:" in stdout and "test mAP@[.5:.95]" in stdout
    verdict = read_json(run / "verdict.json")
    assert verdict["metric"] == "map" and verdict["arms"] == ["transfer", "scratch"] and verdict["seeds"] == [0]
    assert (run / "report.html").stat().st_size > 10_000
    assert "evaluated as is by &#39;xferdiag audit&#39;" in (run / "report.html").read_text()
    assert not (run / "arms/transfer/seed-0/history.csv").exists()
    stored = _sorted(read_json(run / "arms/transfer/seed-0/detections.json"))  # the user's model, as the user runs it
    assert len(stored) == len(own) > 0
    for mine, theirs in zip(stored, _sorted(own)):
        assert (mine["image_id"], mine["category_id"]) == (theirs["image_id"], theirs["category_id"])
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
        np.testing.assert_allclose(mine["bbox"], theirs["bbox"], atol=1e-3)


@pytest.mark.slow
def test_the_audited_numbers_are_pycocotools_numbers_on_the_stored_files(audits):
    pytest.importorskip("pycocotools")
    runs, _ = audits
    for run, _ in runs.values():
        ground_truth = read_json(run / "test_annotations.json")
        verdict = read_json(run / "verdict.json")
        maps = {}
        for arm in ("transfer", "scratch"):
            results = read_json(run / f"arms/{arm}/seed-0/detections.json")
            metrics = read_json(run / f"arms/{arm}/seed-0/metrics.json")["test"]
            reference = coco_eval(ground_truth, results).stats
            assert metrics["map"] == pytest.approx(reference[0], abs=1e-6)
            assert metrics["ap50"] == pytest.approx(reference[1], abs=1e-6)
            assert metrics["ap75"] == pytest.approx(reference[2], abs=1e-6)
            maps[arm] = reference[0]
        assert verdict["gap"] == pytest.approx(maps["transfer"] - maps["scratch"], abs=1e-6)


@pytest.mark.slow
def test_compare_of_the_audited_runs_shows_map_and_ap50(audits):
    runs, _ = audits
    root = runs["references"][0].parent
    done = xferdiag("compare", "references", "ddp", "--out", "cmp.html", cwd=root)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in read_json(root / "cmp.json")["runs"]}
    for name, (run, _) in runs.items():
        test = read_json(run / "arms/transfer/seed-0/metrics.json")["test"]
        assert rows[name]["metric"] == "map" and rows[name]["second_metric"] == "ap50"
        assert rows[name]["transfer_mean"] == pytest.approx(test["map"])
        assert rows[name]["transfer_second_mean"] == pytest.approx(test["ap50"])
    assert rows["references"]["transfer_mean"] == pytest.approx(rows["ddp"]["transfer_mean"], abs=1e-6)  # one model


@pytest.mark.slow
def test_a_detector_for_other_classes_ends_in_one_line_and_writes_nothing(scenes):
    torch.save(plain_detector.build(4).state_dict(), scenes / "three-classes.pt")  # the scenes have one class: 2 outputs
    done = xferdiag("audit", "--data", "scenes", "--model", "fasterrcnn_mobilenet_v3_large_320_fpn", "--checkpoint",
                    "three-classes.pt", "--pretrained-checkpoint", "mnv3.pt", "--out", "wrong", cwd=scenes)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "three-classes.pt" in done.stderr and "class predictor does not fit the target's 1 class plus" in done.stderr
    assert "roi_heads.box_predictor.cls_score.weight (4 x 1024, this detector 2 x 1024)" in done.stderr
    assert not (scenes / "wrong").exists()


def _detection_runs(tmp_path: Path, per_seed: dict[str, tuple[list[float], list[float]]]) -> list[Path]:
    """Hand-made detection runs whose transfer seeds hold the given (mAP, AP50) values, each on its own backbone."""
    runs = []
    for name, (maps, ap50s) in per_seed.items():
        run = write_detection_run(tmp_path / name)
        meta = read_json(RunDir(run).run_json)
        write_json(RunDir(run).run_json, {**meta, "config": {**meta["config"], "backbone": f"timm:{name}"}})
        for seed, (m, a) in enumerate(zip(maps, ap50s)):
            folder = RunDir(run).seed("transfer", seed)
            metrics = read_json(folder.metrics_json)
            write_json(folder.metrics_json, {**metrics, "test": {**metrics["test"], "map": m, "ap50": a}})
        runs.append(run)
    return runs


def test_compare_of_detection_runs_gives_map_and_ap50_with_t_intervals(tmp_path):
    runs = _detection_runs(tmp_path, {"a": ([0.30, 0.34], [0.60, 0.64]), "b": ([0.20, 0.22], [0.50, 0.50])})
    comparison = compare_runs(runs)
    a, b = comparison["runs"]
    half = stats.t.ppf(0.975, 1) * 0.02  # two seeds 0.04 apart: sd 0.04 / sqrt(2), its standard error 0.02
    assert (a["metric"], a["second_metric"]) == ("map", "ap50") and a["model"] == "fasterrcnn on timm:a"
    assert a["transfer_mean"] == pytest.approx(0.32) and a["transfer_second_mean"] == pytest.approx(0.62)
    assert [a["transfer_ci_low"], a["transfer_ci_high"]] == pytest.approx([0.32 - half, 0.32 + half])
    assert [a["transfer_second_ci_low"], a["transfer_second_ci_high"]] == pytest.approx([0.62 - half, 0.62 + half])
    assert b["transfer_second_ci_low"] == pytest.approx(0.50) and b["scratch_mean"] == a["scratch_mean"]
    [pair] = comparison["pairwise"]
    assert pair["difference"] == pytest.approx(0.11)
    report = render_compare(runs, tmp_path / "cmp.html")
    page = (tmp_path / "cmp.html").read_text()
    assert "Transfer mAP@[.5:.95]" in page and "Transfer AP50" in page and "accuracy" not in page
    assert any(line.startswith("a/run: transferability scores (run 'xferdiag analyze") for line in report.missing)


def test_compare_refuses_runs_of_different_tasks(tmp_path):
    detection, other = _detection_runs(tmp_path, {"det": ([0.3, 0.3], [0.5, 0.5]), "cls": ([0.3, 0.3], [0.5, 0.5])})
    meta = read_json(RunDir(other).run_json)
    write_json(RunDir(other).run_json, {**meta, "config": {**meta["config"], "task": "classification"}})
    with pytest.raises(InputError, match="test accuracy cannot be compared with the test mAP"):
        compare_runs([detection, other])


def test_image_size_sets_the_shorter_side_with_the_longer_at_most_one_and_a_half_times_it():
    model = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", 1, settings=settings_for("cpu", 96))
    model.eval()
    square, wide = model.detector.transform([torch.rand(3, 64, 64), torch.rand(3, 64, 256)])[0].image_sizes
    assert square == (96, 96) and wide == (36, 144)  # 64 x 256: scale min(96 / 64, 144 / 256) = 0.5625
    assert settings_for("cpu") == CPU_SCALE


@pytest.mark.parametrize("frozen", [False, True])
def test_a_saved_torchvision_detector_predicts_after_loading_what_it_predicted(tmp_path, frozen):
    """Trainable BatchNorm, and the frozen kind torchvision's recipe gives (no step counts in the file): the loaded
    detector must compute what the saved one did."""
    torch.manual_seed(1)
    theirs = plain_detector.build(3)
    if frozen:
        plain_detector.freeze_batchnorm(theirs)
    for name, buffer in theirs.named_buffers():  # statistics away from their initial values, as training leaves them
        if name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    torch.save(theirs.state_dict(), tmp_path / "detector.pt")
    ours = build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", 2, settings=settings_for("cpu", plain_detector.SIZE))
    form = load_finetuned(ours, tmp_path / "detector.pt")
    assert form == "state_dict"
    image = torch.rand(3, plain_detector.SIZE, plain_detector.SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        [expected], [got] = theirs.eval()([image]), ours.eval()([image])
        batch = image[None].sub(0.5).div(0.25)  # the pyramid alone, on a normalised batch
        maps = zip(theirs.backbone(batch).values(), ours.detector.backbone(batch).values())
    for a, b in maps:  # a random body's maps are tiny (about 1e-7): compared relative to their largest value
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * float(a.abs().max()))
    assert len(expected["boxes"]) > 0
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=1e-3, rtol=0)
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-5, rtol=0)
