"""The detection sections of the report on a hand-made run with known detections (tests/detection_report_fixtures.py):
the TIDE breakdown of an arm whose only errors are localisation errors, per-class AP, the gallery's order,
class names escaped, and a detection report that loads no torch."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from detection_report_fixtures import CLASSES, arm_results, write_detection_run

from xferdiag.analyzers.shift import two_sample_shift
from xferdiag.commands.verdict import verdict_for_run
from xferdiag.report import fmt, render_report
from xferdiag.report.interpret import interpret_shift, tide_sentences
from xferdiag.report.sections.common import load_arms
from xferdiag.report.sections.detection import pr_curves as pr_section
from xferdiag.report.sections.detection.evidence import detection_evidence
from xferdiag.rundir import RunDir, read_json, write_json
from xferdiag.tasks.detection.average_precision import evaluate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = write_detection_run(tmp_path_factory.mktemp("det"))
    verdict_for_run(root)
    return root


def test_the_verdict_stores_a_tide_breakdown_with_localisation_only(run):
    tide = read_json(RunDir(run).verdict_json)["tide"]
    ground_truth = read_json(RunDir(run).test_annotations_json)
    scratch_ap50 = evaluate(ground_truth, arm_results("scratch", ground_truth)).ap50
    assert 0 < scratch_ap50 < 1
    assert tide["arms"]["transfer"]["ap50"] == pytest.approx(1.0)
    assert all(v == 0 for v in tide["arms"]["transfer"]["lost"].values())
    scratch = tide["arms"]["scratch"]
    assert scratch["ap50"] == pytest.approx(scratch_ap50)
    assert scratch["lost"]["localisation"] == pytest.approx(1 - scratch_ap50)  # the oracle makes every box right
    assert all(v == 0 for kind, v in scratch["lost"].items() if kind != "localisation")
    assert scratch["counts"]["localisation"] == 2 and scratch["counts"]["missed"] == 0
    loc = tide["difference"]["localisation"]
    assert loc["gap"] == pytest.approx(-(1 - scratch_ap50))
    assert loc["ci95"][0] <= loc["gap"] <= loc["ci95"][1]
    assert tide["difference"]["background"]["gap"] == 0


def test_sections_render_with_known_numbers_and_escaped_class_names(run):
    html = render_report(run).html
    for anchor in ("dataset", "class-ap", "pr", "errors", "gallery"):
        assert f'id="{anchor}"' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "Neither arm lost any AP50 to these types: classification, both, duplicate, background, missed." in html
    rows = re.findall(r'<tr><td>(face|&lt;b&gt;x&lt;/b&gt;)</td><td class="num">([^<]+)</td><td class="num">([^<]+)</td>', html)
    assert rows[0][1] == "100.0%"  # per-class AP: transfer finds every box exactly
    assert "four hand-made images of random pixels" in html
    assert "A dash: no value" not in html  # every loss has a value here


def test_the_gallery_shows_the_largest_difference_first(run):
    html = render_report(run).html
    gallery = html[html.index('id="gallery"'):]
    shown = re.findall(r"<figcaption>Image (\d+)", gallery)
    assert shown == ["3", "2"]  # scratch AP50 0 on image 3, 0.5 on image 2, equal elsewhere
    assert "2 of the 4 test images with objects differ" in gallery
    assert gallery.count('src="data:image/png;base64,') == 2


def test_the_gallery_says_so_when_the_images_are_gone(run, tmp_path):
    data = read_json(RunDir(run).data_json)
    moved = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run), str(moved)], check=True)
    data["spec"] = str(tmp_path / "nowhere")
    (moved / "data.json").write_text(json.dumps(data))
    html = render_report(moved).html
    gallery = html[html.index('id="gallery"'):]
    assert "The test images could not be read from" in gallery and "<figcaption>Image" not in gallery


def test_report_on_a_detection_run_imports_no_torch(run, tmp_path):
    probe = ("import json, sys\nfrom xferdiag.cli import main\ncode = main(['report', sys.argv[1], '--out', sys.argv[2]])\n"
             "print(json.dumps({'code': code, 'loaded': sorted(m for m in ('torch', 'torchvision') if m in sys.modules)}))")
    out = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-c", probe, str(run), str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0, "loaded": []}
    assert 'id="gallery"' in out.read_text() and CLASSES[0] in out.read_text()


def test_per_class_ap_and_gallery_numbers_are_the_evaluators(run):
    html = render_report(run).html
    ground_truth = read_json(RunDir(run).test_annotations_json)
    scratch = evaluate(ground_truth, arm_results("scratch", ground_truth)).per_class_ap
    section = html[html.index('id="class-ap"'):html.index('id="pr"')]
    for k, name in enumerate(("face", "&lt;b&gt;x&lt;/b&gt;")):
        assert f'<td>{name}</td><td class="num">100.0%</td><td class="num">{scratch[k + 1] * 100:.1f}%</td>' in section
    gallery = html[html.index('id="gallery"'):]
    assert "AP50 transfer 100.0% (2 boxes drawn), scratch 0.0% (2 boxes drawn)" not in gallery  # image 3 holds one object
    assert "Image 3 (<code>img3.png</code>): 1 × face. AP50 transfer 100.0% (1 box drawn), scratch 0.0% (1 box drawn)" in gallery
    assert "scratch 50.0%" in gallery


def test_the_tide_sentences_agree_with_the_intervals(run):
    html = render_report(run).html
    loc = read_json(RunDir(run).verdict_json)["tide"]["difference"]["localisation"]
    if loc["ci95"][0] <= 0 <= loc["ci95"][1]:
        assert "Unchanged within the interval: localisation." in html
    else:
        assert f"transfer removed {-loc['gap'] * 100:.1f} points of AP50 lost to localisation" in html


def test_a_notable_type_is_put_in_words():
    tide = {"arms": {"transfer": {"ap50": 0.6, "lost": {"background": 0.01, "localisation": 0.05}},
                     "scratch": {"ap50": 0.5, "lost": {"background": 0.051, "localisation": 0.05}}},
            "difference": {"background": {"gap": -0.041, "ci95": [-0.06, -0.02]},
                           "localisation": {"gap": 0.0, "ci95": [-0.01, 0.01]}}}
    assert tide_sentences(tide, ["transfer", "scratch"]) == [
        "transfer removed 4.1 points of AP50 lost to background false positives compared with scratch (95% CI −6.0 to −2.0).",
        "Unchanged within the interval: localisation."]


def test_many_classes_pool_into_one_curve_whose_area_is_the_ap50(run, monkeypatch):
    monkeypatch.setattr(pr_section, "PR_PANELS_MAX", 1)
    rd = RunDir(run)
    arms = load_arms(rd, len(CLASSES))
    section = pr_section.precision_recall(detection_evidence(rd, arms), list(CLASSES))
    assert section["pooled"] and section["n_classes"] == 2
    ground_truth = read_json(rd.test_annotations_json)
    for arm in ("transfer", "scratch"):
        assert section["ap50"][arm] == pytest.approx(evaluate(ground_truth, arm_results(arm, ground_truth)).ap50)


def test_a_verdict_made_before_the_breakdown_is_listed_as_missing(run, tmp_path):
    moved = tmp_path / "old"
    subprocess.run(["cp", "-r", str(run), str(moved)], check=True)
    verdict = read_json(RunDir(moved).verdict_json)
    del verdict["tide"]
    (moved / "verdict.json").write_text(json.dumps(verdict))
    report = render_report(moved)
    assert 'id="errors"' not in report.html
    assert any(line.startswith("TIDE error breakdown (verdict.json was made before") for line in report.missing)


def test_a_scratch_arm_that_finds_nothing_leaves_the_missed_loss_undefined(tmp_path):
    root = write_detection_run(tmp_path, scratch_finds_nothing=True)
    tide = verdict_for_run(root)["tide"]
    scratch = tide["arms"]["scratch"]
    assert scratch["ap50"] == 0 and scratch["counts"]["missed"] == 6
    assert math.isnan(scratch["lost"]["missed"])  # no ground truth left once every missed object is fixed
    assert tide["difference"]["missed"] == {"gap": None, "per_seed": [pytest.approx(math.nan, nan_ok=True)] * 2,
                                            "ci95": [None, None], "p_value": None}
    assert read_json(RunDir(root).verdict_json)["tide"]["arms"]["scratch"]["lost"]["missed"] is None
    html = render_report(root).html
    errors = html[html.index('id="errors"'):html.index('id="gallery"')]
    assert re.search(r"<td title=\"[^\"]+\">missed</td>.*?<td class=\"num\">—</td>", errors)
    assert "A dash: no value" in errors


def test_the_shift_section_shows_each_level_and_says_which_moved(run, tmp_path):
    """A shift.json whose images moved (target features 3 sd away) and whose boxes did not (one distribution): the
    table holds each level's proxy A-distance and interval, and the report says the images moved more."""
    rng = np.random.default_rng(0)
    levels = {name: two_sample_shift(rng.normal(0, 1, (40, 6)), rng.normal(move, 1, (40, 6)), n_permutations=50)
              for name, move in (("image", 3.0), ("objects", 0.0), ("background", 3.0))}
    result = {"compared": "source data x against the target data y", "boxes": {"alpha": 0.05, "statistics": []},
              "layer": "backbone body, last stage, global average pool", "n_source": 40, "n_target": 40, **levels["image"],
              "instance": {"layer": "backbone body stage 0 (stride 8)", "objects": {"n_source": 40, "n_target": 40, **levels["objects"]},
                           "background": {"n_source": 40, "n_target": 40, **levels["background"]}, "per_class": []}}
    result["interpretation"] = interpret_shift(result)
    moved = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run), str(moved)], check=True)
    write_json(RunDir(moved).shift_json, result)
    html = render_report(moved).html
    start = html.index('id="level-shift"')
    section = html[start:html.index("</table>", start)]
    for name, label in (("image", "Image (pooled last stage)"), ("objects", "Objects (all classes)"), ("background", "Background boxes")):
        pad = levels[name]["proxy_a_distance"]
        value, low, high = (fmt.num(v, 2) for v in (pad["value"], *pad["ci95"]))
        assert f"<td>{label}</td>" in section and f"{value} ({low} to {high})" in section
    assert levels["image"]["proxy_a_distance"]["ci95"][0] > levels["objects"]["proxy_a_distance"]["ci95"][1]
    assert "The images moved more than the objects in them" in html and "backbone body stage 0 (stride 8)" in section


def test_the_model_line_names_the_pyramid_width_xferdiag_chose():
    """The 128-channel default is not torchvision's 256 (reports/benchmarks.md measures both), so the reader is told the width."""
    from xferdiag.report.sections.setup import _model

    described = {"model": "fasterrcnn:mobilenet_v2", "fpn_channels": 128,
                 "transfer": {"description": "a pretrained classification backbone with new detection layers"}}
    assert _model({"model": described}, {}) == ("fasterrcnn:mobilenet_v2 (128-channel feature pyramid; torchvision's detectors "
                                                "use 256); the transfer arm starts from a pretrained classification backbone "
                                                "with new detection layers")
    assert _model({"model": {"model": "fasterrcnn_mobilenet_v3_large_320_fpn"}}, {}) == "fasterrcnn_mobilenet_v3_large_320_fpn"
