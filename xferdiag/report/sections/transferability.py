"""Transferability scores of the pretrained model on the target data, each with what it measures."""

from __future__ import annotations

from ...rundir.documents import Transferability
from .. import fmt

SCORES = {  # name, what it measures; for every score higher means better expected transfer
    "logme": ("LogME", "evidence of a linear model on the pretrained features"),
    "leep": ("LEEP", "log-likelihood of target labels through the source classifier's predictions"),
    "nce": ("NCE", "negative conditional entropy of target labels given source predictions"),
    "h_score": ("H-score", "how well the features separate the target classes"),
    "h_score_shrinkage": ("H-score (shrinkage)", "H-score with a shrunk covariance, stabler for few examples"),
}


def transferability(t: Transferability) -> dict:
    scores, reasons, notes, seconds = t["scores"], t["not_applicable"], t["notes"], t["seconds"]
    names = list(SCORES) + [k for k in scores if k not in SCORES]
    rows = [{"name": SCORES.get(k, (k, ""))[0], "meaning": SCORES.get(k, (k, ""))[1], "value": scores.get(k),
             "reason": reasons.get(k), "note": notes.get(k), "seconds": seconds.get(k)} for k in names if k in scores or k in reasons]
    return {"rows": rows, "caption": f"Computed with the {t.get('model', '?')} model on the {t.get('split', '?')} "
                                     f"split ({fmt.num(t.get('n'))} examples)."}
