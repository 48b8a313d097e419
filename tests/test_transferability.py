import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from xferdiag.analyzers.transferability import (
    NO_SOURCE_HEAD,
    h_score,
    leep,
    logme,
    nce,
    transferability_scores,
)
from xferdiag.errors import InputError


def linear_task(n=300, d=12, classes=4, seed=0):
    """Features and labels that are (noisily) a linear function of them."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d))
    y = np.argmax(f @ rng.normal(size=(d, classes)) + 0.3 * rng.normal(size=(n, classes)), axis=1)
    return f, y


def log_evidence_maximised(f, target):
    """Direct maximisation of the closed-form evidence over (log α, log β), full d×d matrices."""
    n, d = f.shape
    gram, proj = f.T @ f, f.T @ target

    def negative(params):
        alpha, beta = np.exp(params)
        a = alpha * np.eye(d) + beta * gram
        m = beta * np.linalg.solve(a, proj)
        return -(
            d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * np.sum((f @ m - target) ** 2) - alpha / 2 * m @ m
            - 0.5 * np.linalg.slogdet(a)[1]
        )

    options = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000}
    runs = [minimize(negative, start, method="Nelder-Mead", options=options) for start in ([0, 0], [2, -2], [-2, 2])]
    return -min(r.fun for r in runs)


# ----------------------------------------------------------------------------- LogME


@pytest.mark.parametrize("n, d", [(120, 8), (25, 40)], ids=["eigh-of-gram", "svd-of-features"])
def test_logme_matches_direct_evidence_maximisation(n, d):
    f, y = linear_task(n=n, d=d, classes=3, seed=1)
    expected = np.mean([log_evidence_maximised(f, (y == c).astype(float)) for c in range(3)]) / n
    assert logme(f, y) == pytest.approx(expected, rel=1e-8)


def test_logme_prefers_labels_that_are_linear_in_the_features():
    f, y = linear_task()
    shuffled = np.random.default_rng(1).permutation(y)
    assert logme(f, y) > logme(f, shuffled) + 0.05


@pytest.mark.parametrize("column", [[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]], ids=["orthogonal", "all-zero"])
def test_logme_without_linear_signal_gives_the_noise_only_evidence(column):
    # Fᵀy = 0 for both one-hot targets: the best model is "no weights, only noise", β = n/‖y‖² = 2
    f = np.array(column)[:, None]
    y = np.array([0, 0, 1, 1])
    assert logme(f, y) == pytest.approx(0.5 * math.log(2 / (2 * math.pi)) - 0.5, rel=1e-9)


@pytest.mark.parametrize("extra", [4, 30], ids=["stays-eigh", "becomes-svd"])
def test_logme_ignores_all_zero_feature_columns(extra):
    # zero columns add zero eigenvalues to FᵀF and leave F Fᵀ, hence the evidence, unchanged
    f, y = linear_task(n=20, d=6)
    padded = np.hstack([f, np.zeros((20, extra))])
    assert logme(padded, y) == pytest.approx(logme(f, y), rel=1e-9)


# ----------------------------------------------------------------------------- LEEP and NCE


def test_leep_is_zero_when_source_classes_determine_target_labels():
    z = np.random.default_rng(0).integers(0, 6, size=200)
    probs = np.eye(6)[z]
    assert leep(probs, z % 3) == pytest.approx(0.0, abs=1e-12)


def test_leep_is_lower_when_source_outputs_are_independent_of_labels():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 6, size=2000)
    y = rng.integers(0, 3, size=2000)
    assert leep(np.eye(6)[z], y) < -1.0  # close to -H(Y) = -log 3


def test_leep_hand_computed():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    y = np.array([0, 0, 1])
    # P(y|z=0) = (1, 0), P(y|z=1) = (1/3, 2/3): per example 1, 2/3, 2/3
    assert leep(probs, y) == pytest.approx(2 / 3 * math.log(2 / 3))


def test_nce_is_zero_for_a_deterministic_mapping():
    z = np.random.default_rng(0).integers(0, 10, size=500)
    assert nce(z, z // 4) == pytest.approx(0.0, abs=1e-12)


def test_nce_is_minus_label_entropy_under_independence():
    z = np.repeat(np.arange(4), 30) * 7  # source class ids need not be 0..Z-1
    y = np.tile(np.arange(3), 40)  # every (y, z) pair equally often
    assert nce(z, y) == pytest.approx(-math.log(3))


# ----------------------------------------------------------------------------- H-score


def test_h_score_hand_computed():
    f = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    # var(f) = 5, class means 1 and 5 around 3: between-class variance 4
    assert h_score(f, y) == pytest.approx(0.8)
    # one dimension has nothing to shrink towards: Ledoit–Wolf leaves it alone
    assert h_score(f, y, shrinkage=True) == pytest.approx(0.8)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_h_score_is_invariant_to_translation(shrinkage):
    f, y = linear_task()
    assert h_score(f + 100.0, y, shrinkage=shrinkage) == pytest.approx(h_score(f, y, shrinkage=shrinkage), rel=1e-8)


def test_h_score_is_invariant_to_invertible_linear_maps():
    f, y = linear_task()
    a = np.random.default_rng(3).normal(size=(f.shape[1], f.shape[1]))
    assert h_score(f @ a, y) == pytest.approx(h_score(f, y), rel=1e-7)


def test_shrunk_h_score_is_invariant_to_rotation_and_scale():
    f, y = linear_task()
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(f.shape[1], f.shape[1])))
    assert h_score(7.0 * f @ q, y, shrinkage=True) == pytest.approx(h_score(f, y, shrinkage=True), rel=1e-8)


@pytest.mark.parametrize("n, d", [(200, 20), (30, 100)])
def test_shrinkage_h_score_is_the_pseudo_inverse_definition(n, d):
    """The Cholesky solve on the positive definite shrunk covariance gives tr(pinv(Σ_a) (1 - a) Σ_b)."""
    from sklearn.covariance import LedoitWolf

    f, y = linear_task(n=n, d=d, classes=4)
    lw = LedoitWolf().fit(f)
    centred_means = np.stack([f[y == c].mean(0) - f.mean(0) for c in range(4)])
    between = (np.bincount(y)[:, None] / n * centred_means).T @ centred_means
    expected = (1 - lw.shrinkage_) * np.trace(np.linalg.pinv(lw.covariance_) @ between)
    assert h_score(f, y, shrinkage=True) == pytest.approx(expected, rel=1e-10)


def test_shrinkage_still_ranks_labels_when_features_outnumber_samples():
    f, y = linear_task(n=30, d=100, classes=4)
    shuffled = np.random.default_rng(1).permutation(y)
    # without shrinkage any labelling scores the maximum C - 1 once d >= n
    assert h_score(f, shuffled) == pytest.approx(3.0, rel=1e-6)
    assert h_score(f, y, shrinkage=True) > h_score(f, shuffled, shrinkage=True)


def test_a_saturated_h_score_carries_a_note_only_when_features_outnumber_examples():
    few = transferability_scores(*linear_task(n=30, d=100, classes=4))
    assert few["scores"]["h_score"] == pytest.approx(3.0, rel=1e-6)
    assert few["notes"]["h_score"].startswith("at its ceiling of 3 (classes - 1): 30 examples of 100 features")
    assert transferability_scores(*linear_task(n=200, d=10, classes=4))["notes"] == {}
    # many examples that separate perfectly reach the ceiling too, and then the number means what it says
    f = np.repeat(np.eye(4), 50, axis=0)
    y = np.repeat(np.arange(4), 50)
    assert h_score(f, y) == pytest.approx(3.0) and transferability_scores(f, y)["notes"] == {}


# ----------------------------------------------------------------------------- all scores


def test_scores_without_source_head_are_missing_not_invented():
    f, y = linear_task()
    out = transferability_scores(f, y)
    assert out["scores"]["leep"] is None and out["scores"]["nce"] is None
    assert out["not_applicable"] == {"leep": NO_SOURCE_HEAD, "nce": NO_SOURCE_HEAD}
    assert set(out["seconds"]) == {"logme", "h_score", "h_score_shrinkage"}
    assert out["scores"]["logme"] == pytest.approx(logme(f, y))
    json.dumps(out, allow_nan=False)


def test_scores_with_source_head():
    f, y = linear_task()
    logits = f[:, :5] * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = transferability_scores(f, y, source_probs=probs.astype(np.float32))
    assert out["not_applicable"] == {}
    assert set(out["scores"]) == set(out["seconds"]) == {"logme", "leep", "nce", "h_score", "h_score_shrinkage"}
    assert out["scores"]["nce"] == pytest.approx(nce(probs.argmax(axis=1), y))
    assert all(isinstance(v, float) for v in out["scores"].values())
    json.dumps(out, allow_nan=False)


# ----------------------------------------------------------------------------- bad input

FEATURES = np.random.default_rng(0).normal(size=(6, 3))
LABELS = np.array([0, 1, 2, 0, 1, 2])
PROBS = np.full((6, 4), 0.25)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: logme(FEATURES, LABELS + 1), "labels"),
        (lambda: logme(FEATURES, np.zeros(6, dtype=int)), "labels"),
        (lambda: logme(np.where(np.eye(6, 3) > 0, np.nan, FEATURES), LABELS), "features"),
        (lambda: logme(FEATURES, LABELS[:5]), "labels"),
        (lambda: h_score(FEATURES, np.array([0, 1, 2, 0, 1, 4])), "labels"),
        (lambda: h_score(FEATURES[:, :, None], LABELS), "features"),
        (lambda: leep(PROBS * 2, LABELS), "source_probs"),
        (lambda: leep(PROBS - np.eye(6, 4) * 0.5 + np.eye(6, 4, 1) * 0.5, LABELS), "source_probs"),
        (lambda: leep(PROBS, LABELS[:4]), "labels"),
        (lambda: nce(LABELS + 0.5, LABELS), "source_preds"),
        (lambda: nce(LABELS[:5], LABELS), "labels"),
        (lambda: nce(np.ones((6, 2)), LABELS), "source_preds"),
        (lambda: transferability_scores(FEATURES, LABELS, source_probs=PROBS[:5]), "source_probs"),
        (lambda: transferability_scores(FEATURES, LABELS, source_probs=np.full((6, 4), 1.0)), "source_probs"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(InputError, match=rf"^{argument}:"):
        call()
