"""Kernel two-sample test: is the gap between source ``x`` (n, d) and target ``y`` (m, d) real?

The unbiased MMD² with a Gaussian kernel (Gretton et al., JMLR 2012), its permutation p-value
from batched matmuls on one pooled kernel matrix, and the block B-test for samples too large for
one. Random draws (median-heuristic subsample, permutations, blocks) come from ``seed``.
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

MEDIAN_SUBSAMPLE = 1000
"""The median heuristic looks at the pairwise distances of at most this many pooled points
(a seeded random subset): ~500k distances pin the median down to about a percent."""

MAX_BLOCK = 4096
"""The block estimator uses at most this many points of each sample per block (memory bound)."""

_CHUNK_ELEMENTS = 1 << 22  # permutations per batch x pooled size: two float64 buffers of 32 MB
_TIE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}  # rounding ties count as exceedances



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
    x, y = check_samples(x, y)
    n_permutations = check_scalar(n_permutations, "n_permutations", int, 1)
    block_threshold = check_scalar(block_threshold, "block_threshold", int, 1)
    rng = check_seed(seed)
    dev = _device(device)
    dtype = torch.float64 if dev.type == "cpu" else torch.float32
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise InputError(f"bandwidth: must be 'median' or a positive number, got {bandwidth!r}")
        sigma = _median_bandwidth(x, y, rng)
    else:
        sigma = check_scalar(bandwidth, "bandwidth", float, 0.0)
    if len(x) + len(y) > block_threshold:
        statistic, p_value = _block_test(x, y, sigma, rng, dev, dtype)
        return MMDResult(statistic, p_value, sigma, 0, "block")
    statistic, p_value = _permutation_test(x, y, sigma, n_permutations, rng, dev, dtype)
    return MMDResult(statistic, p_value, sigma, n_permutations, "permutation")
