"""Per-class AP@[.5:.95] of every arm (mean over its seeds) from metrics.json's ``per_class_ap``, whose
category ids 1..C name data.json's classes in order; the difference where both standard arms ran."""

from __future__ import annotations

from ....rundir import STANDARD_ARMS
from .. import common
from ..common import Arm


def _class_ap(arm: Arm, category: int) -> float | None:
    return common.mean([((arm["metrics"][s].get("test") or {}).get("per_class_ap") or {}).get(str(category)) for s in arm["seeds"]])


def per_class_ap(arms: dict[str, Arm], classes: list[str]) -> dict | None:
    """None where no seed stored per-class AP."""
    values = {name: [_class_ap(arm, k + 1) for k in range(len(classes))] for name, arm in arms.items()}
    values = {name: v for name, v in values.items() if any(x is not None for x in v)}
    if not values:
        return None
    paired = all(a in values for a in STANDARD_ARMS)
    rows = []
    for k, name in enumerate(classes):
        diff = None
        if paired and None not in (values["transfer"][k], values["scratch"][k]):
            diff = values["transfer"][k] - values["scratch"][k]
        rows.append({"name": name, "values": {arm: v[k] for arm, v in values.items()}, "diff": diff})
    if paired:
        rows.sort(key=lambda r: -(r["diff"] if r["diff"] is not None else -2.0))
    return {"arms": list(values), "rows": rows, "paired": paired,
            "seeds": {name: len(arms[name]["seeds"]) for name in values}}
