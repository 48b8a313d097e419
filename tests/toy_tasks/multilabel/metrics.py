"""Mean average precision over labels, for whole splits and for a paired bootstrap of them, in numpy.

AP per label is scikit-learn's ``average_precision_score`` (tied scores are one threshold); a resample is a
row of example weights (how often each example was drawn), so every resample reuses one sort per label.
The mean is over the labels with a positive example (a label never present has no AP)."""

from __future__ import annotations

import warnings

import numpy as np


def weighted_ap(scores: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) AP of one label's ``scores`` (n,) against ``truth`` (n,) under each row of ``weights`` (B, n);
    NaN where a row weighs no positive."""
    order = np.argsort(-scores, kind="stable")
    ranked, y = -scores[order], truth[order].astype(np.float64)
    w = weights[:, order].astype(np.float64)
    last = np.searchsorted(ranked, ranked, side="right") - 1  # a tie group counts as one threshold
    drawn, hits = np.cumsum(w, axis=1)[:, last], np.cumsum(w * y, axis=1)[:, last]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(drawn > 0, hits / drawn, 0.0)
        return (w * y * precision).sum(axis=1) / (w * y).sum(axis=1)


def mean_ap(scores: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """mAP over labels of ``scores`` and ``truth`` (n, C); with ``weights`` (B, n), one per resample (NaN where no
    label has a positive)."""
    rows = np.ones((1, len(scores))) if weights is None else weights
    per_label = np.stack([weighted_ap(scores[:, k], truth[:, k], rows) for k in range(scores.shape[1])], axis=1)
    with warnings.catch_warnings():  # a resample without any positive: numpy's all-NaN warning
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(per_label, axis=1)
    return float(values[0]) if weights is None else values


def resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) how often each of ``n`` examples is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
