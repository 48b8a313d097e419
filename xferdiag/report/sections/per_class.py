"""Per-class accuracy and confusion matrices, pooling each arm's test predictions over its seeds."""

from __future__ import annotations

import numpy as np

from ...rundir import STANDARD_ARMS
from .. import plots
from .common import Arm

MAX_CLASS_ROWS = 20  # the classes transfer helped most and least, when there are more


def per_class(arms: dict[str, Arm], classes: list[str]) -> dict | None:
    with_preds = {name: arm for name, arm in arms.items() if arm["predictions"]}
    if not with_preds:
        return None
    c = len(classes)
    matrices, accuracy, pooled_seeds = {}, {}, {}
    for name, arm in with_preds.items():
        labels = np.concatenate([p.labels for p in arm["predictions"].values()])
        preds = np.concatenate([p.predictions for p in arm["predictions"].values()])
        matrices[name] = np.bincount(labels * c + preds, minlength=c * c).reshape(c, c)
        accuracy[name] = np.diag(matrices[name]) / np.maximum(matrices[name].sum(1), 1)
        pooled_seeds[name] = sorted(arm["predictions"])
    support = next(iter(matrices.values())).sum(1) / len(next(iter(pooled_seeds.values())))
    paired = all(a in accuracy for a in STANDARD_ARMS)
    diff = accuracy["transfer"] - accuracy["scratch"] if paired else None
    order = np.argsort(-diff) if paired else np.argsort(accuracy[next(iter(accuracy))])
    if len(order) > MAX_CLASS_ROWS:
        order = np.concatenate([order[: MAX_CLASS_ROWS // 2], order[-MAX_CLASS_ROWS // 2:]])
    rows = [{"name": classes[k], "support": support[k], "values": {arm: accuracy[arm][k] for arm in accuracy},
             "diff": None if diff is None else diff[k]} for k in order]
    return {
        "arms": list(accuracy), "rows": rows, "paired": paired, "truncated": c > MAX_CLASS_ROWS,
        "pooled": "; ".join(f"{arm}: seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"
                            for arm, s in pooled_seeds.items()),
        "bars": plots.per_class_accuracy(classes, accuracy),
        "confusion": plots.confusion_matrices(classes, matrices),
    }
