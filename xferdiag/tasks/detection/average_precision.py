"""COCO average precision from match tables, vectorised over bootstrap replicates.

pycocotools' ``COCOeval.accumulate`` per class and IoU threshold: cumulative true and false
positives in its detection order (ignored detections add to neither but keep their place),
recall = TP / non-ignored ground truths, precision = TP / (FP + TP + eps), the precision envelope
(running maximum from the right), read at the 101 recall thresholds 0:.01:1 at the first detection
whose recall reaches the threshold (``np.searchsorted(rc, recThrs, side="left")``), 0 past the last
recall. A class without non-ignored ground truth has no AP (pycocotools' -1) and is left out of
every mean. Here the first detection at or above each threshold is found by the same float
comparison, turned around: each detection's count of thresholds at or below its recall, then one
``searchsorted`` over integer keys for all replicates and thresholds at once.

Weights (replicates, images) multiply every detection and ground-truth count of an image: integer
weights score the test set in which each image appears that many times, what the paired bootstrap
needs. Exactly so where no image holds two detections of one class with the same score (copies of
such a tie interleave in pycocotools' order); ties across images fall as pycocotools orders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xferdiag.tasks.detection.matching import IOU_THRESHOLDS, MatchTable, match_tables

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # bit-identical to pycocotools' Params.recThrs
_AP50, _AP75 = 0, int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, 0.75))[0])


def _envelope_at_thresholds(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(rows, n) curves with non-decreasing recall -> (rows, 101) interpolated precision."""
    rows, n = recall.shape
    out = np.zeros((rows, len(RECALL_THRESHOLDS)))
    if n == 0:
        return out
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1].ravel()
    stride = len(RECALL_THRESHOLDS) + 2
    covered = np.searchsorted(RECALL_THRESHOLDS, recall, side="right")  # thresholds each detection's recall reaches
    keys = (np.arange(rows)[:, None] * stride + covered).ravel()
    queries = np.arange(rows)[:, None] * stride + np.arange(len(RECALL_THRESHOLDS))[None, :]
    first = np.searchsorted(keys, queries.ravel(), side="right").reshape(queries.shape)
    inside = first < (np.arange(rows)[:, None] + 1) * n
    out[inside] = envelope[first[inside]]
    return out


def precision_recall(table: MatchTable, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(precision (replicates, thresholds, classes, 101), recall (replicates, thresholds, classes));
    NaN for a class without ground truth. ``weights`` (replicates, images), default all ones. The
    thresholds are the table's columns (COCO's ten, or one for a table made at IoU .5 only)."""
    if weights is None:
        weights = np.ones((1, len(table.image_ids)))
    weights = np.asarray(weights, dtype=np.float64)
    n_rep, n_thr, n_cat = len(weights), table.tp.shape[1], len(table.category_ids)
    gt_total = weights @ table.gt_counts  # (replicates, classes)
    precision = np.full((n_rep, n_thr, n_cat, len(RECALL_THRESHOLDS)), np.nan)
    recall = np.full((n_rep, n_thr, n_cat), np.nan)
    bounds = np.searchsorted(table.category, np.arange(n_cat + 1))
    fp = table.fp
    for k in range(n_cat):
        valid = gt_total[:, k] > 0
        if not valid.any():
            continue
        rows = slice(bounds[k], bounds[k + 1])
        w = weights[valid][:, table.image[rows]][:, None, :]  # (valid replicates, 1, n)
        tp_sum = np.cumsum(w * table.tp[rows].T[None], axis=-1)
        fp_sum = np.cumsum(w * fp[rows].T[None], axis=-1)
        rc = tp_sum / gt_total[valid, k][:, None, None]
        pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
        n, curves = rc.shape[-1], rc.shape[0] * n_thr
        curve = _envelope_at_thresholds(rc.reshape(curves, n), pr.reshape(curves, n))
        precision[valid, :, k] = curve.reshape(-1, n_thr, len(RECALL_THRESHOLDS))
        recall[valid, :, k] = rc[..., -1] if n else 0.0
    return precision, recall


def _mean_over_classes(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis, skipping NaN classes; NaN where no class has ground truth."""
    count = (~np.isnan(values)).sum(-1)
    total = np.where(np.isnan(values), 0.0, values).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mean_average_precision(table: MatchTable, weights: np.ndarray | None = None) -> np.ndarray:
    """mAP over the table's IoU columns (COCO's mAP@[.5:.95]; AP50 for a one-column table), (replicates,)."""
    precision, _ = precision_recall(table, weights)
    return _mean_over_classes(precision.mean(axis=(1, 3)))


def _plain(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class DetectionMetrics:
    """COCO box metrics (area 'all', 100 detections per image and class); NaN where no class has
    ground truth. ``per_class_ap`` maps each category id to its AP@[.5:.95], NaN without ground truth."""

    map: float
    ap50: float
    ap75: float
    ar100: float
    per_class_ap: dict
    n_images: int
    n_detections: int

    def to_dict(self) -> dict:
        """Plain JSON values: a missing AP becomes None, category ids become strings (JSON keys)."""
        return {"map": _plain(self.map), "ap50": _plain(self.ap50), "ap75": _plain(self.ap75), "ar100": _plain(self.ar100),
                "per_class_ap": {str(k): _plain(v) for k, v in self.per_class_ap.items()},
                "n_images": self.n_images, "n_detections": self.n_detections}


def metrics_from_table(table: MatchTable) -> DetectionMetrics:
    """The metrics of one match table (no resampling)."""
    precision, recall = precision_recall(table)
    per_class = precision[0].mean(axis=(0, 2))
    return DetectionMetrics(
        map=float(_mean_over_classes(per_class)), ap50=float(_mean_over_classes(precision[0, _AP50].mean(-1))),
        ap75=float(_mean_over_classes(precision[0, _AP75].mean(-1))), ar100=float(_mean_over_classes(recall[0].mean(0))),
        per_class_ap={cat: float(ap) for cat, ap in zip(table.category_ids, per_class)},
        n_images=len(table.image_ids), n_detections=len(table.score))


def evaluate(ground_truth: dict, results: list) -> DetectionMetrics:
    """COCO box evaluation of ``results`` against ``ground_truth`` (COCO formats), equal to pycocotools."""
    return metrics_from_table(match_tables(ground_truth, results))
