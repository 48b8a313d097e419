"""One family of argument checks for every public function that takes arrays or parameters.

In the spirit of scikit-learn's ``check_array`` / ``check_scalar``: a public entry point checks
each argument once, with the function named after what it checks, and private helpers trust what
they are given. Every error is an :class:`InputError` whose message starts with the parameter's
name (``"x: ..."``), which the CLI maps to its flag.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InputError

MAX_MAGNITUDE = 1e100
"""Largest accepted feature magnitude: its square, summed over many entries, stays finite in float64."""


def to_numpy(x, name: str) -> np.ndarray:
    """``x`` (a tensor on any device, an array, nested lists) as a numeric NumPy array, not copied
    when it already is one."""
    try:
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    except Exception as exc:  # ragged lists, odd objects
        raise InputError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr


def check_array(x, name: str, *, min_rows: int = 2, finite: bool = True) -> np.ndarray:
    """``x`` as a float64 matrix (n_samples, n_features), a 1-D array read as one feature.

    ``finite`` also refuses NaN, infinities and magnitudes above MAX_MAGNITUDE (whose squares and
    covariances would overflow float64 into inf and NaN).
    """
    arr = to_numpy(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise InputError(f"{name}: needs at least {min_rows} samples, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise InputError(f"{name}: has no features (shape {arr.shape})")
    arr = arr.astype(np.float64, copy=False)
    if finite:
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise InputError(f"{name}: contains NaN or infinite values ({int(bad.sum())} entries, first in row {row})")
        peak = float(np.abs(arr).max())
        if peak > MAX_MAGNITUDE:
            raise InputError(f"{name}: values as large as {peak:.3g} overflow the computation; "
                             "rescale the features (e.g. standardize them)")
    return arr


def check_same_width(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Two samples compared in one feature space must have the same number of features."""
    if x.shape[1] != y.shape[1]:
        raise InputError(
            f"{names[0]} and {names[1]} have different feature widths ({x.shape[1]} vs {y.shape[1]})"
        )


def check_samples(x, y, names: tuple[str, str] = ("x", "y"), *, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of the same feature space (source and target): both checked, widths equal."""
    x, y = check_array(x, names[0], min_rows=min_rows), check_array(y, names[1], min_rows=min_rows)
    check_same_width(x, y, names)
    return x, y


def check_same_rows(a, b, names: tuple[str, str], why: str = "") -> None:
    """``b`` describes the same examples as ``a``: one row (or entry) each. The message names ``b``."""
    if len(a) != len(b):
        raise InputError(f"{names[1]}: has {len(b)} rows but {names[0]} has {len(a)}{why}")


def check_labels(y, name: str, *, n: int | None = None, rows_of: str = "features",
                 all_present: bool = True, min_classes: int = 2, nonnegative: bool = True) -> np.ndarray:
    """Integer class labels as int64, one per example (whole-valued floats accepted, bools not).

    ``n``: the number of examples they must match (``rows_of`` names where that number comes from).
    ``all_present``: labels are 0..C-1 with every class present and at least ``min_classes`` classes
    (training targets); otherwise classes may be missing (a target domain without some class, the
    predictions of a source model over a subset of its classes). ``nonnegative=False`` accepts any
    whole number (class ids of another label space).
    """
    arr = to_numpy(y, name)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D array of class labels, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{name}: has {arr.shape[0]} entries but {rows_of} has {n} rows")
    if arr.dtype == bool:
        raise InputError(f"{name}: labels must be integers 0..C-1, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer) and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise InputError(f"{name}: labels must be whole numbers 0..C-1")
    arr = arr.astype(np.int64)
    if nonnegative and arr.min() < 0:
        raise InputError(f"{name}: labels must be whole numbers 0..C-1, got {int(arr.min())}")
    if all_present:
        classes = np.unique(arr)
        if not np.array_equal(classes, np.arange(classes.size)):
            raise InputError(f"{name}: labels must be 0..C-1 with every class present, got {classes[:10].tolist()}")
        if classes.size < min_classes:
            raise InputError(f"{name}: needs at least {min_classes} classes, got {classes.size}")
    return arr


def check_probabilities(p, name: str, *, atol: float = 1e-3) -> np.ndarray:
    """Rows of class probabilities: non-negative, each summing to 1 (within float32 softmax rounding)."""
    arr = check_array(p, name)
    if (arr < 0).any():
        row = int(np.argwhere(arr < 0)[0][0])
        raise InputError(f"{name}: probabilities must be >= 0, row {row} has a negative entry")
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"{name}: each row must sum to 1 (softmax outputs), row {row} sums to {sums[row]:.6g}; "
            "pass probabilities, not logits"
        )
    return arr


def check_scalar(value, name: str, kind: type = int, low: float | None = None, high: float | None = None,
                 *, inclusive: tuple[bool, bool] | None = None) -> int | float:
    """A parameter of type ``kind`` (``int`` or ``float``; bools refused) within [low, high].

    Bounds are inclusive for integers and exclusive for reals (a fraction in (0, 1), a bandwidth
    > 0) unless ``inclusive`` says otherwise; ``None`` means unbounded. NaN is never in range.
    """
    accepted = numbers.Integral if kind is int else numbers.Real
    closed = inclusive if inclusive is not None else ((True, True) if kind is int else (False, False))
    if not isinstance(value, bool) and isinstance(value, accepted):
        number = kind(value)
        below = low is not None and not (number >= low if closed[0] else number > low)
        above = high is not None and not (number <= high if closed[1] else number < high)
        if not (below or above or (kind is float and math.isnan(number))):
            return number
    what = "an integer" if kind is int else "a number"
    raise InputError(f"{name}: must be {what}{_range(low, high, closed)}, got {value!r}")


def _range(low, high, closed) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if closed[0] else '>'} {low}")
    if high is not None:
        parts.append(f"{'<=' if closed[1] else '<'} {high}")
    return " " + " and ".join(parts) if parts else ""


def check_seed(seed, name: str = "seed") -> np.random.Generator:
    """A NumPy generator from an integer seed >= 0: every random analyzer draws from one of these."""
    return np.random.default_rng(check_scalar(seed, name, int, 0))
