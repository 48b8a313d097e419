"""Pairwise comparisons between arms or runs: which of two fine-tunings scored higher, and is the difference real?

Two arms tested on the same test examples with the same seeds are compared as the verdict compares transfer with
scratch: the run's task judges the two arms' seeds (classification: the seeds x examples variance components of
:mod:`xferdiag.negative`; detection: the paired image bootstrap), so the test-set noise both arms share cancels and
the noise they do not share is counted. Arms that were not tested on the same examples cannot be paired; they fall
back to Welch's t-test over per-seed scores, which treats the seeds of the two arms as independent samples and
cannot see test-set noise at all, and every such pair says why it was not paired.

With several pairs the chance of at least one false "different" grows with their number, so the p-values are
Holm-adjusted over all pairs (paired and unpaired together) before any is called significant.

Pure: the seeds come in as a task's verdict takes them (``{"name", "metrics", "history", "records"}`` each, paired
by position); the caller reads them from a run directory (``xferdiag compare``, a strategy sweep's arms).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

from .errors import InputError
from .negative import ALPHA, _finite_or_none as _finite, check_alpha

PAIRED = "paired"
WELCH = "welch"


@dataclass(frozen=True)
class Comparison:
    """Arm (or run) ``a`` against ``b`` in the headline metric.

    ``test``: ``"paired"`` (same test examples and seeds), ``"welch"`` (unpaired fallback) or None (no test possible);
    ``difference``: mean over seeds of a minus b; ``ci95``: its (1 - alpha) interval; ``p_value`` before and ``p_holm``
    after the Holm adjustment over every pair compared together, ``significant``: ``p_holm < alpha``;
    ``unpaired_because``: why a pair was not paired; ``note``: why there is no test, or what the interval leaves out.
    """

    a: str
    b: str
    test: str | None
    difference: float | None
    ci95: tuple[float | None, float | None]
    p_value: float | None
    method: str | None
    n_seeds: tuple[int, int]
    unpaired_because: str | None = None
    note: str | None = None
    p_holm: float | None = None
    significant: bool | None = None

    def to_dict(self) -> dict:
        """Plain JSON values; a non-finite number becomes None."""
        out = dataclasses.asdict(self)
        out["ci95"] = [_finite(v) for v in self.ci95]
        out["n_seeds"] = list(self.n_seeds)
        for key in ("difference", "p_value", "p_holm"):
            out[key] = _finite(out[key])
        return out


def paired(task, a: list[dict], b: list[dict], *, names: tuple[str, str], seeds: list[int], data: dict,
           run_records: dict | None = None, alpha: float = ALPHA) -> Comparison:
    """Arm ``a`` against arm ``b``, both tested on the same examples with the same ``seeds``, judged by ``task``
    (its ``judge``, as the verdict is; ``data``: data.json's content, ``run_records``: the run-level records)."""
    if len(a) != len(b) or len(a) != len(seeds) or not seeds:
        raise InputError(f"a, b and seeds must have one entry per seed, got {len(a)}, {len(b)} and {len(seeds)}")
    judged = task.judge(a, b, arms=names, seeds=list(seeds), data=data, run_records=run_records or {}, alpha=check_alpha(alpha))
    v = judged.verdict
    return Comparison(a=names[0], b=names[1], test=PAIRED, difference=v.gap, ci95=tuple(v.ci95), p_value=v.p_value,
                      method=v.method, n_seeds=(len(seeds), len(seeds)), note=v.note)


def welch(a: list[float], b: list[float], *, names: tuple[str, str], unpaired_because: str, alpha: float = ALPHA) -> Comparison:
    """Welch's t-test on the per-seed scores ``a`` and ``b`` of two arms that cannot be paired (``unpaired_because``
    says why); no test with fewer than 2 seeds in either or no seed-to-seed variation at all."""
    alpha = check_alpha(alpha)
    difference = float(np.mean(a) - np.mean(b)) if len(a) and len(b) else None
    common = dict(a=names[0], b=names[1], difference=difference, n_seeds=(len(a), len(b)), unpaired_because=unpaired_because)
    if min(len(a), len(b)) < 2:
        return Comparison(test=None, ci95=(None, None), p_value=None, method=None, note="needs ≥ 2 seeds in each", **common)
    with warnings.catch_warnings():  # equal scores in every seed of one arm: scipy's "precision loss" about a variance of 0
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    if not math.isfinite(result.pvalue):
        return Comparison(test=None, ci95=(None, None), p_value=None, method=None, note="no seed-to-seed variation", **common)
    ci = result.confidence_interval(1 - alpha)
    return Comparison(test=WELCH, ci95=(float(ci.low), float(ci.high)), p_value=float(result.pvalue),
                      method="Welch t-test over per-seed scores (unpaired; test-set noise not counted)", **common)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the chance of any false 'significant' among all pairs stays at most alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(np.argsort(p_values, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def adjust(comparisons: list[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """The comparisons with ``p_holm`` and ``significant`` set, Holm over every one that has a p-value."""
    alpha = check_alpha(alpha)
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    out = list(comparisons)
    for i, p in zip(tested, holm([comparisons[i].p_value for i in tested])):
        out[i] = dataclasses.replace(comparisons[i], p_holm=p, significant=bool(p < alpha))
    return out


def compare_arms(task, arms: dict[str, list[dict]], *, seeds: list[int], data: dict, run_records: dict | None = None,
                 alpha: float = ALPHA) -> list[Comparison]:
    """Every pair of ``arms`` (name: its seeds' evidence, in the order of ``seeds``) of one run directory, paired,
    Holm-adjusted over the pairs (a strategy sweep's transfer arms)."""
    pairs = [paired(task, arms[x], arms[y], names=(x, y), seeds=seeds, data=data, run_records=run_records, alpha=alpha)
             for x, y in combinations(arms, 2)]
    return adjust(pairs, alpha)
