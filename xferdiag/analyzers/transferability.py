"""Transferability estimators: how well pretrained features (or a source model's outputs) suit the
target labels, computed before or without fine-tuning.

Every estimator is a plain function over arrays that returns a float; higher means more
transferable. Natural logarithms throughout. :func:`transferability_scores` runs them all and
returns the dictionary stored in ``analysis/transferability.json``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.covariance import LedoitWolf

from .._validate import check_array, check_labels, check_probabilities, check_same_rows
from ..errors import InputError

NO_SOURCE_HEAD = "needs the source model's class outputs (the pretrained head); this backbone has none"

_EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------- LogME


def logme(features, labels, *, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    """LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021): the maximised log evidence of a Bayesian linear model from features
    to each one-hot class target, divided by n and averaged over classes.

    For a target y (n,) and features F (n, d), with prior w ~ N(0, α⁻¹I) and noise precision β::

        log p(y | F, α, β) = d/2 log α + n/2 log β − n/2 log 2π
                             − β/2 ‖Fm − y‖² − α/2 ‖m‖² − 1/2 log|A|,
        A = αI + βFᵀF,   m = β A⁻¹ Fᵀ y.

    (α, β) are found with the paper's fixed-point updates γ = Σᵢ βσᵢ/(α + βσᵢ),
    α ← γ / ‖m‖², β ← (n − γ) / ‖Fm − y‖², where σᵢ are the eigenvalues of FᵀF.

    The decomposition is the expensive part and does not depend on the class, so it is done once:
    an eigendecomposition of FᵀF when d ≤ n, a thin SVD of F otherwise. Each class then costs
    O(min(n, d)) per iteration. The updates depend on (α, β) only through λ = α/β, so the loop
    runs on λ and stops when λ changes by less than ``tol`` (relative) or after ``max_iter`` steps.

    Departure from the paper: when n ≲ d the evidence can have two maxima in λ (a near
    interpolating fit and a strongly regularised one), and the paper's start α = β = 1 may climb
    the lower one. The iterations start instead from the best λ of a coarse log-spaced grid.
    """
    f = check_array(features, "features")
    return _logme(f, check_labels(labels, "labels", n=f.shape[0]), tol, max_iter)


def logme_regression(features, targets, *, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    """LogME of real-valued targets (You et al. 2021 define it for regression too): the same maximised log
    evidence per example, one Bayesian linear model per target column (n,) or (n, k), averaged over the columns.

    Each column is standardised first (zero mean, unit variance): the evidence of a target scaled by c moves by
    −log c, so without it a column in pixels would outweigh one in ratios, and scores of different data could
    not be read side by side. A constant column carries nothing to predict and is refused.
    """
    f = check_array(features, "features")
    t = check_array(targets, "targets")
    check_same_rows(f, t, ("features", "targets"))
    spread = t.std(axis=0)
    constant = spread <= np.abs(t).max(axis=0) * t.shape[0] * _EPS  # rounding noise around one value
    if constant.any():
        raise InputError(f"targets: column {int(np.argmax(constant))} is constant; there is nothing to predict")
    return _logme_targets(f, (t - t.mean(axis=0)) / spread, tol, max_iter)


def _logme(f: np.ndarray, y: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    return _logme_targets(f, _one_hot(y), tol, max_iter)


def _logme_targets(f: np.ndarray, targets: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    """Mean over the target columns (n, C) of each column's maximised log evidence, per example."""
    n = f.shape[0]
    sigma, z, y_sq = _spectrum_and_projections(f, targets)
    z_sq = z**2
    out_of_span = y_sq - z_sq.sum(axis=0)  # ‖y − UUᵀy‖², the part of y that F cannot reach
    out_of_span[out_of_span <= y_sq * max(f.shape) * _EPS] = 0.0  # rounding noise, not a residual
    # λ beyond these bounds no longer changes the evidence in float64: either the prior is
    # irrelevant, or it is so tight that only noise is left (a class the features cannot explain)
    scale = sigma.max() if sigma.size else 1.0  # all-zero features: only the noise model is left
    bounds = scale * _EPS**2, scale / _EPS
    grid = np.geomspace(*bounds, num=97)
    starts = grid[np.argmax(_log_evidence(grid, sigma, z_sq, out_of_span, n), axis=0)]
    evidences = []
    for c, start in enumerate(starts):
        lam = _fixed_point(start, sigma, z_sq[:, c], out_of_span[c], n, bounds, tol, max_iter)
        evidences.append(_log_evidence(np.array([lam]), sigma, z_sq[:, [c]], out_of_span[[c]], n)[0, 0])
    return float(np.mean(evidences) / n)


def _spectrum_and_projections(f: np.ndarray, onehot: np.ndarray):
    """Eigenvalues σ of FᵀF (numerically non-zero ones only), the target columns (one-hot classes or real values)
    projected on the matching left singular vectors (z = Uᵀy, shape (k, C)), and ‖y‖² per column (class counts)."""
    n, d = f.shape
    if d <= n:
        sigma, v = np.linalg.eigh(f.T @ f)
        proj = v.T @ (f.T @ onehot)  # = diag(s) Uᵀ Y
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        sigma = s**2
        proj = s[:, None] * (u.T @ onehot)
    keep = sigma > max(sigma.max(), 0.0) * max(n, d) * _EPS  # rounding-noise directions carry no signal
    sigma = sigma[keep]
    z = proj[keep] / np.sqrt(sigma)[:, None]
    return sigma, z, (onehot**2).sum(axis=0)


def _log_evidence(lam, sigma, z_sq, out_of_span, n):
    """Log evidence (G, C) at each λ = α/β of ``lam`` (G,) for the targets z² (k, C), with β at
    its optimum for that λ, β = n/E:  n/2 log(n / 2πE) − n/2 − 1/2 Σᵢ log(1 + σᵢ/λ), where
    E = ‖Fm − y‖² + λ‖m‖² = ‖y − UUᵀy‖² + λ Σᵢ zᵢ²/(λ + σᵢ) and the last sum is log|A| − d log α
    (zero eigenvalues add nothing). At a fixed point of the updates this β is the paper's β."""
    w = 1.0 / (lam[:, None] + sigma)
    energy = out_of_span + lam[:, None] * (w @ z_sq)
    log_det = np.log1p(sigma / lam[:, None]).sum(axis=1, keepdims=True)
    return n / 2 * np.log(n / (2 * np.pi * energy)) - n / 2 - 0.5 * log_det


def _fixed_point(lam, sigma, z_sq, out_of_span, n, bounds, tol, max_iter) -> float:
    """The paper's updates for one class, written in λ with sums of non-negative terms only:
    γ = Σ σ/(λ+σ), n − γ = (n − k) + Σ λ/(λ+σ), ‖m‖² = Σ σz²/(λ+σ)²,
    ‖Fm − y‖² = ‖y − UUᵀy‖² + Σ λ²z²/(λ+σ)²;  λ ← (α ← γ/‖m‖²) / (β ← (n − γ)/‖Fm − y‖²)."""
    rest_of_n = n - sigma.size
    for _ in range(max_iter):
        w = 1.0 / (lam + sigma)
        gamma = np.sum(sigma * w)
        m_sq = np.sum(sigma * z_sq * w * w)
        resid = out_of_span + lam * lam * np.sum(z_sq * w * w)
        new = bounds[1] if m_sq == 0.0 else gamma * resid / ((rest_of_n + lam * np.sum(w)) * m_sq)
        new = float(min(max(new, bounds[0]), bounds[1]))
        done = abs(math.log(new / lam)) < tol
        lam = new
        if done:
            break
    return lam


# ----------------------------------------------------------------------------- source-output scores


def leep(source_probs, labels) -> float:
    """LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned
    Representations", ICML 2020), from the source model's softmax outputs θ(xᵢ) on target data.

    P̂(y, z) = 1/n Σ_{i: yᵢ=y} θ(xᵢ)_z,  P̂(y | z) = P̂(y, z) / Σ_y' P̂(y', z),
    LEEP = 1/n Σᵢ log Σ_z P̂(yᵢ | z) θ(xᵢ)_z   (≤ 0; 0 when source classes decide target labels).
    """
    theta = check_probabilities(source_probs, "source_probs")
    return _leep(theta, check_labels(labels, "labels", n=theta.shape[0], rows_of="source_probs"))


def _leep(theta: np.ndarray, y: np.ndarray) -> float:
    joint = _one_hot(y).T @ theta / theta.shape[0]  # (C, Z)
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    eep = np.einsum("iz,iz->i", theta, conditional[y])
    return float(np.mean(np.log(eep)))


def nce(source_preds, labels) -> float:
    """NCE (Tran et al., "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019): the negative conditional entropy of target labels Y given the source model's hard
    predictions Z on the same inputs, from empirical frequencies:

    NCE = −H(Y | Z) = Σ_{y,z} P̂(y, z) log P̂(y | z)   (≤ 0; 0 when Z determines Y).
    """
    # hard predictions may cover any subset of the source classes, under any ids
    z = check_labels(source_preds, "source_preds", all_present=False, nonnegative=False)
    return _nce(z, check_labels(labels, "labels", n=z.shape[0], rows_of="source_preds"))


def _nce(z: np.ndarray, y: np.ndarray) -> float:
    _, z = np.unique(z, return_inverse=True)
    counts = np.zeros((y.max() + 1, z.max() + 1))
    np.add.at(counts, (y, z), 1.0)
    joint = counts / y.size
    conditional = counts / counts.sum(axis=0)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log(conditional[nonzero])))


# ----------------------------------------------------------------------------- H-score


def h_score(features, labels, shrinkage: bool = False) -> float:
    """H-score (Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer
    Learning", ICIP 2019): H = tr(cov(f)⁻¹ cov(E[f | y])), how much of the feature variance lies
    between the class means. A pseudo-inverse keeps it defined for singular covariances.

    ``shrinkage=True`` gives the regularised variant of Ibrahim et al. ("Newer is not always
    better: Rethinking transferability metrics, their peculiarities, stability and performance",
    ECML PKDD 2022), which stays stable when d is large relative to n:
    H_a = tr(cov_a(f)⁻¹ (1 − a) cov(E[f | y])) with the Ledoit–Wolf estimate
    cov_a(f) = (1 − a) cov(f) + a (tr cov(f) / d) I and its shrinkage a (sklearn's LedoitWolf).

    Covariances are the 1/n (maximum-likelihood) ones on both sides, so the normalisation cancels.
    """
    f = check_array(features, "features")
    return _h_score(f, check_labels(labels, "labels", n=f.shape[0]), shrinkage)


def _h_score(f: np.ndarray, y: np.ndarray, shrinkage: bool = False) -> float:
    definite = False
    if shrinkage:
        lw = LedoitWolf(store_precision=False).fit(f)  # its precision (a second d x d eigh) is never used
        cov, between_weight = lw.covariance_, 1.0 - lw.shrinkage_
        definite = lw.shrinkage_ > 0 and np.trace(cov) > 0  # the added (a tr/d) I makes it positive definite
    else:
        centred = f - f.mean(axis=0)
        cov, between_weight = centred.T @ centred / f.shape[0], 1.0
    onehot = _one_hot(y)
    counts = onehot.sum(axis=0)
    offsets = onehot.T @ f / counts[:, None] - f.mean(axis=0)  # class mean minus overall mean
    # tr(P Σ_b) with Σ_b = Σ_c p_c δ_c δ_cᵀ is Σ_c p_c δ_cᵀ P δ_c; a positive definite Σ needs a
    # Cholesky solve, not the eigendecomposition of a pseudo-inverse (at d = 1280, 3 s of 3.3)
    if definite:
        quad = np.einsum("cd,dc->c", offsets, cho_solve(cho_factor(cov), offsets.T))
    else:
        quad = np.einsum("cd,de,ce->c", offsets, np.linalg.pinv(cov, hermitian=True), offsets)
    return float(between_weight * np.sum(counts / y.size * quad))


# ----------------------------------------------------------------------------- all at once


def transferability_scores(features, labels, source_probs=None) -> dict:
    """Every estimator on one set of target features: the content of ``analysis/transferability.json``.

    ``source_probs`` are the source model's class probabilities on the same examples; without them
    (a backbone whose pretrained head is gone) LEEP and NCE are ``None`` with the reason, never a
    made-up number. Returns ``{"scores": {name: float | None}, "not_applicable": {name: reason},
    "notes": {name: caveat}, "seconds": {name: s}}`` (seconds only for the scores computed; a note
    where a number is true but says nothing, see :func:`h_score_note`).
    """
    f = check_array(features, "features")
    y = check_labels(labels, "labels", n=f.shape[0])
    jobs = {
        "logme": lambda: _logme(f, y),
        "leep": None,
        "nce": None,
        "h_score": lambda: _h_score(f, y),
        "h_score_shrinkage": lambda: _h_score(f, y, shrinkage=True),
    }
    not_applicable = {}
    if source_probs is None:
        not_applicable = {"leep": NO_SOURCE_HEAD, "nce": NO_SOURCE_HEAD}
    else:
        theta = check_probabilities(source_probs, "source_probs")
        check_same_rows(f, theta, ("features", "source_probs"))
        jobs["leep"] = lambda: _leep(theta, y)
        jobs["nce"] = lambda: _nce(theta.argmax(axis=1), y)
    scores, seconds = {}, {}
    for name, job in jobs.items():
        if job is None:
            scores[name] = None
            continue
        start = time.perf_counter()
        scores[name] = job()
        seconds[name] = time.perf_counter() - start
    note = h_score_note(scores["h_score"], f.shape, int(np.unique(y).size))
    return {"scores": scores, "not_applicable": not_applicable, "notes": {"h_score": note} if note else {},
            "seconds": seconds}


def h_score_note(value: float, shape: tuple[int, int], n_classes: int) -> str | None:
    """Why a plain H-score at its ceiling of (classes - 1) carries no information when examples do not
    outnumber features: the sample covariance is then singular and its pseudo-inverse separates any
    labelling perfectly (shuffled labels score the same), so only the shrinkage variant can rank."""
    n, d = shape
    ceiling = n_classes - 1
    if n - 1 > d or ceiling < 1 or value < ceiling * (1 - 1e-6):
        return None
    return (f"at its ceiling of {ceiling} (classes - 1): {n} examples of {d} features leave the covariance singular, "
            "so any labelling scores the same; read the shrinkage variant")


# ----------------------------------------------------------------------------- helpers


def _one_hot(y: np.ndarray) -> np.ndarray:
    out = np.zeros((y.size, int(y.max()) + 1))
    out[np.arange(y.size), y] = 1.0
    return out
