"""The gap between the arms as the target training set grows (shots.json)."""

from __future__ import annotations

from .. import plots


def shots_section(shots: dict) -> dict | None:
    points = [p for p in shots.get("points") or []
              if isinstance(p, dict) and isinstance(p.get("n_train"), (int, float)) and isinstance(p.get("gap"), (int, float))]
    if not points:
        return None
    return {"chart": plots.shots_curve(points), "points": sorted(points, key=lambda p: p["n_train"])}
