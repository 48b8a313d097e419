"""The catch-up sweep's judgement (``--scratch-epochs auto``): did scratch training, given 2x or 4x the budget, catch up
with the transfer arm? He, Girshick and Dollár (2019, "Rethinking ImageNet Pre-training") found that it often does.

"Caught up" is a claim of equivalence, so it is shown by an equivalence test, never by an interval that merely
includes 0 (a wide interval includes 0 and shows nothing). TOST (Schuirmann 1987): the gap is within ``margin``
at level ``alpha`` when both one-sided tests reject, which is exactly when the (1 - 2 alpha) interval of the gap lies
inside (-margin, +margin). Torch-free and path-free: the verdict command hands it each budget's intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

CATCH_UP_MARGIN = 0.02
"""The default equivalence margin: a gap within 2 accuracy (or mAP) points counts as caught up (``--catch-up-margin``)."""


def equivalent(interval: Sequence[float | None], margin: float) -> bool:
    """TOST's decision from the gap's (1 - 2 alpha) ``interval``: True exactly when it lies inside (-margin, +margin)."""
    low, high = interval
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return False
    return -margin < low and high < margin


def catch_up(budgets: list[dict], margin: float, alpha: float) -> dict:
    """verdict.json's ``catch_up`` from one row per scratch budget, smallest first (each with ``arm``, ``multiple``,
    ``gap`` and ``tost_interval``, the gap's (1 - 2 alpha) interval): each row gains ``equivalent``, and the summary
    names the first budget at which scratch caught up (``caught_up_at``, None: not shown to catch up) and the gap at
    the largest budget."""
    rows = [{**row, "equivalent": equivalent(row["tost_interval"], margin)} for row in budgets]
    first = next((row for row in rows if row["equivalent"]), None)
    return {
        "margin": margin, "alpha": alpha, "tost_level": 1 - 2 * alpha, "budgets": rows,
        "caught_up_at": first["arm"] if first else None, "multiple": first["multiple"] if first else None,
        "gap_at_largest": rows[-1]["gap"] if rows else None,
    }
