"""The benchmark suite's cheapest path, so the runner and its output never rot unnoticed.

CI runs only this (two quick, dependency-free benchmarks); the full suite is run by hand on an
idle machine (python -m benchmarks.run_all).
"""

from __future__ import annotations

import json

import pytest

from benchmarks import run_all


@pytest.mark.slow
def test_quick_subset_writes_markdown_and_json(tmp_path):
    out = tmp_path / "benchmarks.md"
    assert run_all.main(["--quick", "--only", "logme,verdict_calibration", "--out", str(out)]) == 0

    text = out.read_text()
    assert "CPU:" in text and "torch" in text
    assert "## logme" in text and "## verdict_calibration" in text
    assert "| logme " in text
    assert "A/A, seeds disagree, 3 seeds" in text
    assert "FAILED" not in text
    report = json.loads(out.with_suffix(".json").read_text())
    assert [b["module"] for b in report["benchmarks"]] == ["logme", "verdict_calibration"]
    assert all(b["ok_runs"] == 1 and not b["errors"] for b in report["benchmarks"])


def test_detection_evaluation_benchmark_at_tiny_size(tmp_path):
    pytest.importorskip("pycocotools")
    out = tmp_path / "benchmarks.md"
    assert run_all.main(["--quick", "--only", "detection_eval", "--out", str(out)]) == 0
    assert "## detection_eval" in out.read_text() and "FAILED" not in out.read_text()
    rows = json.loads(out.with_suffix(".json").read_text())["benchmarks"][0]["rows"]
    assert [r["max_abs_difference"] <= 1e-6 for r in rows[:2]] == [True, True]  # the same numbers as pycocotools
    assert rows[2]["name"].startswith("TIDE") and min(rows[2]["ap50_lost"].values()) >= 0


def test_failing_benchmark_is_a_failed_row(tmp_path, monkeypatch):
    def broken(quick=False):
        raise ValueError("boom")

    monkeypatch.setattr("benchmarks.bench_logme.main", broken)
    out = tmp_path / "b.md"
    assert run_all.main(["--quick", "--only", "logme", "--out", str(out)]) == 1
    assert "| bench_logme |" in out.read_text() and "**FAILED**" in out.read_text()
    assert "failed: ValueError: boom" in out.read_text()


def test_missing_peer_is_reported_not_raised(tmp_path, monkeypatch):
    def needs_peer(quick=False):
        raise ModuleNotFoundError("No module named 'torchdrift'", name="torchdrift")

    monkeypatch.setattr("benchmarks.bench_logme.main", needs_peer)
    out = tmp_path / "b.md"
    assert run_all.main(["--quick", "--only", "logme", "--out", str(out)]) == 0
    assert "peer not installed: torchdrift" in out.read_text()


def test_unknown_benchmark_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        run_all.main(["--only", "nope", "--out", str(tmp_path / "b.md")])
    assert exc.value.code == 2
