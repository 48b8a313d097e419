"""When does transfer stop helping? The paired verdict at each target-data size, in ``shots.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import rundir


def _mean_test_accuracy(run: rundir.RunDir, arm: str) -> float | None:
    values = [rundir.read_metrics(run.seed(arm, s))["test"]["accuracy"] for s in run.seeds(arm)]
    return float(np.mean(values)) if values else None


def shots_summary(out: Path, roots: list[Path], shots: list[int | str]) -> dict:
    """Collect each size's verdict (computed by its own run directory) into ``out/shots.json``."""
    points = []
    for k, root in zip(shots, roots):
        run = rundir.RunDir(root)
        verdict = rundir.read_json(run.verdict_json)
        data = rundir.read_data(run)
        points.append({
            "shots": k, "n_train": data["splits"]["target"]["train"],
            "transfer_mean": _mean_test_accuracy(run, "transfer"), "scratch_mean": _mean_test_accuracy(run, "scratch"),
            "gap": verdict["gap"], "ci95": verdict["ci95"], "verdict": verdict["verdict"], "path": str(Path(root).relative_to(out)) or ".",
        })
    summary = {"metric": "accuracy", "points": points}
    rundir.write_json(rundir.RunDir(out).shots_json, summary)
    return summary
