"""How far apart are the source and target samples in feature space, and is the gap real?

Every function takes two samples of features from the same model and layer, ``x`` of shape
(n, d) (source) and ``y`` of shape (m, d) (target), and returns a small frozen result whose
``to_dict()`` holds plain Python numbers for ``analysis/shift.json``. Anything random takes
``seed`` (an integer >= 0), so the same call gives the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from scipy.spatial.distance import pdist
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validate import as_matrix, positive_int, real_between, same_width
from ..errors import InputError

MEDIAN_SUBSAMPLE = 1000
"""The median heuristic looks at the pairwise distances of at most this many pooled points
(a seeded random subset): ~500k distances pin the median down to about a percent."""

MAX_BLOCK = 4096
"""The block estimator uses at most this many points of each sample per block (memory bound)."""

_CHUNK_ELEMENTS = 1 << 22  # permutations per batch x pooled size: two float64 buffers of 32 MB
_TIE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}  # rounding ties count as exceedances


def _samples(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_matrix(x, "x"), as_matrix(y, "y")
    same_width(x, y)
    return x, y


def _balanced(x, y, rng) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger sample to the size of the smaller so that chance accuracy is 1/2."""
    k = min(len(x), len(y))
    x = x[np.sort(rng.choice(len(x), k, replace=False))] if len(x) > k else x
    y = y[np.sort(rng.choice(len(y), k, replace=False))] if len(y) > k else y
    return np.concatenate([x, y]), np.repeat([0, 1], k)


def _domain_classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# --------------------------------------------------------------------------------------- MMD


@dataclass(frozen=True)
class MMDResult:
    """Unbiased MMD² with a Gaussian kernel of width ``bandwidth`` and its p-value.

    ``estimator`` is ``"permutation"`` (full U-statistic, permutation p-value from
    ``n_permutations`` permutations) or ``"block"`` (B-test, asymptotic normal p-value;
    ``n_permutations`` is then 0).
    """

    statistic: float
    p_value: float
    bandwidth: float
    n_permutations: int
    estimator: str

    def to_dict(self) -> dict:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "bandwidth": self.bandwidth,
            "n_permutations": self.n_permutations,
            "estimator": self.estimator,
        }


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device: CUDA was asked for but is not available; pass device='cpu'")
    return dev


def _median_bandwidth(x: np.ndarray, y: np.ndarray, rng) -> float:
    """Median heuristic (Gretton et al. 2012): σ = median Euclidean distance between pooled points.

    Computed on at most MEDIAN_SUBSAMPLE seeded random points. Zero distances (duplicate rows)
    are left out so that σ > 0; if every point is the same, any σ gives the same test and 1 is used.
    """
    n, total = len(x), len(x) + len(y)
    pick = np.arange(total)
    if total > MEDIAN_SUBSAMPLE:
        pick = np.sort(rng.choice(total, MEDIAN_SUBSAMPLE, replace=False))
    dist = pdist(np.concatenate([x[pick[pick < n]], y[pick[pick >= n] - n]]))
    dist = dist[dist > 0]
    return float(np.median(dist)) if dist.size else 1.0


def _pooled_kernel(z: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-||a - b||² / (2σ²)) for all row pairs of z (..., N, d), from one matmul, in place,
    with the diagonal set to 0 so that sums over the matrix skip i = j."""
    sq = z.square().sum(-1)
    k = (z @ z.transpose(-1, -2)).mul_(-2).add_(sq.unsqueeze(-1)).add_(sq.unsqueeze(-2)).clamp_(min=0)
    k.mul_(-0.5 / sigma**2).exp_().diagonal(dim1=-2, dim2=-1).zero_()
    return k


def _mmd2_unbiased(k: torch.Tensor, masks: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Unbiased MMD² (Gretton et al. 2012, eq. 3) of kernel matrices ``k`` (..., N, N) from
    ``_pooled_kernel`` for every labelling in ``masks`` (B, N) at once; shape (..., B).

    A mask row ``a`` marks the n points labelled x (b = 1 - a the m labelled y). With a zero
    diagonal, sum Kxx = a'Ka, sum Kxy = a'K1 - a'Ka, sum Kyy = 1'K1 - 2a'K1 + a'Ka: one matmul
    per batch, reductions in float64.
    """
    rows = k.sum(-1, dtype=torch.float64).unsqueeze(-2)
    kxx = ((masks @ k) * masks).sum(-1, dtype=torch.float64)
    kx1 = (rows * masks).sum(-1)
    kxy = kx1 - kxx
    kyy = rows.sum(-1) - 2 * kx1 + kxx
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m)


def _permutation_masks(rng, n: int, m: int, count: int) -> np.ndarray:
    """``count`` independent random relabellings, one row each (1 = labelled x).

    Rows are drawn one after the other from ``rng``, so splitting the permutations into batches
    of any size gives the same relabellings.
    """
    return rng.permuted(np.tile(np.r_[np.ones(n), np.zeros(m)], (count, 1)), axis=1)


def _permutation_test(x, y, sigma, n_permutations, rng, dev, dtype) -> tuple[float, float]:
    n, m = len(x), len(y)
    z = torch.from_numpy(np.concatenate([x, y])).to(dev, dtype)
    k = _pooled_kernel(z, sigma)
    observed = _mmd2_unbiased(k, torch.cat([torch.ones(1, n), torch.zeros(1, m)], 1).to(dev, dtype), n, m)
    threshold = observed.item() - _TIE_TOLERANCE[dtype]
    batch = max(1, min(n_permutations, _CHUNK_ELEMENTS // (n + m)))
    exceed = 0
    for start in range(0, n_permutations, batch):
        masks = _permutation_masks(rng, n, m, min(batch, n_permutations - start))
        null = _mmd2_unbiased(k, torch.from_numpy(masks).to(dev, dtype), n, m)
        exceed += int((null >= threshold).sum())
    return observed.item(), (exceed + 1) / (n_permutations + 1)


def _block_test(x, y, sigma, rng, dev, dtype) -> tuple[float, float]:
    """B-test (Zaremba, Gretton & Blaschko 2013) for samples too large for one kernel matrix.

    Both samples are shuffled and cut into k = max(2, floor(sqrt(min(n, m)))) blocks of equal
    size, at most MAX_BLOCK points per sample; points beyond k full blocks are not used (a few,
    or many if one sample is more than MAX_BLOCK times sqrt(min(n, m)) points long). The unbiased
    MMD² of each block is i.i.d., so their mean is asymptotically normal with variance
    var(blocks)/k: one-sided p-value from the normal tail. Memory O(block²), time O((n+m) sqrt(n) d).
    """
    n, m = len(x), len(y)
    k = max(2, math.isqrt(min(n, m)))
    bx, by = min(n // k, MAX_BLOCK), min(m // k, MAX_BLOCK)
    if min(bx, by) < 2:
        name = "x" if n < m else "y"
        raise InputError(f"{name}: the block estimator needs at least 4 samples in each sample; "
                         "raise block_threshold")
    xi = rng.permutation(n)[: k * bx].reshape(k, bx)
    yi = rng.permutation(m)[: k * by].reshape(k, by)
    mask = torch.cat([torch.ones(1, bx), torch.zeros(1, by)], 1).to(dev, dtype)
    size = bx + by
    batch = max(1, _CHUNK_ELEMENTS // (size * max(size, x.shape[1])))  # blocks per kernel batch
    values = []
    for start in range(0, k, batch):
        z = np.concatenate([x[xi[start:start + batch]], y[yi[start:start + batch]]], axis=1)
        kernels = _pooled_kernel(torch.from_numpy(z).to(dev, dtype), sigma)
        values.append(_mmd2_unbiased(kernels, mask, bx, by)[:, 0].cpu().numpy())
    values = np.concatenate(values)
    mean, se = values.mean(), values.std(ddof=1) / math.sqrt(k)
    z_score = mean / se if se > 0 else (math.inf if mean > 0 else 0.0)
    return float(mean), float(stats.norm.sf(z_score))


def mmd_test(x, y, n_permutations: int = 1000, bandwidth="median", seed: int = 0, device=None,
             block_threshold: int = 10_000) -> MMDResult:
    """Kernel two-sample test: unbiased MMD² with a Gaussian kernel (Gretton et al., JMLR 2012).

    ``bandwidth`` is σ in k(a, b) = exp(-||a - b||² / (2σ²)), or ``"median"`` for the median
    heuristic (median pooled pairwise distance, on a seeded subsample of MEDIAN_SUBSAMPLE points).

    Up to ``block_threshold`` pooled points the kernel matrix is computed once (8·(n+m)² bytes in
    float64; float32 on CUDA) and the permutation distribution comes from batched matmuls; the
    p-value (k + 1)/(B + 1) counts the k of B permutations at least as large and is never 0.
    Above it the B-test is used (see ``_block_test``) so memory stays bounded.
    ``device`` None uses CUDA when available.
    """
    x, y = _samples(x, y)
    n_permutations = positive_int(n_permutations, "n_permutations")
    block_threshold = positive_int(block_threshold, "block_threshold")
    rng = np.random.default_rng(positive_int(seed, "seed", minimum=0))
    dev = _device(device)
    dtype = torch.float64 if dev.type == "cpu" else torch.float32
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise InputError(f"bandwidth: must be 'median' or a positive number, got {bandwidth!r}")
        sigma = _median_bandwidth(x, y, rng)
    else:
        sigma = real_between(bandwidth, "bandwidth")
    if len(x) + len(y) > block_threshold:
        statistic, p_value = _block_test(x, y, sigma, rng, dev, dtype)
        return MMDResult(statistic, p_value, sigma, 0, "block")
    statistic, p_value = _permutation_test(x, y, sigma, n_permutations, rng, dev, dtype)
    return MMDResult(statistic, p_value, sigma, n_permutations, "permutation")


# ------------------------------------------------------------------------ domain classifiers


@dataclass(frozen=True)
class ProxyADistance:
    """Proxy A-distance 2(1 - 2ε) with a 95% interval; ``error`` is ε, ``n_per_domain`` the
    (balanced) number of points per domain that the classifier saw."""

    value: float
    ci95: tuple[float, float]
    error: float
    n_per_domain: int

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": list(self.ci95), "error": self.error,
                "n_per_domain": self.n_per_domain}


def proxy_a_distance(x, y, seed: int = 0, n_splits: int = 5) -> ProxyADistance:
    """Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016): 2(1 - 2ε), clipped to [0, 2].

    ε is the ``n_splits``-fold cross-validated error of a logistic-regression domain classifier
    on standardized features, with the larger sample subsampled to the size of the smaller.
    0 means the domains cannot be told apart linearly, 2 that they separate perfectly. The 95%
    interval is the Wilson interval on ε over the pooled out-of-fold predictions (treated as
    independent), mapped through the same formula.
    """
    x, y = _samples(x, y)
    n_splits = positive_int(n_splits, "n_splits", minimum=2)
    rng = np.random.default_rng(positive_int(seed, "seed", minimum=0))
    if min(len(x), len(y)) < n_splits:
        raise InputError(f"n_splits: each sample needs at least n_splits={n_splits} points, "
                         f"got {min(len(x), len(y))}; lower n_splits")
    features, domain = _balanced(x, y, rng)
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=int(rng.integers(2**31)))
    predicted = cross_val_predict(_domain_classifier(), features, domain, cv=folds)
    wrong = int((predicted != domain).sum())
    low, high = stats.binomtest(wrong, len(domain)).proportion_ci(method="wilson")

    def pad(eps: float) -> float:
        return float(np.clip(2 * (1 - 2 * eps), 0.0, 2.0))

    eps = wrong / len(domain)
    return ProxyADistance(pad(eps), (pad(high), pad(low)), eps, len(domain) // 2)


@dataclass(frozen=True)
class C2STResult:
    """Held-out accuracy of the domain classifier and its one-sided binomial p-value vs 1/2."""

    accuracy: float
    p_value: float
    n_test: int

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "p_value": self.p_value, "n_test": self.n_test}


def classifier_two_sample_test(x, y, seed: int = 0, test_size: float = 0.5,
                               classifier=None) -> C2STResult:
    """Classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017).

    Train a classifier to tell x from y (larger sample subsampled to the smaller so chance is
    1/2) on a stratified split, score it on the ``test_size`` held-out part; under "same
    distribution" the number correct is Binomial(n_test, 1/2). ``classifier`` is any
    scikit-learn classifier (cloned); the default is logistic regression on standardized features.
    """
    x, y = _samples(x, y)
    test_size = real_between(test_size, "test_size", 0.0, 1.0)
    rng = np.random.default_rng(positive_int(seed, "seed", minimum=0))
    features, domain = _balanced(x, y, rng)
    n_test = math.ceil(test_size * len(domain))
    if n_test < 2 or len(domain) - n_test < 2:
        raise InputError(f"test_size: leaves {n_test} of {len(domain)} balanced points for testing; "
                         "both parts need at least 2")
    x_train, x_test, d_train, d_test = train_test_split(
        features, domain, test_size=n_test, stratify=domain, random_state=int(rng.integers(2**31)))
    model = clone(classifier) if classifier is not None else _domain_classifier()
    correct = int((model.fit(x_train, d_train).predict(x_test) == d_test).sum())
    p_value = stats.binomtest(correct, n_test, 0.5, alternative="greater").pvalue
    return C2STResult(correct / n_test, float(p_value), n_test)


# ------------------------------------------------------------------------------ Fréchet


@dataclass(frozen=True)
class FrechetResult:
    """Fréchet distance between Gaussians fitted to the two samples (squared units of the features)."""

    value: float

    def to_dict(self) -> dict:
        return {"value": self.value}


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(x, y) -> FrechetResult:
    """||μx - μy||² + Tr(Σx + Σy - 2(Σx Σy)^½) (Dowson & Landau 1982; FID, Heusel et al. 2017).

    Tr((Σx Σy)^½) = Tr((Σx^½ Σy Σx^½)^½), and the inner matrix is symmetric PSD, so both roots
    come from symmetric eigendecompositions with tiny negative eigenvalues clipped to 0: stable
    for singular covariances (d > n), no complex parts, float64 throughout.
    """
    x, y = _samples(x, y)
    cx, cy = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root = _psd_sqrt(cx)
    inner = np.linalg.eigvalsh(root @ cy @ root)
    trace_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    value = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(cx) + np.trace(cy) - 2 * trace_sqrt
    return FrechetResult(float(max(value, 0.0)))


# ----------------------------------------------------------------------- per-dimension KS


@dataclass(frozen=True, eq=False)
class KSResult:
    """Share of feature dimensions whose marginal shifted, after Benjamini-Hochberg at ``alpha``.

    ``p_values`` (raw two-sample KS) and ``q_values`` (BH-adjusted) have one entry per dimension;
    ``to_dict()`` leaves these arrays out (they can be thousands long).
    """

    fraction_shifted: float
    n_dimensions: int
    alpha: float
    p_values: np.ndarray
    q_values: np.ndarray

    def to_dict(self) -> dict:
        return {"fraction_shifted": self.fraction_shifted, "n_dimensions": self.n_dimensions,
                "alpha": self.alpha}


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH step-up adjusted p-values (Benjamini & Hochberg 1995): q_(i) = min_{j>=i} p_(j)·d/j, at most 1."""
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.empty_like(p)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def ks_shift(x, y, alpha: float = 0.05) -> KSResult:
    """Two-sample Kolmogorov-Smirnov test per dimension with a Benjamini-Hochberg FDR correction,
    as in "Failing Loudly" (Rabanser et al., NeurIPS 2019)."""
    x, y = _samples(x, y)
    alpha = real_between(alpha, "alpha", 0.0, 1.0)
    p = np.atleast_1d(stats.ks_2samp(x, y, axis=0).pvalue).astype(np.float64)
    q = _benjamini_hochberg(p)
    return KSResult(float(np.mean(q <= alpha)), int(p.size), alpha, p, q)


@dataclass(frozen=True, eq=False)
class FeatureShift:
    """Per-feature shift between two tables: KS statistic, raw and Benjamini-Hochberg-adjusted
    p-values, and the standardised mean difference (target minus source, in pooled SDs)."""

    names: list[str]
    ks_statistic: np.ndarray
    p_value: np.ndarray
    p_adjusted: np.ndarray
    smd: np.ndarray
    alpha: float

    def to_list(self) -> list[dict]:
        """One entry per feature, for ``shift.json["per_feature"]``."""
        return [{"name": name, "ks_statistic": float(k), "p_value": float(p), "p_adjusted": float(q),
                 "smd": float(d), "shifted": bool(q <= self.alpha)}
                for name, k, p, q, d in zip(self.names, self.ks_statistic, self.p_value, self.p_adjusted, self.smd)]


def feature_shift(x, y, feature_names=None, alpha: float = 0.05) -> FeatureShift:
    """Which input features shifted: the KS test of ``ks_shift`` per column with its statistic, and
    Cohen's d = (mean_y - mean_x) / pooled SD (0 for a column constant in both samples)."""
    x, y = _samples(x, y)
    alpha = real_between(alpha, "alpha", 0.0, 1.0)
    names = [f"x{j}" for j in range(x.shape[1])] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != x.shape[1]:
        raise InputError(f"feature_names: has {len(names)} names for {x.shape[1]} features")
    ks = stats.ks_2samp(x, y, axis=0)
    p = np.atleast_1d(ks.pvalue).astype(np.float64)
    n, m = len(x), len(y)
    pooled = np.sqrt(((n - 1) * x.var(0, ddof=1) + (m - 1) * y.var(0, ddof=1)) / (n + m - 2))
    diff = y.mean(0) - x.mean(0)
    smd = np.divide(diff, pooled, out=np.zeros_like(diff), where=pooled > 0)
    return FeatureShift(names, np.atleast_1d(ks.statistic).astype(np.float64), p, _benjamini_hochberg(p), smd, alpha)


# ---------------------------------------------------------------------------- label shift


@dataclass(frozen=True)
class LabelShiftResult:
    """Class priors of each domain (index = class id) and their total-variation distance."""

    classes: list[int]
    source: list[float]
    target: list[float]
    total_variation: float

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "source": list(self.source), "target": list(self.target),
                "total_variation": self.total_variation}


def _class_ids(labels, name: str) -> np.ndarray:
    """Whole-number labels >= 0. Unlike ``as_labels``, classes may be missing: a target domain
    without some class is exactly the label shift this measures."""
    arr = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D array of class labels, got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name}: labels must be integers 0..C-1, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)) or arr.min() < 0:
        raise InputError(f"{name}: labels must be whole numbers 0..C-1")
    return arr.astype(np.int64)


def label_shift(source_labels, target_labels, n_classes: int | None = None) -> LabelShiftResult:
    """Class priors p_s, p_t and TV(p_s, p_t) = ½ Σ_c |p_s(c) - p_t(c)| (0 same mix, 1 disjoint).

    ``n_classes`` defaults to one more than the largest label seen in either domain.
    """
    source = _class_ids(source_labels, "source_labels")
    target = _class_ids(target_labels, "target_labels")
    seen = int(max(source.max(), target.max())) + 1
    n_classes = seen if n_classes is None else positive_int(n_classes, "n_classes")
    if n_classes < seen:
        raise InputError(f"n_classes: is {n_classes} but the labels go up to {seen - 1}")
    p = np.bincount(source, minlength=n_classes) / source.size
    q = np.bincount(target, minlength=n_classes) / target.size
    return LabelShiftResult(list(range(n_classes)), p.tolist(), q.tolist(), float(0.5 * np.abs(p - q).sum()))
