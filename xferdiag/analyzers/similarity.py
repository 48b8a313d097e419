"""How alike are two representations of the same examples, and what do two domains look like?

CKA (Kornblith et al., ICML 2019) compares the activations ``x`` (n, p) and ``y`` (n, q) of two
layers or models on the same n examples; widths may differ. It is invariant to orthogonal
transforms and isotropic scaling of either side, 1 for identical representations and near 0 for
unrelated ones. ``embed_2d`` makes the 2-D picture of source vs target features for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from .._validate import check_array, check_same_rows, check_samples, check_scalar, check_seed
from ..errors import InputError

TSNE_MAX_POINTS = 5000
"""``method="auto"`` uses t-SNE up to this many points in total and PCA above (t-SNE gets slow)."""


def _paired(x, y, debiased: bool) -> tuple[np.ndarray, np.ndarray]:
    min_rows = 4 if debiased else 2  # the unbiased HSIC divides by n - 3
    x, y = check_array(x, "x", min_rows=min_rows), check_array(y, "y", min_rows=min_rows)
    check_same_rows(x, y, ("x", "y"), "; CKA compares the same examples")
    return x, y


def _cka(hsic_xy: float, hsic_xx: float, hsic_yy: float) -> float:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    for name, value in (("x", hsic_xx), ("y", hsic_yy)):
        if not value > 0:
            raise InputError(f"{name}: CKA is undefined for a constant representation "
                             "(or, debiased, for too few examples)")
    return float(hsic_xy / np.sqrt(hsic_xx * hsic_yy))


def _linear_hsic(a: np.ndarray, b: np.ndarray, debiased: bool) -> float:
    """HSIC of K = aa', L = bb' without forming the n x n Gram matrices (a, b column-centred).

    Biased: tr(KL) = ||a'b||_F² (the 1/(n-1)² factor cancels in CKA). Debiased: the unbiased
    estimator of Song et al. (JMLR 2012), with K~, L~ the Grams with zeroed diagonal,
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
    """
    cross = float(np.sum((a.T @ b) ** 2))
    if not debiased:
        return cross
    n = len(a)
    diag_k, diag_l = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    row_k, row_l = a @ a.sum(0) - diag_k, b @ b.sum(0) - diag_l
    trace = cross - diag_k @ diag_l
    return float((trace + row_k.sum() * row_l.sum() / ((n - 1) * (n - 2)) - 2 * row_k @ row_l / (n - 2))
                 / (n * (n - 3)))


def _gram_hsic(k: np.ndarray, l: np.ndarray, debiased: bool) -> float:
    """The same two estimators from explicit Gram matrices: tr(HKHL), or Song et al.'s unbiased one."""
    n = len(k)
    if not debiased:
        kc = k - k.mean(0) - k.mean(1)[:, None] + k.mean()
        return float(np.sum(kc * l))
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    rows_k, rows_l = k.sum(1), l.sum(1)
    return float((np.sum(k * l) + rows_k.sum() * rows_l.sum() / ((n - 1) * (n - 2))
                  - 2 * rows_k @ rows_l / (n - 2)) / (n * (n - 3)))


def linear_cka(x, y, debiased: bool = False) -> float:
    """Linear CKA: ||x'y||_F² / (||x'x||_F ||y'y||_F) on column-centred x, y (Kornblith et al. 2019).

    ``debiased=True`` plugs in the unbiased HSIC estimator (Song et al. 2012), which removes the
    upward bias that makes unrelated wide representations look similar at small n (n >= 4).
    Runs in O(n·p·q) time and memory O(p·q): no n x n matrix. Equal inputs (a layer that fine-tuning
    left frozen) need one HSIC instead of three: the three would be the same number.
    """
    x, y = _paired(x, y, debiased)
    x, y = x - x.mean(0), y - y.mean(0)
    if np.array_equal(x, y):
        hsic = _linear_hsic(x, x, debiased)
        return _cka(hsic, hsic, hsic)
    return _cka(_linear_hsic(x, y, debiased), _linear_hsic(x, x, debiased), _linear_hsic(y, y, debiased))


def _rbf_gram(x: np.ndarray, sigma_frac: float) -> np.ndarray:
    """exp(-d² / (2σ²)) with σ = sigma_frac x the median pairwise distance (distinct pairs, zeros
    from duplicate rows left out), as Kornblith et al. 2019 choose σ."""
    sq = pdist(x, "sqeuclidean")
    positive = sq[sq > 0]
    if positive.size == 0:
        return np.ones((len(x), len(x)))  # constant representation: _cka reports it
    return np.exp(-squareform(sq) / (2 * sigma_frac**2 * np.median(positive)))


def rbf_cka(x, y, sigma_frac: float = 0.8, debiased: bool = False) -> float:
    """CKA with Gaussian kernels, σ = ``sigma_frac`` x median distance on each side (Kornblith et
    al. 2019 report 0.2-0.8; large values approach linear CKA). Builds n x n Gram matrices."""
    x, y = _paired(x, y, debiased)
    sigma_frac = check_scalar(sigma_frac, "sigma_frac", float, 0.0)
    k, l = _rbf_gram(x, sigma_frac), _rbf_gram(y, sigma_frac)
    return _cka(_gram_hsic(k, l, debiased), _gram_hsic(k, k, debiased), _gram_hsic(l, l, debiased))


@dataclass(frozen=True, eq=False)
class Embedding:
    """2-D coordinates of source and target points for a scatter plot.

    ``xy`` (n, 2) float; ``domain`` (n,) 0 = source, 1 = target; ``index`` (n,) the row of each
    point in its own input, so labels can be looked up; ``method`` "tsne" or "pca".
    """

    xy: np.ndarray
    domain: np.ndarray
    index: np.ndarray
    method: str


def embed_2d(x, y, seed: int = 0, max_points: int = 2000, method: str = "auto") -> Embedding:
    """Embed source ``x`` and target ``y`` features together in 2-D.

    At most ``max_points`` rows per side are kept (seeded subsample, original order). ``method``
    "tsne": PCA to 50 dimensions, then t-SNE (van der Maaten & Hinton 2008; perplexity
    min(30, (n-1)/3), PCA initialisation); "pca": the first two principal components; "auto":
    t-SNE up to TSNE_MAX_POINTS points in total, PCA above.
    """
    x, y = check_samples(x, y)
    max_points = check_scalar(max_points, "max_points", int, 2)
    rng = check_seed(seed)
    if method not in ("auto", "tsne", "pca"):
        raise InputError(f"method: must be 'auto', 'tsne' or 'pca', got {method!r}")
    picks = [np.sort(rng.choice(len(a), max_points, replace=False)) if len(a) > max_points
             else np.arange(len(a)) for a in (x, y)]
    points = np.concatenate([x[picks[0]], y[picks[1]]])
    domain = np.repeat([0, 1], [len(picks[0]), len(picks[1])])
    if method == "auto":
        method = "tsne" if len(points) <= TSNE_MAX_POINTS else "pca"
    if points.shape[1] == 1:  # one feature: nothing to project, plot it against 0
        points = np.hstack([points, np.zeros_like(points)])
    state = int(rng.integers(2**31))
    if method == "pca":
        xy = PCA(n_components=2, random_state=state).fit_transform(points)
    else:
        if points.shape[1] > 50:
            points = PCA(n_components=min(50, len(points)), random_state=state).fit_transform(points)
        xy = TSNE(perplexity=min(30.0, (len(points) - 1) / 3), init="pca", learning_rate="auto",
                  random_state=state).fit_transform(points)
    return Embedding(xy.astype(np.float64), domain, np.concatenate(picks), method)
