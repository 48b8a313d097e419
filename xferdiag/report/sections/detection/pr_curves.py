"""Precision-recall curves at IoU .5 of every arm, from the stored detections through the evaluator's own
interpolated curves (the 101 recall points COCO averages into AP), mean over the arm's seeds: one panel per
class, or one pooled panel (the mean over classes, whose area is the AP50) when there are many classes."""

from __future__ import annotations

import numpy as np

from ....tasks.detection.average_precision import RECALL_THRESHOLDS, precision_recall as curves_of
from ... import detection_plots
from ...interpret import PR_PANELS_MAX
from .evidence import DetectionEvidence


def _arm_curves(evidence: DetectionEvidence, arm: str) -> np.ndarray:
    """(classes, 101) interpolated precision at IoU .5, mean over seeds; NaN for a class without ground truth."""
    return np.mean([curves_of(table)[0][0, 0] for table in evidence.tables[arm].values()], axis=0)


def precision_recall(evidence: DetectionEvidence | None, classes: list[str]) -> dict | None:
    if evidence is None:
        return None
    curves = {arm: _arm_curves(evidence, arm) for arm in evidence.tables}
    with_truth = [k for k in range(len(classes)) if not np.isnan(next(iter(curves.values()))[k]).all()]
    if not with_truth:
        return None
    pooled = len(with_truth) > PR_PANELS_MAX
    if pooled:
        mean = {arm: (RECALL_THRESHOLDS, np.nanmean(c, axis=0), float(np.nanmean(c))) for arm, c in curves.items()}
        panels = [("all classes (mean)", mean)]
    else:
        panels = [(classes[k], {arm: (RECALL_THRESHOLDS, c[k], float(c[k].mean())) for arm, c in curves.items()}) for k in with_truth]
    return {"chart": detection_plots.precision_recall(panels), "pooled": pooled, "n_classes": len(with_truth),
            "ap50": {arm: float(np.nanmean(c.mean(axis=1))) for arm, c in curves.items()},
            "seeds": {arm: sorted(evidence.tables[arm]) for arm in evidence.tables}}
