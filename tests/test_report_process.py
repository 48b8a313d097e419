"""``xferdiag report`` on a computed run renders without any model: a fresh interpreter loads no torch (issue 26).

Rendering needs only the run's files; torch, torchvision and the explainers' libraries cost seconds
to import, which a user re-opening a report should not wait for. Their time is measured in
benchmarks/bench_report_process.py; here only what is imported is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from report_fixtures import write_full_run

from xferdiag.rundir import STEPS, RunDir, RunStatus, read_json

ROOT = Path(__file__).resolve().parents[1]
MODEL_LIBRARIES = ("torch", "torchvision", "captum", "shap", "lime", "transformers", "timm")

PROBE = r"""
import json, sys
from xferdiag.cli import main

codes = [main(argv) for argv in json.loads(sys.argv[1])]
from xferdiag import build_report  # the Python API's too (its module imports the computing commands on first use)
print(json.dumps({"codes": codes, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""
"""Runs the command line's ``main`` as ``python -m xferdiag`` does, imports the API's ``build_report``, then
says which of the libraries it loaded."""


def _never() -> bool:
    raise AssertionError("has_pretrained asked although the analysis is there")


def test_the_fixture_is_a_computed_run(tmp_path):
    run = RunDir(write_full_run(tmp_path / "run"))
    status = RunStatus.of(run, read_json(run.run_json)["config"], _never)
    assert status.done == frozenset(STEPS) and not any(status.can_compute(step) for step in STEPS)


def test_report_on_a_computed_run_imports_no_torch(tmp_path):
    # both forms in one interpreter (one start, not two): what either imports is still loaded at the end
    run = write_full_run(tmp_path / "run")
    outs = [tmp_path / "no-compute.html", tmp_path / "compute.html"]
    argv = [["report", str(run), "--no-compute", "--out", str(outs[0])], ["report", str(run), "--out", str(outs[1])]]
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(MODEL_LIBRARIES)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stderr
    *printed, probe = result.stdout.splitlines()
    assert json.loads(probe) == {"codes": [0, 0], "loaded": []}
    assert printed == [f"report: {out}" for out in outs]  # nothing missing, nothing computed
    verdict = read_json(RunDir(run).verdict_json)["verdict"]
    assert all(f'class="banner {verdict}"' in out.read_text() for out in outs)
