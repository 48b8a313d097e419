"""docs/tutorial.md stays true: its script (examples/tutorial.py) runs end to end at the small size, and every
number the page quotes is the one the full-size run of that script wrote to docs/tutorial_results.json."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.detection_helpers import NOT_INSTALLED, mobilenet_v2_file
from xferdiag.rundir import VERDICTS, RunDir, read_json, read_metrics

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "tutorial.py"
PAGE = ROOT / "docs" / "tutorial.md"
RESULTS = ROOT / "docs" / "tutorial_results.json"


def _tutorial():
    spec = importlib.util.spec_from_file_location("tutorial_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skip_without_assets() -> None:
    from xferdiag.modalities.image.fashion import FILES, ROOT as FASHION

    if mobilenet_v2_file() is None:
        pytest.skip(NOT_INSTALLED)
    missing = [str(FASHION / f) for f in FILES["test"] if not (FASHION / f).is_file()]
    if missing:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): {', '.join(missing)}")


@pytest.mark.slow
def test_the_small_run_goes_end_to_end(tmp_path):
    """The CI size of the page's script: both commands run, the report exists, and the results it writes
    are the run directory's own numbers (the page quotes the full size's file, written the same way)."""
    _skip_without_assets()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), "small", "--out", "run", "--results", "small.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = RunDir(tmp_path / "run")
    assert run.report_html.is_file()
    res = json.loads((tmp_path / "small.json").read_text())
    assert res["verdict"] in VERDICTS and res["verdict"] == read_json(run.verdict_json)["verdict"]
    for arm in ("transfer", "scratch"):
        assert res["arms"][arm]["seeds"] == [0, 1]
        assert res["arms"][arm]["test_accuracy"] == [read_metrics(run.seed(arm, k))["test"]["accuracy"] for k in (0, 1)]
    for row in res["per_seed"]:  # verdict.json's pairs are the arms' own test accuracies
        assert row["transfer"] == res["arms"]["transfer"]["test_accuracy"][row["seed"]]
        assert row["gap"] == pytest.approx(row["transfer"] - row["scratch"])
    assert res["headline"].startswith("Transfer")  # the report's banner sentence was found
    assert res["terminal"][0] == f"$ {res['commands'][0]}" and f"report: {Path('run') / 'report.html'}" in res["terminal"]
    assert res["health"]["val_size"] == 100 and res["health"]["chance"] == pytest.approx(0.1)


def test_the_page_quotes_the_full_run():
    """Every number, sentence and command the page shows comes from the full run's results file, and that file
    is the script's present recipe at full size (a changed recipe needs a new run and new numbers)."""
    tutorial, res = _tutorial(), json.loads(RESULTS.read_text())
    page = re.sub(r" *\\\n *", " ", PAGE.read_text())  # a command the page breaks over lines is one line
    assert res["size"] == "full" and res["settings"] == tutorial.SIZES["full"]
    assert res["commands"] == [tutorial.shown(c) for c in tutorial.commands("full", "tutorial-run")]
    missing = [quote for quote in tutorial.quotes(res) if quote not in page]
    assert not missing, f"docs/tutorial.md does not say (rerun 'python examples/tutorial.py full' and update the page): {missing}"
    blocks = re.findall(r"```text\n(.*?)```", page, re.S)
    assert "\n".join(res["terminal"]) + "\n" in blocks, "the page's terminal excerpt is not what the full run printed"


def test_quotes_format_as_the_report_does():
    """The page's numbers read as the report writes them: hand-checked values."""
    tutorial = _tutorial()
    assert tutorial.minutes(59.4) == "59 s" and tutorial.minutes(182.4) == "3 min 2 s"
    res = json.loads(RESULTS.read_text())
    res.update(gap=0.1234, ci95=[-0.01, 0.2])
    said = tutorial.quotes(res)
    assert "+12.3 points" in said and "\u22121.0 to +20.0" in said
