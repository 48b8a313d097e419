"""Per-seed test accuracy of every arm, the gap where both standard arms ran, and per-arm means."""

from __future__ import annotations

import numpy as np

from ...rundir import STANDARD_ARMS
from .common import Arm, mean, metric_of


def seed_table(arms: dict[str, Arm]) -> dict:
    seeds = sorted({s for arm in arms.values() for s in arm["seeds"]})
    paired = all(a in arms for a in STANDARD_ARMS)
    rows = []
    for s in seeds:
        values = {name: metric_of(arm["metrics"].get(s)) for name, arm in arms.items()}
        gap = values["transfer"] - values["scratch"] if paired and None not in (values["transfer"], values["scratch"]) else None
        rows.append({"seed": s, "values": values, "gap": gap})
    return {"arms": list(arms), "rows": rows, "paired": paired, "summary": [_summary(name, arm) for name, arm in arms.items()]}


def _summary(name: str, arm: Arm) -> dict:
    """One arm's means over its seeds (and the spread of its accuracy)."""
    metrics = [arm["metrics"][s] for s in arm["seeds"]]
    accs = [v for v in (metric_of(m) for m in metrics) if v is not None]
    return {
        "arm": name, "n": len(arm["seeds"]), "accuracy": mean(accs),
        "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
        "macro_f1": mean([metric_of(m, "macro_f1") for m in metrics]),
        "loss": mean([metric_of(m, "loss") for m in metrics]),
        "epochs": mean([m.get("epochs_run") for m in metrics]),
        "best_epoch": mean([m.get("best_epoch") for m in metrics]),
        "seconds": mean([m.get("train_seconds") for m in metrics]),
    }
