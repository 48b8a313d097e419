"""The catch-up sweep's table (verdict.json's ``catch_up``, ``--scratch-epochs auto``): the transfer arm against the
scratch arm at each budget, with the verdict's interval and the equivalence test's."""

from __future__ import annotations

from ...tasks.descriptor import TaskDescriptor
from ..interpret import catch_up_sentence
from .common import Arm, mean, metric_of


def catch_up_section(verdict: dict | None, arms: dict[str, Arm], terms: TaskDescriptor) -> dict | None:
    """One row per scratch budget (its arm, epochs, mean score, gap, 95% CI, verdict, 90% interval, equivalent?);
    None for a run without the catch-up sweep."""
    catch_up = (verdict or {}).get("catch_up")
    if not isinstance(catch_up, dict):
        return None
    rows = [{**row, "epochs": (row.get("budget") or {}).get("epochs"),
             "mean": mean([metric_of(m, terms.metric) for m in arms.get(row.get("arm"), {}).get("metrics", {}).values()])}
            for row in catch_up.get("budgets") or [] if isinstance(row, dict)]
    return {"transfer": catch_up.get("transfer_arm"), "margin": catch_up.get("margin"), "level": catch_up.get("tost_level"),
            "rows": rows, "lede": catch_up_sentence(catch_up)}
