"""The TIDE error breakdown (Bolya et al. 2020) that the verdict stores under verdict.json's ``tide``: for
each arm the AP50 points each error type costs (mean over seeds) and the errors counted, and the difference
between the arms per type with its 95% interval, drawn as paired bars and put into sentences."""

from __future__ import annotations

from ....rundir.documents import Verdict
from ... import detection_plots, fmt
from ...interpret import TIDE_NAMES, tide_sentences


def error_breakdown(verdict: Verdict | None) -> dict | None:
    """None where the verdict holds no breakdown (no verdict yet, or one made before it was recorded)."""
    tide = (verdict or {}).get("tide")
    if not tide or len(tide["arms"]) < 2:
        return None
    arms = [a for a in (verdict.get("arms") or list(tide["arms"])) if a in tide["arms"]][:2]
    types = [t for t in tide.get("types") or TIDE_NAMES if t in (tide.get("difference") or {})]
    if len(arms) < 2 or not types:
        return None
    lost = {arm: [fmt.as_number(tide["arms"][arm].get("lost", {}).get(t)) for t in types] for arm in arms}
    diff = [tide["difference"][t] for t in types]
    cis = [tuple(fmt.as_number(v) for v in (d.get("ci95") or [None, None])) for d in diff]
    rows = [{"type": t, "meaning": TIDE_NAMES.get(t, t), "lost": {arm: lost[arm][i] for arm in arms},
             "counts": {arm: fmt.as_number(tide["arms"][arm].get("counts", {}).get(t)) for arm in arms},
             "gap": fmt.as_number(d.get("gap")), "ci95": d.get("ci95"), "p_value": d.get("p_value")}
            for i, (t, d) in enumerate(zip(types, diff))]
    chart = detection_plots.error_breakdown(types, {arm: [v or 0.0 for v in values] for arm, values in lost.items()},
                                            [r["gap"] or 0.0 for r in rows], cis,
                                            f"{arms[0]} − {arms[1]} (points, 95% CI)")
    return {"arms": arms, "rows": rows, "chart": chart, "sentences": tide_sentences(tide, arms),
            "ap50": {arm: fmt.as_number(tide["arms"][arm].get("ap50")) for arm in arms},
            "seeds": len(verdict.get("seeds") or []), "n_boot": tide.get("n_boot"),
            "undefined": any(v is None for values in lost.values() for v in values),
            "foreground": tide.get("foreground_iou"), "background": tide.get("background_iou")}
