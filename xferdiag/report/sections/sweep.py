"""A sweep's arms side by side (verdict.json's ``sweep``, ``verdicts``, ``ranking`` and ``pairs``): every transfer
arm's gap to the one shared scratch arm, with its interval and verdict, ranked, the forest plot of the gaps, and the
paired comparison of every two transfer arms."""

from __future__ import annotations

from ...tasks.descriptor import TaskDescriptor
from .. import plots
from ..interpret import sweep_lede
from .common import Arm, mean, metric_of


def is_sweep(verdict: dict | None) -> bool:
    """Whether verdict.json holds a sweep's verdicts (several transfer arms against one scratch arm)."""
    return isinstance((verdict or {}).get("sweep"), dict) and isinstance(verdict.get("verdicts"), dict)


def sweep_section(verdict: dict | None, arms: dict[str, Arm], terms: TaskDescriptor) -> dict | None:
    """The sweep's ranking table and forest plot; None for a run with one transfer arm."""
    if not is_sweep(verdict):
        return None
    sweep, verdicts = verdict["sweep"], verdict["verdicts"]
    values = dict(zip(sweep.get("arms") or [], sweep.get("values") or []))
    rows = []
    for entry in verdict.get("ranking") or []:
        arm = entry.get("arm")
        own = verdicts.get(arm) if isinstance(verdicts.get(arm), dict) else {}
        seeds = arms.get(arm, {}).get("metrics", {})
        rows.append({"rank": entry.get("rank"), "arm": arm, "value": values.get(arm),
                     "mean": mean([metric_of(m, terms.metric) for m in seeds.values()]),
                     "gap": entry.get("gap"), "ci95": entry.get("ci95"), "verdict": entry.get("verdict"),
                     "p_value": own.get("p_value"),
                     "warnings": [str(w.get("message")) for w in own.get("warnings") or [] if isinstance(w, dict)]})
    scratch = sweep.get("baseline", "scratch")
    return {
        "pairs": [p for p in verdict.get("pairs") or [] if isinstance(p, dict)],
        "setting": sweep.get("setting"), "scratch": scratch, "rows": rows,
        "scratch_mean": mean([metric_of(m, terms.metric) for m in arms.get(scratch, {}).get("metrics", {}).values()]),
        "lede": sweep_lede(sweep, len(verdict.get("seeds") or [])),
        "chart": plots.gap_forest([r["arm"] for r in rows], [r["gap"] for r in rows],
                                  [tuple(r["ci95"]) if r["ci95"] else None for r in rows], [r["verdict"] for r in rows],
                                  metric=terms.label, arms=f"transfer arm − {scratch}") if rows else None,
    }
