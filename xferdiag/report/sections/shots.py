"""The gap between the arms as the target training set grows (shots.json)."""

from __future__ import annotations

from ...rundir.documents import Shots
from .. import plots


def shots_section(shots: Shots) -> dict | None:
    points = [p for p in shots["points"] if p.get("n_train") is not None and p.get("gap") is not None]
    if not points:
        return None
    return {"chart": plots.shots_curve(points), "points": sorted(points, key=lambda p: p["n_train"])}
