"""Per-seed headline test metric of every arm (a classifier's accuracy, a detector's mAP), the gap where both
standard arms ran, and per-arm means."""

from __future__ import annotations

import numpy as np

from ...rundir import STANDARD_ARMS
from ...tasks.descriptor import TaskDescriptor
from .common import Arm, mean, metric_of


def seed_table(arms: dict[str, Arm], terms: TaskDescriptor) -> dict:
    seeds = sorted({s for arm in arms.values() for s in arm["seeds"]})
    paired = all(a in arms for a in STANDARD_ARMS)
    rows = []
    for s in seeds:
        values = {name: metric_of(arm["metrics"].get(s), terms.metric) for name, arm in arms.items()}
        gap = values["transfer"] - values["scratch"] if paired and None not in (values["transfer"], values["scratch"]) else None
        rows.append({"seed": s, "values": values, "gap": gap})
    return {"arms": list(arms), "rows": rows, "paired": paired, "summary": [_summary(name, arm, terms) for name, arm in arms.items()]}


def _summary(name: str, arm: Arm, terms: TaskDescriptor) -> dict:
    """One arm's means over its seeds (and the spread of its headline metric)."""
    metrics = [arm["metrics"][s] for s in arm["seeds"]]
    scores = [v for v in (metric_of(m, terms.metric) for m in metrics) if v is not None]
    return {
        "arm": name, "n": len(arm["seeds"]), "headline": mean(scores),
        "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
        "columns": [(mean([metric_of(m, key) for m in metrics]), style) for key, _, style in terms.columns],
        "epochs": mean([m.get("epochs_run") for m in metrics]),
        "best_epoch": mean([m.get("best_epoch") for m in metrics]),
        "seconds": mean([m.get("train_seconds") for m in metrics]),
    }
