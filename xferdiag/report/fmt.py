"""Number formatting shared by the report, the comparison and the recommendations.

One place decides how an accuracy, a gap or a p-value reads, so the banner, the tables and the
advice never disagree. Accuracies and gaps are fractions in run files and points/percent on screen.
Anything that is not a number (null, a string from a hand-written file) prints as a dash or as itself.
"""

from __future__ import annotations

import math
from numbers import Real

MINUS = "\u2212"
DASH = "\u2014"
DISPLAY_NAMES = {"gradcam": "Grad-CAM", "ig": "Integrated Gradients", "shap": "SHAP", "lime": "LIME", "tsne": "t-SNE", "pca": "PCA"}


def as_number(x: object) -> float | None:
    """A finite real number as float; None for null, booleans, strings, NaN and infinities."""
    if isinstance(x, bool) or not isinstance(x, Real):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def num(x: object, digits: int = 3) -> str:
    """A plain number with ``digits`` significant digits; integers stay whole."""
    if x is None:
        return DASH
    value = as_number(x)
    if value is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    return f"{value:.{digits}g}".replace("-", MINUS)


def pct(x: object, digits: int = 1) -> str:
    """A fraction as a percentage: 0.8234 -> '82.3%'."""
    value = as_number(x)
    return DASH if value is None else f"{value * 100:.{digits}f}%".replace("-", MINUS)


def points(x: object, digits: int = 1) -> str:
    """A difference of fractions as signed percentage points: 0.123 -> '+12.3'."""
    value = as_number(x)
    return DASH if value is None else f"{value * 100:+.{digits}f}".replace("-", MINUS)


def ci_points(ci: object) -> str:
    """A 95% interval of a gap in points: '+8.1 to +16.0'."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return DASH
    return f"{points(ci[0])} to {points(ci[1])}"


def pval(p: object) -> str:
    """A p-value to three decimals, with a floor so tiny values do not read as zero."""
    value = as_number(p)
    if value is None:
        return DASH
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def p_is(p: object) -> str:
    """'p = 0.030' or 'p < 0.001': the relation the formatted value needs."""
    text = pval(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def seconds(x: object) -> str:
    value = as_number(x)
    if value is None:
        return DASH
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def seeds_phrase(n: int) -> str:
    return "1 seed" if n == 1 else f"mean of {n} seeds"


def display_name(key: object) -> str:
    """How a method key from a run file is written on the page ('gradcam' -> 'Grad-CAM')."""
    return DISPLAY_NAMES.get(str(key), str(key))
