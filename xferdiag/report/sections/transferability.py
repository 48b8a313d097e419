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
    "logme_box": ("LogME (boxes)", "evidence of a linear model predicting each box's regression targets from its "
                                   "matched anchor's features"),
}


def score_titles(keys) -> dict[str, str]:
    """Each score's name as the report prints it, by its key."""
    return {key: SCORES.get(key, (key,))[0] for key in keys}


def transferability(t: Transferability) -> dict:
    """The section's rows; with a ``reference`` (a detection run's: the same model at random initialisation) its scores
    in a column beside, so the gap that pretraining brings shows."""
    scores, reasons, notes, seconds = t["scores"], t["not_applicable"], t["notes"], t["seconds"]
    reference = t.get("reference") or {}
    names = list(SCORES) + [k for k in scores if k not in SCORES]
    rows = [{"name": SCORES.get(k, (k, ""))[0], "meaning": SCORES.get(k, (k, ""))[1], "value": scores.get(k),
             "reference": (reference.get("scores") or {}).get(k), "reason": reasons.get(k), "note": notes.get(k),
             "seconds": seconds.get(k)} for k in names if k in scores or k in reasons]
    boxes = (f", {fmt.num(t['boxes'])} boxes and {fmt.num(t.get('background_boxes'))} background boxes, body stage "
             f"{t.get('stage')}" if t.get("boxes") is not None else "")
    caption = (f"Computed with the {t.get('model', '?')} model on the {t.get('split', '?')} split "
               f"({fmt.num(t.get('n'))} {t.get('unit', 'examples')}{boxes}).")
    if reference:
        caption += f" Beside each score, the same model at {reference.get('model', 'a reference')}: what pretraining adds."
    return {"rows": rows, "caption": caption, "reference": reference.get("model")}
