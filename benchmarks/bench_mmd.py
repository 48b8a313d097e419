"""MMD permutation test: xferdiag's batched matmuls against the re-indexing loop of drift libraries.

Both sides compute the pooled kernel matrix once. The loop then re-indexes it once per
permutation in Python (what torchdrift's ``kernel_mmd`` does); xferdiag scores a batch of
permutations with one matmul. The peers test one kernel, so these rows time xferdiag's
single-kernel test (a fixed σ on raw features); a further row times the default aggregated test
(ten kernels: two geometries x five bandwidths, on the same permutations) against that single kernel,
the price of its power. A last row times the bounded-memory block estimator on samples far
too large for a kernel matrix. CPU, float64, one thread by default: on a shared or busy machine
the peer's thousands of small multi-threaded ops suffer from oversubscription far more than
xferdiag's few large ones, so one thread gives the fair and repeatable ratio (``--threads``).

    python -m benchmarks.bench_mmd [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from benchmarks.common import in_fresh_process, peak_rss_growth, print_table, timed
from xferdiag.analyzers import mmd_test


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Stand-in for penultimate-layer features: correlated Gaussians, optionally shifted."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mixing + shift).astype(np.float32)


def reindexing_loop(x, y, sigma: float, n_permutations: int, seed: int) -> tuple[float, float]:
    """The peer: kernel matrix once, then for each permutation K[p][:, p] and three block sums."""
    n, m = len(x), len(y)
    z = torch.from_numpy(np.vstack([x, y]).astype(np.float64))
    k = torch.exp(-torch.cdist(z, z).square() / (2 * sigma**2))
    k.fill_diagonal_(0)

    def unbiased(kp):
        return (kp[:n, :n].sum() / (n * (n - 1)) + kp[n:, n:].sum() / (m * (m - 1))
                - 2 * kp[:n, n:].sum() / (n * m)).item()

    observed, generator, exceed = unbiased(k), torch.Generator().manual_seed(seed), 0
    for _ in range(n_permutations):
        p = torch.randperm(n + m, generator=generator)
        exceed += unbiased(k[p][:, p]) >= observed
    return observed, (exceed + 1) / (n_permutations + 1)


def permutation_rows(n: int, d: int, n_permutations: int) -> list[dict]:
    x, y = features(n, d, 1), features(n, d, 2, shift=0.02)
    sigma = mmd_test(x, y, n_permutations=1, device="cpu").bandwidth  # median heuristic, shared
    ours, ours_s = timed(mmd_test, x, y, n_permutations=n_permutations, bandwidth=sigma, device="cpu")
    (stat, p), loop_s = timed(reindexing_loop, x, y, sigma, n_permutations, seed=0)
    same = abs(stat - ours.statistic) <= 1e-9 * max(1.0, abs(stat))
    name = f"permutation test n={n}/side d={d} B={n_permutations}"
    rows = [{
        "name": name, "xferdiag_s": ours_s, "peer": "re-indexing loop (torch)", "peer_s": loop_s,
        "ratio": loop_s / ours_s, "target": ">= 5x faster, same statistic",
        "met": loop_s / ours_s >= 5 and same,
        "notes": f"MMD² {ours.statistic:.3e} vs {stat:.3e}; p {ours.p_value:.3f} vs {p:.3f}",
    }]
    try:
        from torchdrift.detectors.mmd import GaussianKernel, kernel_mmd
    except ImportError as exc:
        rows.append({"name": name, "xferdiag_s": ours_s, "peer": "torchdrift", "peer_s": None,
                     "ratio": None, "target": "-", "met": None, "notes": f"not installed ({exc})"})
        return rows
    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y.astype(np.float64))
    (td_stat, td_p), td_s = timed(kernel_mmd, xt, yt, n_perm=n_permutations, kernel=GaussianKernel(sigma))
    # torchdrift keeps the kernel diagonal (k(a, a) = 1) in the within-sample sums
    td_unbiased = td_stat.item() - 1 / (n - 1) - 1 / (n - 1)
    same = abs(td_unbiased - ours.statistic) <= 1e-9 * max(1.0, abs(td_unbiased))
    rows.append({
        "name": name, "xferdiag_s": ours_s, "peer": "torchdrift kernel_mmd", "peer_s": td_s,
        "ratio": td_s / ours_s, "target": ">= 5x faster, same statistic",
        "met": td_s / ours_s >= 5 and same,
        "notes": f"MMD² {td_unbiased:.3e} after removing its diagonal terms; p {td_p.item():.3f} "
                 "(count of strictly greater / B)",
    })
    return rows


def aggregate_row(n: int, d: int, n_permutations: int) -> dict:
    """The default aggregated test against one kernel at the median, same data and permutations."""
    x, y = features(n, d, 1), features(n, d, 2, shift=0.02)
    single, single_s = timed(mmd_test, x, y, n_permutations=n_permutations, bandwidth="median", device="cpu")
    agg, agg_s = timed(mmd_test, x, y, n_permutations=n_permutations, device="cpu")
    return {
        "name": f"aggregated test (10 kernels) n={n}/side d={d} B={n_permutations}", "xferdiag_s": agg_s,
        "peer": "xferdiag, one raw kernel at the median", "peer_s": single_s, "ratio": single_s / agg_s,
        "target": "<= 12x the single kernel", "met": agg_s <= 12 * single_s,
        "notes": f"p {agg.p_value:.3f} vs {single.p_value:.3f}",
    }


def in_child(fn, *args):
    """fn(torch threads, *args) in a fresh interpreter, so its memory peak is its own."""
    return in_fresh_process(fn, torch.get_num_threads(), *args)


def large_row(threads: int, n: int, d: int) -> dict:
    torch.set_num_threads(threads)
    x, y = features(n, d, 3), features(n, d, 4, shift=0.02)
    with threadpool_limits(threads), peak_rss_growth() as memory:
        result, seconds = timed(mmd_test, x, y, device="cpu")
    inputs64 = 2 * n * d * 8  # the float64 copies that input validation makes
    budget = inputs64 + (512 << 20)
    extra = None if memory["peak_mb"] is None else memory["peak_mb"] * 2**20
    return {
        "name": f"block estimator n={n}/side d={d}", "xferdiag_s": seconds, "peer": None,
        "peer_s": None, "ratio": None,
        "target": f"peak extra RSS < float64 inputs + 512 MiB = {budget / 2**30:.2f} GiB",
        "met": None if extra is None else extra < budget and result.estimator == "block",
        "notes": f"peak extra RSS {_gib(extra)} (a kernel matrix would need "
                 f"{8 * (2 * n) ** 2 / 2**30:.0f} GiB); MMD² {result.statistic:.2e}, p {result.p_value:.2g}",
    }


def _gib(size: float | None) -> str:
    return "not measurable here" if size is None else f"{size / 2**30:.2f} GiB"


def threshold_row(threads: int, d: int, n_permutations: int) -> dict:
    """The largest problem the full permutation test takes by default (n + m = block_threshold)."""
    torch.set_num_threads(threads)
    x, y = features(5000, d, 5), features(5000, d, 6, shift=0.02)
    with threadpool_limits(threads), peak_rss_growth() as memory:
        result, seconds = timed(mmd_test, x, y, n_permutations=n_permutations, device="cpu")
    extra = None if memory["peak_mb"] is None else memory["peak_mb"] * 2**20
    return {
        "name": f"permutation test n=5000/side d={d} B={n_permutations}", "xferdiag_s": seconds,
        "peer": None, "peer_s": None, "ratio": None, "target": "-", "met": None,
        "notes": f"peak extra RSS {_gib(extra)}; p {result.p_value:.3f}",
    }


def show(rows: list[dict]) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print_table(rows, ["name", "xferdiag_s", "peer", "peer_s", "ratio", "met", "target", "notes"])


def main(quick: bool = False, threads: int = 1) -> list[dict]:
    d, n_permutations = 512, 1000
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            rows = permutation_rows(500 if quick else 2000, d, n_permutations)
            rows.append(aggregate_row(500 if quick else 2000, d, n_permutations))
            if not quick:
                rows.append(in_child(threshold_row, d, n_permutations))
            rows.append(in_child(large_row, 20_000 if quick else 100_000, d))
            show(rows)
    finally:
        torch.set_num_threads(before)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    args = parser.parse_args()
    main(args.quick, args.threads)
