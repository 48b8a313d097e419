"""Property-based input validation of the analyzers and the verdict (issue 8).

Random shapes, dtypes, tiny sizes, constant features, duplicated rows, NaN and infinities: every
call ends either with a valid, finite result or with :class:`InputError` (whose message names the
argument). Any other exception is a bug. Derandomized, so a run is reproducible; modest
``max_examples`` keep the file well under 30 s.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from xferdiag.analyzers import (
    classifier_two_sample_test,
    frechet_distance,
    h_score,
    ks_shift,
    leep,
    linear_cka,
    logme,
    mmd_test,
    nce,
    proxy_a_distance,
)
from xferdiag.errors import InputError
from xferdiag.negative import paired_verdict

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL = [0.0, -0.0, 1.0, math.nan, math.inf, -math.inf]
FLOAT_DTYPES = {"float64": 64, "float32": 32, "float16": 16}


def _elements(dtype: str):
    if dtype in FLOAT_DTYPES:
        return st.floats(-10, 10, width=FLOAT_DTYPES[dtype])
    if dtype == "bool":
        return st.booleans()
    if dtype == "complex128":
        return st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False)
    return st.integers(-3, 3)


@st.composite
def matrices(draw, rows: int | None = None, cols: int | None = None):
    """Mostly (n, d) arrays of any dtype and a few odd objects; often degenerate on purpose."""
    if draw(st.integers(0, 19)) == 19:
        return draw(st.sampled_from([None, "features", [[1, 2], [3]], np.array([["a", "b"], ["c", "d"]]),
                                     np.array([[{}], [{}]], dtype=object), 3.5]))
    dtype = draw(st.sampled_from(["float64"] * 5 + ["float32", "float16", "int64", "int8", "bool", "complex128"]))
    ndim = draw(st.sampled_from([2] * 8 + [1, 3, 0]))
    n = rows if rows is not None else draw(st.sampled_from([5, 8, 12, 6, 10, 0, 1, 2, 3, 4]))
    d = cols if cols is not None else draw(st.sampled_from([1, 2, 3, 4, 1, 2, 0]))
    shape = {0: (), 1: (n,), 2: (n, d), 3: (n, d, 2)}[ndim]
    arr = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    if arr.size and dtype in FLOAT_DTYPES and draw(st.integers(0, 4)) == 4:  # one special value somewhere
        big = float(np.finfo(dtype).max)
        arr.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from([*SPECIAL, big, -big, float(np.finfo(dtype).tiny)]))
    if arr.ndim == 2 and arr.size:
        tweak = draw(st.sampled_from(["none", "none", "none", "constant-column", "duplicate-rows", "all-equal", "huge-scale"]))
        if tweak == "constant-column":
            arr[:, 0] = arr[0, 0]
        elif tweak == "duplicate-rows":
            arr[1::2] = arr[0]
        elif tweak == "all-equal":
            arr[:] = arr.flat[0]
        elif tweak == "huge-scale" and dtype == "float64":
            arr *= draw(st.sampled_from([1e-300, 1e150, 1e300]))
    return arr


@st.composite
def labels_for(draw, n: int):
    kind = draw(st.sampled_from(["ok"] * 8 + ["one-class", "gap", "negative", "float", "wrong-length", "2d", "str"]))
    classes = draw(st.integers(2, 4))
    if kind == "str":
        return np.array(["a"] * n)
    if kind == "2d":
        return np.zeros((n, 2), dtype=np.int64)
    length = n + draw(st.sampled_from([-1, 1])) if kind == "wrong-length" else n
    y = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=max(length, 0), max_size=max(length, 0))), dtype=np.int64)
    if kind == "ok" and len(y) >= classes:
        y[:classes] = np.arange(classes)  # every class present
    elif kind == "one-class":
        y[:] = 0
    elif kind == "gap":
        y = y * 2
    elif kind == "negative" and len(y):
        y[0] = -1
    elif kind == "float":
        y = y.astype(np.float64) + draw(st.sampled_from([0.0, 0.5, math.nan]))
    return y


def outcome(call):
    """The result, or None after an InputError; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and precision warnings are fine; exceptions are not
        try:
            result = call()
        except InputError as exc:
            assert str(exc).strip() and "\n" not in str(exc)
            event(f"InputError {str(exc)[:45]}")
            return None
    event("result")
    return result


def finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


@st.composite
def pairs(draw):
    """Two samples, usually of the same width."""
    x = draw(matrices())
    width = x.shape[1] if isinstance(x, np.ndarray) and x.ndim == 2 and draw(st.integers(0, 4)) < 4 else None
    return x, draw(matrices(cols=width))


# --- domain shift -----------------------------------------------------------------------------

@FUZZ
@given(pairs(), st.sampled_from(["median", 1.0, 0.0, -1.0, math.nan, "wide"]), st.sampled_from([0, 7, -1]))
def test_mmd_test(xy, bandwidth, seed):
    result = outcome(lambda: mmd_test(*xy, n_permutations=9, bandwidth=bandwidth, seed=seed, device="cpu"))
    if result is not None:
        assert finite(result.statistic, result.bandwidth) and 0 < result.p_value <= 1 and result.bandwidth > 0


@FUZZ
@given(pairs(), st.sampled_from([2, 3, 1]))
def test_proxy_a_distance(xy, n_splits):
    result = outcome(lambda: proxy_a_distance(*xy, n_splits=n_splits))
    if result is not None:
        assert 0 <= result.value <= 2 and all(0 <= v <= 2 for v in result.ci95) and 0 <= result.error <= 1


@FUZZ
@given(pairs(), st.sampled_from([0.5, 0.3, 0.0, 1.5]))
def test_classifier_two_sample_test(xy, test_size):
    result = outcome(lambda: classifier_two_sample_test(*xy, test_size=test_size))
    if result is not None:
        assert 0 <= result.accuracy <= 1 and 0 <= result.p_value <= 1 and result.n_test >= 1


@FUZZ
@given(pairs())
def test_frechet_distance(xy):
    result = outcome(lambda: frechet_distance(*xy))
    if result is not None:
        assert finite(result.value) and result.value >= -1e-6


@FUZZ
@given(pairs(), st.sampled_from([0.05, 0.5, 0.0, 1.0, math.nan]))
def test_ks_shift(xy, alpha):
    result = outcome(lambda: ks_shift(*xy, alpha=alpha))
    if result is not None:
        assert 0 <= result.fraction_shifted <= 1


# --- similarity ---------------------------------------------------------------------------------

@FUZZ
@given(st.data(), st.booleans())
def test_linear_cka(data, debiased):
    x = data.draw(matrices())
    rows = len(x) if isinstance(x, np.ndarray) and x.ndim >= 1 and data.draw(st.integers(0, 4)) < 4 else None
    y = data.draw(matrices(rows=rows))
    result = outcome(lambda: linear_cka(x, y, debiased=debiased))
    if result is not None:
        assert finite(result) and (debiased or -1e-9 <= result <= 1 + 1e-9)


# --- transferability ------------------------------------------------------------------------------

@FUZZ
@given(st.data())
def test_logme_and_h_score(data):
    f = data.draw(matrices())
    n = len(f) if isinstance(f, np.ndarray) and f.ndim >= 1 else 3
    y = data.draw(labels_for(n))
    for score in (logme, h_score, lambda a, b: h_score(a, b, shrinkage=True)):
        result = outcome(lambda score=score: score(f, y))
        assert result is None or finite(result)


@st.composite
def probabilities(draw):
    raw = draw(matrices())
    if isinstance(raw, np.ndarray) and raw.ndim == 2 and raw.size and raw.dtype.kind == "f" and draw(st.integers(0, 3)) < 3:
        with np.errstate(all="ignore"):
            shifted = np.exp(np.clip(raw.astype(np.float64), -30, 30))
            raw = shifted / shifted.sum(axis=1, keepdims=True)  # rows that are real softmax outputs (NaN stays NaN)
    return raw


@FUZZ
@given(st.data())
def test_leep_and_nce(data):
    theta = data.draw(probabilities())
    n = len(theta) if isinstance(theta, np.ndarray) and theta.ndim >= 1 else 3
    y = data.draw(labels_for(n))
    result = outcome(lambda: leep(theta, y))
    assert result is None or (finite(result) and result <= 1e-9)
    preds = np.argmax(theta, axis=1) if isinstance(theta, np.ndarray) and theta.ndim == 2 and theta.size else theta
    result = outcome(lambda: nce(preds, y))
    assert result is None or (finite(result) and result <= 1e-9)


# --- the verdict --------------------------------------------------------------------------------

@st.composite
def correctness(draw, shape=None):
    if shape is None:
        shape = (draw(st.one_of(st.integers(2, 4), st.integers(0, 1))), draw(st.one_of(st.integers(2, 8), st.integers(0, 1))))
    kind = draw(st.sampled_from(["01"] * 6 + ["bool", "float", "nan", "1d"]))
    if kind == "1d":
        return np.ones(shape[1], dtype=np.int64)
    values = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    if kind == "bool":
        return values.astype(bool)
    if kind == "float":
        return values + draw(st.sampled_from([0.0, 0.5, 2.0]))
    if kind == "nan" and values.size:
        values = values.astype(np.float64)
        values.flat[0] = math.nan
    return values


@FUZZ
@given(st.data(), st.sampled_from([0.05, 0.5, 1e-12, 0.0, 1.0, math.nan, True, "0.05"]))
def test_paired_verdict(data, alpha):
    a = data.draw(correctness())
    b = data.draw(correctness(shape=a.shape if a.ndim == 2 and data.draw(st.integers(0, 4)) < 4 else None))
    result = outcome(lambda: paired_verdict(a, b, alpha=alpha))
    if result is not None:
        assert result.verdict in ("positive", "negative", "inconclusive")
        assert finite(result.gap) and -1 <= result.gap <= 1 and 0 <= result.p_value <= 1
        low, high = result.ci95
        assert low <= result.gap <= high and not math.isnan(low) and not math.isnan(high)


def test_every_analyzer_accepts_ordinary_input():
    """The fuzzers above mostly hit the refusals; on ordinary data every function returns a number."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(0.5, 1, size=(30, 3))
    labels = np.arange(40) % 3
    probs = rng.dirichlet(np.ones(4), size=40)
    for result in (mmd_test(x, y, n_permutations=20, device="cpu").p_value, proxy_a_distance(x, y).value,
                   classifier_two_sample_test(x, y).accuracy, frechet_distance(x, y).value, ks_shift(x, y).fraction_shifted,
                   linear_cka(x, x[:, ::-1]), logme(x, labels), h_score(x, labels), leep(probs, labels), nce(probs.argmax(1), labels),
                   paired_verdict(rng.integers(0, 2, (3, 40)), rng.integers(0, 2, (3, 40))).gap):
        assert finite(result)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_name_the_argument(bad):
    x = np.ones((5, 2))
    y = np.ones((5, 2))
    y[3, 1] = bad
    with pytest.raises(InputError, match=r"^y: contains NaN or infinite values .*row 3"):
        mmd_test(x, y, n_permutations=5)
    features = np.arange(10.0).reshape(5, 2)
    features[0, 0] = bad
    with pytest.raises(InputError, match="^features: contains NaN"):
        logme(features, np.array([0, 1, 0, 1, 0]))
