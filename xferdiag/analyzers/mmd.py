"""Kernel two-sample test: is the gap between source ``x`` (n, d) and target ``y`` (m, d) real?

The unbiased MMD² with Gaussian kernels (Gretton et al., JMLR 2012), its permutation p-value
from batched matmuls on pooled kernel matrices, and the block B-test for samples too large for
one. Random draws (median-heuristic subsample, permutations, blocks) come from ``seed``.

Why several kernels. One Gaussian kernel at the median bandwidth on raw features sees Euclidean
distance, which the high-variance directions dominate: a shift along directions of small variance
(LayerNorm'd transformer embeddings, where a linear domain classifier separates source from target
almost perfectly) moves distances by a negligible fraction of the median and the test has no power
(the text-cues demo: p = 0.93 at the pooled layer with proxy A-distance 1.9). The default test
therefore looks in two geometries, both functions of the pooled sample only (relabelling leaves
them unchanged, so the permutation test stays exact): ``standardized`` (each feature z-scored),
which equalises features, and ``whitened`` (the standardised features in coordinates where their
Ledoit-Wolf shrunk correlation matrix is the identity: a regularised Mahalanobis distance), which
equalises directions; shrinkage keeps it from turning n ≈ d samples into equidistant noise. In each
it tries the median distance times SCALES, since a shift far from the median scale is missed at the
median. The statistic is the largest of the ten MMD² values, each standardised by the mean and
deviation of its own permutation distribution, and every kernel is scored on the same
permutations, so the max is calibrated exactly (the aggregation of MMD-Agg, Schrab et al. 2023, in
a max-of-standardised-statistics form). The cost is ten kernel matrices and ten sets of batched
matmuls instead of one. The reported MMD² is that of one fixed kernel, the whitened geometry at its
median bandwidth: dimensionless and on the same scale at every layer; ``kernels`` lists all ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from scipy.spatial.distance import pdist

from .._validate import check_samples, check_scalar, check_seed
from ..errors import InputError
from .permutation_groups import GroupDesign, group_design, group_masks, group_subset

MEDIAN_SUBSAMPLE = 1000
"""The median heuristic looks at the pairwise distances of at most this many pooled points
(a seeded random subset): ~500k distances pin the median down to about a percent."""

MAX_BLOCK = 4096
"""The block estimator uses at most this many points of each sample per block (memory bound)."""

_CHUNK_ELEMENTS = 1 << 22  # permutations per batch x pooled size: two float64 buffers of 32 MB
_TIE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}  # rounding ties count as exceedances

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
"""The aggregated test's bandwidths, as multiples of the median pooled distance in each geometry."""


@dataclass(frozen=True)
class MMDResult:
    """Unbiased MMD² with a Gaussian kernel of width ``bandwidth`` on the ``features`` geometry
    (``"raw"``, or ``"whitened"`` for the aggregated test), and the test's p-value.

    ``kernels``: (geometry, σ, MMD²) of every kernel the test used; ``chosen``: the index of the
    one with the largest standardised MMD² (with the B-test, the smallest p-value).
    ``estimator`` is ``"permutation"`` (full U-statistic, permutation p-value from
    ``n_permutations`` permutations) or ``"block"`` (B-test, asymptotic normal p-value;
    ``n_permutations`` is then 0). ``groups``: how many groups the permutations moved whole (None:
    points moved one by one).
    """

    statistic: float
    p_value: float
    bandwidth: float
    n_permutations: int
    estimator: str
    features: str = "raw"
    kernels: tuple = ()
    chosen: int = 0
    groups: int | None = None

    def to_dict(self) -> dict:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "bandwidth": self.bandwidth,
            "n_permutations": self.n_permutations,
            "estimator": self.estimator,
            "features": self.features,
            "kernels": [{"features": name, "bandwidth": sigma, "mmd2": value} for name, sigma, value in self.kernels],
            "chosen_kernel": self.chosen,
            "groups": self.groups,
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


def _mmd2_unbiased(k: torch.Tensor, masks: torch.Tensor, n: int, m: int, groups: bool = False) -> torch.Tensor:
    """Unbiased MMD² (Gretton et al. 2012, eq. 3) of kernel matrices ``k`` (..., N, N) from
    ``_pooled_kernel`` for every labelling in ``masks`` (B, N) at once; shape (..., B).

    A mask row ``a`` marks the n points labelled x (b = 1 - a the m labelled y). With a zero
    diagonal, sum Kxx = a'Ka, sum Kxy = a'K1 - a'Ka, sum Kyy = 1'K1 - 2a'K1 + a'Ka: one matmul
    per batch, reductions in float64. ``groups``: the masks' rows need not hold n points labelled x.
    """
    rows = k.sum(-1, dtype=torch.float64).unsqueeze(-2)
    kxx = ((masks @ k) * masks).sum(-1, dtype=torch.float64)
    kx1 = (rows * masks).sum(-1)
    kxy = kx1 - kxx
    kyy = rows.sum(-1) - 2 * kx1 + kxx
    if groups:  # whole groups move, so each labelling has its own sample sizes (a side of one point has no pairs: 0)
        n = masks.sum(-1, dtype=torch.float64)
        m = masks.shape[-1] - n
        return kxx / (n * (n - 1)).clamp(min=1) + kyy / (m * (m - 1)).clamp(min=1) - 2 * kxy / (n * m).clamp(min=1)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m)


def _permutation_masks(rng, n: int, m: int, count: int) -> np.ndarray:
    """``count`` independent random relabellings, one row each (1 = labelled x).

    Rows are drawn one after the other from ``rng``, so splitting the permutations into batches
    of any size gives the same relabellings.
    """
    return rng.permuted(np.tile(np.r_[np.ones(n), np.zeros(m)], (count, 1)), axis=1)


def _null_values(z: np.ndarray, sigma: float, n: int, n_permutations: int, masks_seed: int, dev, dtype,
                 design: GroupDesign | None = None) -> np.ndarray:
    """MMD² of one kernel for the observed labelling (entry 0) and ``n_permutations`` relabellings
    drawn from ``masks_seed`` (whole groups of ``design`` moving together, when given): every kernel
    of an aggregated test sees the same relabellings."""
    m = len(z) - n
    k = _pooled_kernel(torch.from_numpy(z).to(dev, dtype), sigma)
    observed = _mmd2_unbiased(k, torch.cat([torch.ones(1, n), torch.zeros(1, m)], 1).to(dev, dtype), n, m)
    rng, values = np.random.default_rng(masks_seed), [observed.cpu().numpy()]
    batch = max(1, min(n_permutations, _CHUNK_ELEMENTS // (n + m)))
    for start in range(0, n_permutations, batch):
        count = min(batch, n_permutations - start)
        masks = _permutation_masks(rng, n, m, count) if design is None else group_masks(rng, design, count)
        values.append(_mmd2_unbiased(k, torch.from_numpy(masks).to(dev, dtype), n, m, design is not None).cpu().numpy())
    return np.concatenate(values)


def _standardized_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``values`` (K kernels, 1 + B labellings) centred and divided by the standard
    deviation of all its 1 + B values, the observed one included: the map treats every labelling
    alike, so under the null the B + 1 maxima over kernels stay exchangeable and the permutation
    p-value of the max is exact. Also returns the deviations (0 where a row is constant; its
    standardised values are then 0)."""
    sd = values.std(axis=1, keepdims=True)
    safe = np.where(sd > 0, sd, 1.0)
    return np.where(sd > 0, (values - values.mean(axis=1, keepdims=True)) / safe, 0.0), sd[:, 0]


def _permutation_test(pooled: dict, kernels: list, n: int, n_permutations: int, rng, dev, dtype, design=None):
    """Observed MMD² of every kernel, the permutation p-value of the aggregated statistic, and the
    kernel with the largest standardised observed MMD². One kernel: the statistic is its MMD²."""
    masks_seed = int(rng.integers(2**63))
    values = np.stack([_null_values(pooled[name], sigma, n, n_permutations, masks_seed, dev, dtype, design)
                       for name, sigma in kernels])
    tolerance = _TIE_TOLERANCE[dtype]
    if len(kernels) == 1:
        statistic, chosen = values[0], 0
    else:
        scaled, sd = _standardized_values(values)
        statistic, chosen = scaled.max(axis=0), int(np.argmax(scaled[:, 0]))
        positive = sd[sd > 0]  # a rounding tie in MMD², on the standardised scale
        tolerance = tolerance / positive.min() if positive.size else 0.0
    exceed = int((statistic[1:] >= statistic[0] - tolerance).sum())
    return values[:, 0], (exceed + 1) / (n_permutations + 1), chosen


def _block_test(pooled: dict, kernels: list, n: int, rng, dev, dtype) -> tuple[np.ndarray, float, int]:
    """B-test (Zaremba, Gretton & Blaschko 2013) for samples too large for one kernel matrix.

    Both samples are shuffled and cut into k = max(2, floor(sqrt(min(n, m)))) blocks of equal
    size, at most MAX_BLOCK points per sample; points beyond k full blocks are not used (a few,
    or many if one sample is more than MAX_BLOCK times sqrt(min(n, m)) points long). The unbiased
    MMD² of each block is i.i.d., so their mean is asymptotically normal with variance
    var(blocks)/k: one-sided p-value from the normal tail, per kernel; with several kernels the
    smallest, times their number (Bonferroni: valid whatever their correlation, but so conservative
    over ten correlated kernels that :func:`mmd_test` gives it one). Memory O(block²), time
    O(kernels (n+m) sqrt(n) d).
    """
    m = len(next(iter(pooled.values()))) - n
    k = max(2, math.isqrt(min(n, m)))
    bx, by = min(n // k, MAX_BLOCK), min(m // k, MAX_BLOCK)
    if min(bx, by) < 2:
        name = "x" if n < m else "y"
        raise InputError(f"{name}: the block estimator needs at least 4 samples in each sample; "
                         "raise block_threshold")
    xi = rng.permutation(n)[: k * bx].reshape(k, bx)
    yi = rng.permutation(m)[: k * by].reshape(k, by) + n
    means, p_values = [], []
    for name, sigma in kernels:
        values = _block_values(pooled[name], sigma, xi, yi, dev, dtype)
        mean, se = values.mean(), values.std(ddof=1) / math.sqrt(k)
        means.append(float(mean))
        p_values.append(float(stats.norm.sf(mean / se if se > 0 else (math.inf if mean > 0 else 0.0))))
    chosen = int(np.argmin(p_values))
    return np.array(means), min(1.0, len(kernels) * p_values[chosen]), chosen


def _block_values(z: np.ndarray, sigma: float, xi: np.ndarray, yi: np.ndarray, dev, dtype) -> np.ndarray:
    """Unbiased MMD² of each block (rows of pooled indices ``xi`` for x, ``yi`` for y)."""
    bx, by = xi.shape[1], yi.shape[1]
    mask = torch.cat([torch.ones(1, bx), torch.zeros(1, by)], 1).to(dev, dtype)
    size = bx + by
    batch = max(1, _CHUNK_ELEMENTS // (size * max(size, z.shape[1])))  # blocks per kernel batch
    values = []
    for start in range(0, len(xi), batch):
        blocks = z[np.concatenate([xi[start:start + batch], yi[start:start + batch]], axis=1)]
        kernels = _pooled_kernel(torch.from_numpy(blocks).to(dev, dtype), sigma)
        values.append(_mmd2_unbiased(kernels, mask, bx, by)[:, 0].cpu().numpy())
    return np.concatenate(values)


def _standardize(z: np.ndarray) -> np.ndarray:
    """Each feature centred and divided by its standard deviation over the pooled sample; constant
    features (no information) are left out. A function of the pooled sample only, so relabelling
    leaves it unchanged and the permutation test stays exact."""
    sd = z.std(axis=0)
    keep = sd > 0
    z = z if keep.all() else z[:, keep]
    z -= z.mean(axis=0)  # in place on the pooled copy: the B-test's samples can be large
    z /= sd[keep]
    return z


def _ledoit_wolf(zc: np.ndarray) -> float:
    """Ledoit-Wolf (2004) shrinkage of the covariance of centred ``zc`` (N, d) towards a multiple of
    the identity, as scikit-learn's ``ledoit_wolf_shrinkage``, from the smaller of the two Gram
    matrices: O(N d min(N, d)) instead of O(N d²)."""
    big_n, d = zc.shape
    gram = zc.T @ zc if d <= big_n else zc @ zc.T
    row_sq = np.einsum("ij,ij->i", zc, zc)
    mu = row_sq.sum() / (big_n * d)
    delta_sum = np.square(gram).sum() / big_n**2
    beta = (np.square(row_sq).sum() / big_n - delta_sum) / (d * big_n)
    delta = (delta_sum - 2 * mu * row_sq.sum() / big_n + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta <= 0 else float(beta / delta)


def _whiten(zs: np.ndarray) -> np.ndarray:
    """Coordinates of standardised ``zs`` in which its Ledoit-Wolf shrunk correlation matrix is the
    identity: Euclidean distance becomes a regularised Mahalanobis distance, so a shift along a
    direction of small variance counts as much as one along a direction of large variance. Only the
    span of the centred points matters for distances, so this works in min(N, d) dimensions;
    directions of (numerically) zero variance that shrinkage does not lift are left out."""
    big_n, d = zs.shape
    if d == 0:
        return zs
    shrinkage = _ledoit_wolf(zs)
    if d <= big_n:
        eig, vectors = np.linalg.eigh(zs.T @ zs / big_n)
        coords = zs @ vectors
    else:
        eig, vectors = np.linalg.eigh(zs @ zs.T / big_n)
        coords = vectors * np.sqrt(np.clip(eig, 0, None) * big_n)
    eig = np.clip(eig, 0, None)
    shrunk = (1 - shrinkage) * eig + shrinkage * eig.sum() / d
    keep = shrunk > 1e-12 * max(shrunk.max(), 1e-300)
    coords = coords if keep.all() else coords[:, keep]  # a new array either way: divided in place
    coords /= np.sqrt(shrunk[keep])
    return coords


def _kernels(x: np.ndarray, y: np.ndarray, bandwidth, rng) -> tuple[dict, list]:
    """The pooled points in each geometry the test uses, and its kernels as (geometry, σ) pairs."""
    if not isinstance(bandwidth, str):
        return {"raw": np.concatenate([x, y])}, [("raw", bandwidth)]
    if bandwidth == "median":
        return {"raw": np.concatenate([x, y])}, [("raw", _median_bandwidth(x, y, rng))]
    standardized = _standardize(np.concatenate([x, y]))
    pooled = {"standardized": standardized, "whitened": _whiten(standardized)}
    n, kernels = len(x), []
    for name, z in pooled.items():
        sigma = _median_bandwidth(z[:n], z[n:], rng)
        kernels += [(name, sigma * scale) for scale in SCALES]
    return pooled, kernels


def mmd_test(x, y, n_permutations: int = 1000, bandwidth="aggregate", seed: int = 0, device=None,
             block_threshold: int = 10_000, groups=None) -> MMDResult:
    """Kernel two-sample test: unbiased MMD² with Gaussian kernels (Gretton et al., JMLR 2012).

    ``bandwidth`` ``"aggregate"`` (default) runs the aggregated test of the module docstring: the
    reported ``statistic`` is the MMD² on the whitened features at their median bandwidth (the
    block test uses that kernel alone).
    ``"median"`` is one kernel on the raw features at the median heuristic (median pooled pairwise
    distance on a seeded subsample of MEDIAN_SUBSAMPLE points); a number is σ in
    k(a, b) = exp(-||a - b||² / (2σ²)) on the raw features.

    Up to ``block_threshold`` pooled points each kernel matrix is computed once (8·(n+m)² bytes in
    float64, float32 on CUDA; one at a time) and the permutation distribution comes from batched
    matmuls; the p-value (k + 1)/(B + 1) counts the k of B permutations at least as large and is
    never 0. Above it the B-test is used (see ``_block_test``) so memory stays bounded.
    ``device`` None uses CUDA when available.

    ``groups`` (the group of each x point and of each y point: the image a box comes from; an id on
    both sides pairs them) makes the permutations move whole groups (:mod:`.permutation_groups`), for
    points that are not independent within a group; above ``block_threshold`` the test then runs on a
    seeded sample of whole groups under it instead of the B-test.
    """
    x, y = check_samples(x, y)
    n_permutations = check_scalar(n_permutations, "n_permutations", int, 1)
    block_threshold = check_scalar(block_threshold, "block_threshold", int, 1)
    rng = check_seed(seed)
    dev = _device(device)
    dtype = torch.float64 if dev.type == "cpu" else torch.float32
    if isinstance(bandwidth, str):
        if bandwidth not in ("aggregate", "median"):
            raise InputError(f"bandwidth: must be 'aggregate', 'median' or a positive number, got {bandwidth!r}")
    else:
        bandwidth = check_scalar(bandwidth, "bandwidth", float, 0.0)
    design = None if groups is None else group_design(groups, len(x), len(y))
    if design is not None and len(x) + len(y) > block_threshold:
        keep = group_subset(design, block_threshold, rng)
        kx, ky = keep[keep < len(x)], keep[keep >= len(x)]
        x, y = check_samples(x[kx], y[ky - len(x)])
        design = group_design((design.index[kx], design.index[ky]), len(x), len(y))
    pooled, kernels = _kernels(x, y, bandwidth, rng)
    headline = 0 if len(kernels) == 1 else len(SCALES) + SCALES.index(1.0)  # whitened, median σ
    if len(x) + len(y) > block_threshold:
        # one kernel: a Bonferroni max over ten correlated ones rejected 0 of 600 null draws at 0.05
        kernels, headline = [kernels[headline]], 0
        observed, p_value, chosen = _block_test(pooled, kernels, len(x), rng, dev, dtype)
        estimator, n_permutations = "block", 0
    else:
        observed, p_value, chosen = _permutation_test(pooled, kernels, len(x), n_permutations, rng, dev, dtype, design)
        estimator = "permutation"
    name, sigma = kernels[headline]
    return MMDResult(float(observed[headline]), p_value, float(sigma), n_permutations, estimator, name,
                     tuple((name, float(sigma), float(value)) for (name, sigma), value in zip(kernels, observed)),
                     chosen, None if design is None else len(design.mixed))
