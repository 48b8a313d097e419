"""Argument checks shared by every function that takes arrays, so errors read the same everywhere."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


MAX_MAGNITUDE = 1e100
"""Largest accepted feature magnitude: its square, summed over many entries, stays finite in float64."""


def as_matrix(x, name: str, *, min_rows: int = 2) -> np.ndarray:
    """Return ``x`` as a finite float64 matrix of shape (n, d), or raise naming ``name``."""
    try:
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    except Exception as exc:  # ragged lists, objects
        raise InputError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise InputError(f"{name}: needs at least {min_rows} samples, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise InputError(f"{name}: has no features (shape {arr.shape})")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InputError(f"{name}: contains NaN or infinite values ({int(bad.sum())} entries, first in row {row})")
    peak = float(np.abs(arr).max())
    if peak > MAX_MAGNITUDE:  # squares and covariances would overflow float64 into inf and NaN
        raise InputError(f"{name}: values as large as {peak:.3g} overflow the computation; rescale the features (e.g. standardize them)")
    return arr


def same_width(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Two samples compared in one feature space must have the same number of features."""
    if x.shape[1] != y.shape[1]:
        raise InputError(
            f"{names[0]} and {names[1]} have different feature widths ({x.shape[1]} vs {y.shape[1]})"
        )


def as_labels(y, name: str, n: int | None = None, *, min_classes: int = 2) -> np.ndarray:
    """Return integer class labels 0..C-1 (every class present), or raise naming ``name``."""
    arr = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of class labels, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{name}: has {arr.shape[0]} entries but the features have {n} rows")
    if arr.size == 0:
        raise InputError(f"{name}: is empty")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{name}: labels must be whole numbers 0..C-1")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: labels must be integers 0..C-1, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    classes = np.unique(arr)
    if classes[0] < 0 or not np.array_equal(classes, np.arange(classes.size)):
        raise InputError(f"{name}: labels must be 0..C-1 with every class present, got {classes[:10].tolist()}")
    if classes.size < min_classes:
        raise InputError(f"{name}: needs at least {min_classes} classes, got {classes.size}")
    return arr


def positive_int(value, name: str, *, minimum: int = 1) -> int:
    """An integer parameter (permutations, folds, samples) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real_between(value, name: str, low: float = 0.0, high: float = math.inf) -> float:
    """A real parameter (bandwidth, alpha, a fraction) strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: must be a number, got {value!r}")
    if not low < float(value) < high:
        raise InputError(f"{name}: must be > {low} and < {high}, got {value!r}")
    return float(value)
