"""How much two saliency maps of the same image agree: rank correlation and top-k overlap.

Used to compare the transfer and scratch arms (same method, same image) or two methods.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..errors import InputError


def _pair(map_a, map_b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(map_a, dtype=np.float64)
    b = np.asarray(map_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise InputError(f"map_a and map_b: expected two stacks of maps of one shape (N, H, W), "
                         f"got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("map_a and map_b: contain NaN or infinite values")
    return a.reshape(len(a), -1), b.reshape(len(b), -1)


def spearman_agreement(map_a, map_b) -> np.ndarray:
    """Spearman rank correlation per example, (N,); NaN where a map is constant (no ranking)."""
    a, b = _pair(map_a, map_b)
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), np.nan)


def topk_overlap(map_a, map_b, k: float = 0.1) -> np.ndarray:
    """Fraction of the top ``k`` share of pixels of ``map_a`` that is also in the top of ``map_b``,
    per example, (N,). Ties are broken by pixel position, so constant maps give arbitrary sets.
    """
    a, b = _pair(map_a, map_b)
    if not isinstance(k, (int, float)) or isinstance(k, bool) or not 0 < k <= 1:
        raise InputError(f"k: must be a fraction of pixels in (0, 1], got {k!r}")
    n_top = max(1, int(round(k * a.shape[1])))
    top_a = np.argsort(-a, axis=1, kind="stable")[:, :n_top]
    top_b = np.argsort(-b, axis=1, kind="stable")[:, :n_top]
    return np.array([np.intersect1d(x, y).size / n_top for x, y in zip(top_a, top_b)])
