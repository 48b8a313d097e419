"""The detection sections of the report on a hand-made run with known detections (tests/detection_report_fixtures.py):
the TIDE breakdown of an arm whose only errors are localisation errors, per-class AP, the gallery's order,
class names escaped, and a detection report that loads no torch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from detection_report_fixtures import CLASSES, arm_results, write_detection_run

from xferdiag.commands.verdict import verdict_for_run
from xferdiag.report import render_report
from xferdiag.rundir import RunDir, read_json
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


def test_the_gallery_shows_the_largest_difference_first(run):
    html = render_report(run).html
    gallery = html[html.index('id="gallery"'):]
    shown = re.findall(r"<figcaption>Image (\d+)", gallery)
    assert shown == ["3", "2"]  # scratch AP50 0 on image 3, 0.5 on image 2, equal elsewhere
    assert "2 of the 4 test images differ" in gallery
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
