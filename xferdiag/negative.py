"""Paired arms and the negative-transfer verdict: did the transfer arm beat the scratch arm?

Data. For each seed ``s`` both arms were trained and scored on the same test examples ``i``, so
``D[s, i] = correct_transfer[s, i] - correct_scratch[s, i]`` is a seeds x examples table and the
gap is its mean. The quantity of interest is the gap expected from a new seed on new examples from
the same population, so two kinds of noise blur it: which seeds ran, and which examples happened
to be in the test set. Because every seed is scored on the *same* test set, the test-set part is
shared by all seeds.

Variance of the gap (two-way crossed random effects, seeds x examples). Write
``D[s, i] = mu + a_s + b_i + e_si``. Then ``var(gap) = tau^2 / S + sigma_b^2 / n`` where

* ``tau^2 = var(per-seed gap) = sigma_a^2 + sigma_e^2 / n`` holds seed-to-seed variation plus each
  seed's own test noise. Given the test set the S per-seed gaps are independent draws, so their
  sample variance estimates ``tau^2`` with ``S - 1`` degrees of freedom (a paired t over seeds).
* ``sigma_b^2 / n`` is test-set sampling shared by every seed (some examples favour one arm). The
  per-seed gaps cannot see it: they all moved together. The ANOVA mean squares estimate it as
  ``max(MS_examples - MS_residual, 0) / (S n)``, with ``n - 1`` degrees of freedom.

Both estimates are unbiased for any table whose seeds are i.i.d. and whose examples are i.i.d.,
not only for the additive normal model.

Interval. The two parts differ wildly in precision (2 degrees of freedom with the default three
seeds, hundreds for the test set). One Satterthwaite t would let a chance-small seed variance buy
many degrees of freedom and a short interval; in simulation that gives 7 % false verdicts at
alpha 0.05 with 3 seeds that disagree. Instead each part keeps its own t quantile and the margins
add in quadrature, Banerjee's (1961) combination, conservative for every ratio of the two variances:

    half_width = sqrt(max(t_{S-1}^2 tau^2, t_big^2 sigma_e^2 / n) / S + t_{n-1}^2 sigma_b^2 / n)

The ``max`` uses a bound known almost exactly: per-seed gaps vary at least as much as each seed's
own test noise (``MS_residual / n``, ``(S-1)(n-1)`` degrees of freedom). Without it, three seeds
that agree by chance would give an interval narrower than test noise alone allows; with it, the
interval only widens, so coverage still holds. The method reduces to the paired t over seeds when
seed variation dominates and to the paired t over examples when shared test noise dominates. The
p-value is the alpha at which the interval just touches 0, so ``p < alpha`` exactly when the
verdict is not inconclusive.

Calibration (A/A simulation, ``benchmarks/bench_verdict_calibration.py``: each arm-seed run has
its own true accuracy drawn around 0.8, examples share a difficulty and favour one arm or the
other, a fresh test set of n = 600 per trial, 3 seeds, 20 000 trials per regime): false verdicts
4.1 % when seeds disagree (run accuracy sd 0.03), 2.1 % when seed and test noise are comparable,
2.5 % when shared test noise dominates, 1.1 % in the most conservative case, no seed or example
effect at all. The naive intervals reach 8-22 % (t over seeds, blind to the shared test set) and
39 % (bootstrap over examples, blind to seeds; 1 000 trials) where they break.

Power, and why three seeds cap it. With 3 seeds x 600 examples a 0.10 gap is found half the time
when seeds disagree (52 %). Where seeds agree a 0.05 gap is found 70 % of the time (no example
effect) and 58 % (shared test noise dominates). No interval can do much better there while keeping
false verdicts at most alpha for every amount of seed-to-seed variation: about 82 % and 72 % at
most (the benchmark's ceiling column, a linear programme in the normal approximation). Three
per-seed gaps give the seed term 2 degrees of freedom, and seeds that really disagree often agree
by chance, so an interval that shrinks when they agree pays in false verdicts when they do not
(Welch-Satterthwaite: 75 % and 73 %, with 7 % false verdicts). A fourth seed is what helps: 95 %
without example effects; where shared test noise dominates, more test examples help more.

One seed: seed variation cannot be estimated; the interval is the paired t over test examples
(a McNemar-style test), a statement about the two trained models rather than about transfer in
general, and the result says so in ``note``. In the "seeds disagree" simulation over 40% of
one-seed verdicts are wrong, so the note says how much that matters and what to do.

No disagreement seen. When the arms agree on every test example of every seed (both at 100%, or
both answering one class), every variance estimate is 0 and a t-interval shrinks to the gap itself,
however few the examples. Nine agreeing examples do not show the arms equal: they leave room for
about a third of all examples to be discordant. So the half-width never drops below the one that one
discordant example each way would give, ``z sqrt(2) / (n + 2)`` for ``n`` test examples (the
pseudo-counts of Bonett and Price's paired interval, 2012): +-25 points at n = 9, +-0.9 at n = 300.
Any run with real disagreement has a wider interval already, so the floor changes only these cases.

Looking again. This is the verdict of one look. A run extended by seeds after an inconclusive verdict
is looked at again, a second chance at a false verdict; :mod:`xferdiag.sequential` keeps look 1
exactly as here and holds later looks to a smaller level (alpha / 10, then half as much each time).
That suffices only because this interval is conservative (1-4% A/A false verdicts where 5% were
allowed): with an exactly sized first look nothing would be left to spend. The simulation of the
whole look-extend-look procedure in the benchmark is what justifies the level, not a formula.

Macro-F1 does not split into per-example terms, so :func:`paired_metric_verdict` uses the paired
t over per-seed values; it cannot see the shared test-set part and says so in ``method``.

Pure statistics over arrays: :func:`xferdiag.commands.verdict.verdict_for_run` reads a run
directory into them and writes verdict.json.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from ._validate import to_numpy
from .errors import InputError

ALPHA = 0.05  # the default level of every verdict: a 95% interval
P_FLOOR = 1e-100  # smallest p-value reported
ONE_SEED_BOOTSTRAP_NOTE = ("one seed: the interval reflects test-set noise only, not seed-to-seed variation, so the verdict "
                           "speaks for these two trained models: train 3 or more seeds")
ONE_SEED_NOTE = ONE_SEED_BOOTSTRAP_NOTE.replace(": train 3", "; where seeds disagree (accuracy sd 0.03) over 40% of "
                                                "one-seed verdicts were wrong in simulation: train 3")
"""The accuracy verdict's one-seed note carries the accuracy simulation's number; a metric judged by the bootstrap
(a detector's mAP) gets the note without it."""
ONE_EXAMPLE_NOTE = "one test example: the interval reflects seed-to-seed variation only, not test-set noise"


@dataclass(frozen=True)
class Verdict:
    """Transfer arm (A) against scratch arm (B), paired by seed.

    ``gap`` is mean(A) - mean(B); ``ci95`` is the (1 - alpha) interval (the name is kept for the
    default alpha). ``negative_transfer_gap`` is Wang et al. (2019)'s error(A) - error(B) = -gap.
    ``se_seeds`` is the spread of the per-seed gaps over sqrt(S) (seed variation plus each seed's
    own test noise); ``se_test_set`` is the test-set noise shared by all seeds. ``None`` where it
    cannot be estimated.
    """

    verdict: str
    gap: float
    ci95: tuple[float, float]
    alpha: float
    p_value: float
    method: str
    n_seeds: int
    n_test: int | None
    per_seed: tuple[float, ...]
    negative_transfer_gap: float
    se_seeds: float | None
    se_test_set: float | None
    note: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON values; a non-finite number (an infinite interval) becomes None."""
        out = dataclasses.asdict(self)
        out["ci95"] = [_finite_or_none(v) for v in self.ci95]
        out["per_seed"] = [float(v) for v in self.per_seed]
        for key in ("gap", "alpha", "p_value", "negative_transfer_gap", "se_seeds", "se_test_set"):
            out[key] = _finite_or_none(out[key])
        return out


def _finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


# --- input checks ------------------------------------------------------------------------------


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), or an :class:`InputError` naming it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise InputError(f"alpha: must be a number in (0, 1), got {alpha!r}")
    if not 0 < alpha < 1:  # also false for NaN
        raise InputError(f"alpha: must be in (0, 1) (0.05 gives a 95% interval), got {alpha!r}")
    return float(alpha)


def _as_correctness(x, name: str) -> np.ndarray:
    """A (n_seeds, n_test) table of 0/1 per-example correctness, as float64."""
    arr = to_numpy(x, name)
    if arr.ndim != 2:
        raise InputError(
            f"{name}: expected a 2-D array (n_seeds, n_test) of per-example correctness, got shape {arr.shape}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"{name}: needs at least one seed and one test example, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise InputError(f"{name}: contains NaN ({int(np.isnan(arr).sum())} entries); mark each example 0 or 1")
    if not np.isin(arr, (0.0, 1.0)).all():
        bad = arr[~np.isin(arr, (0.0, 1.0))][0]
        raise InputError(f"{name}: values must be 0 (wrong) or 1 (correct), found {bad!r}")
    return arr


def _as_metric(x, name: str) -> np.ndarray:
    arr = to_numpy(x, name)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array with one value per seed, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    return arr


def _same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{names[0]} {a.shape} and {names[1]} {b.shape} differ in shape; "
            "rows must pair by seed and columns by test example"
        )


# --- the interval ------------------------------------------------------------------------------


Term = list[tuple[float, float]]  # one noise source: (variance, degrees of freedom) estimates


def _margin_sq(var: float, df: float, alpha: float) -> float:
    """Squared margin of one estimate: variance times its squared t quantile."""
    if var <= 0:
        return 0.0
    q = float(-special.stdtrit(df, alpha / 2))
    return var * q * q  # q * q gives inf for absurdly small alpha, where ** 2 would raise


def _half_width(alpha: float, terms: list[Term], floor_var: float = 0.0) -> float:
    """Banerjee: margins of independent noise sources add in quadrature; for a source with several
    valid estimates (a lower bound among them) the largest margin counts. Never below the normal
    margin of ``floor_var`` (see "No disagreement seen" in the module docstring)."""
    total = sum(max(_margin_sq(var, df, alpha) for var, df in term) for term in terms)
    return math.sqrt(max(total, _margin_sq(floor_var, math.inf, alpha)))


def _p_value(gap: float, terms: list[Term], floor_var: float = 0.0) -> float:
    """The alpha at which the interval's edge reaches 0 (two-sided, consistent with the interval).

    Below ``P_FLOOR`` it reports ``P_FLOOR``; zero only when the data show no noise at all.
    """
    if gap == 0:
        return 1.0
    if floor_var <= 0 and not any(var > 0 for term in terms for var, _ in term):
        return 0.0
    edge = lambda log_p: _half_width(math.exp(log_p), terms, floor_var) - abs(gap)  # noqa: E731
    lowest = math.log(P_FLOOR)
    if edge(lowest) < 0:
        return P_FLOOR
    return math.exp(optimize.brentq(edge, lowest, 0.0, xtol=1e-12))


def _verdict(gap: float, terms: list[Term], alpha: float, floor_var: float = 0.0, bound: float = math.inf,
             **fields) -> Verdict:
    """The interval gap +- half-width, cut to [-bound, bound] (an accuracy gap lies in [-1, 1])."""
    h = _half_width(alpha, terms, floor_var)
    lo, hi = max(gap - h, -bound), min(gap + h, bound)
    word = "positive" if lo > 0 else "negative" if hi < 0 else "inconclusive"
    return Verdict(verdict=word, gap=gap, ci95=(lo, hi), alpha=alpha, p_value=_p_value(gap, terms, floor_var),
                   negative_transfer_gap=-gap, **fields)


def variance_components(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(var_seeds, var_own_test, var_test)`` of the gap for each (n_seeds, n_test) table of
    per-example differences in ``d`` (leading axes are separate tables; n_seeds, n_test >= 2).

    ``var_own_test`` (the residual mean square over S n) is each seed's own test noise, the
    lower bound on ``var_seeds``; the benchmark reuses this to compare other intervals on the
    same estimates.
    """
    n_seeds, n_test = d.shape[-2:]
    gap = d.mean(axis=(-2, -1))
    per_seed = d.mean(axis=-1)
    by_example = d.mean(axis=-2)
    ms_examples = n_seeds * by_example.var(axis=-1, ddof=1)
    residual = d - per_seed[..., :, None] - by_example[..., None, :] + gap[..., None, None]
    ms_residual = (residual**2).sum(axis=(-2, -1)) / ((n_seeds - 1) * (n_test - 1))
    cells = n_seeds * n_test
    return (per_seed.var(axis=-1, ddof=1) / n_seeds, ms_residual / cells,
            np.maximum(ms_examples - ms_residual, 0.0) / cells)


def paired_verdict(correct_a, correct_b, alpha: float = ALPHA) -> Verdict:
    """Accuracy gap of arm A over arm B from per-example correctness (n_seeds, n_test), paired by
    seed (rows) and test example (columns), with an interval counting seed and test-set noise.

    Deterministic: a closed-form interval, no resampling (see the module docstring for why).
    """
    a = _as_correctness(correct_a, "correct_a")
    b = _as_correctness(correct_b, "correct_b")
    _same_shape(a, b, ("correct_a", "correct_b"))
    alpha = check_alpha(alpha)
    d = a - b
    n_seeds, n_test = d.shape
    if n_seeds == 1 and n_test == 1:
        raise InputError("correct_a: one seed and one test example leave no noise to estimate; add examples or seeds")
    gap = float(d.mean())
    per_seed = d.mean(axis=1)
    by_example = d.mean(axis=0)
    common = dict(n_seeds=n_seeds, n_test=n_test, per_seed=tuple(float(v) for v in per_seed),
                  floor_var=2.0 / (n_test + 2) ** 2, bound=1.0)  # floor: one discordant example each way
    if n_seeds == 1:
        var_test = float(by_example.var(ddof=1)) / n_test
        return _verdict(gap, [[(var_test, n_test - 1)]], alpha, method="paired t over test examples (one seed)",
                        se_seeds=None, se_test_set=math.sqrt(var_test), note=ONE_SEED_NOTE, **common)
    if n_test == 1:
        var_seeds = float(per_seed.var(ddof=1)) / n_seeds
        return _verdict(gap, [[(var_seeds, n_seeds - 1)]], alpha, method="paired t over seeds (one test example)",
                        se_seeds=math.sqrt(var_seeds), se_test_set=None, note=ONE_EXAMPLE_NOTE, **common)
    var_seeds, var_own_test, var_test = (float(v) for v in variance_components(d))
    # The per-seed gaps vary at least as much as each seed's own test noise, which the residual
    # measures with many degrees of freedom: their margin never drops below that bound's margin.
    seeds_term = [(var_seeds, n_seeds - 1), (var_own_test, (n_seeds - 1) * (n_test - 1))]
    return _verdict(
        gap, [seeds_term, [(var_test, n_test - 1)]], alpha,
        method="seeds x examples variance components, Banerjee t-interval",
        se_seeds=math.sqrt(var_seeds), se_test_set=math.sqrt(var_test), **common,
    )


def paired_metric_verdict(metric_a, metric_b, alpha: float = ALPHA) -> Verdict:
    """Gap in any per-seed metric (e.g. macro-F1), shape (n_seeds,), by the paired t over seeds.

    Per-seed values carry no per-example detail, so test-set noise shared by all seeds is not
    counted: with a small test set and seeds that agree, the interval is too short.
    """
    a = _as_metric(metric_a, "metric_a")
    b = _as_metric(metric_b, "metric_b")
    _same_shape(a, b, ("metric_a", "metric_b"))
    alpha = check_alpha(alpha)
    if a.size < 2:
        raise InputError(f"metric_a: needs per-seed values from at least 2 seeds to estimate noise, got {a.size}")
    d = a - b
    var_seeds = float(d.var(ddof=1)) / d.size
    return _verdict(
        float(d.mean()), [[(var_seeds, d.size - 1)]], alpha,
        method="paired t over seeds (per-seed values; shared test-set noise not counted)",
        n_seeds=d.size, n_test=None, per_seed=tuple(float(v) for v in d),
        se_seeds=math.sqrt(var_seeds), se_test_set=None,
    )


def bootstrap_components(per_seed, replicates) -> tuple[float, float, float]:
    """``(var_seeds, var_own_test, var_test)`` of the mean gap, as :func:`variance_components` gives them for a
    correctness table, from each seed's observed gap (n_seeds >= 2,) and a paired bootstrap over test examples
    shared by every seed (replicates: (B, n_seeds)): the covariance of two seeds' replicates is the test-set
    noise they share; what is left of a seed's own replicate variance is its own test noise."""
    gaps = _as_metric(per_seed, "per_seed")
    reps = np.asarray(replicates, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[1] != gaps.size or len(reps) < 2 or gaps.size < 2 or not np.isfinite(reps).all():
        raise InputError(f"replicates: expected finite (B >= 2, {gaps.size} >= 2) bootstrap differences, got shape {reps.shape}")
    n_seeds = gaps.size
    cov = np.cov(reps, rowvar=False)
    var_test = max(float((cov.sum() - np.trace(cov)) / (n_seeds * (n_seeds - 1))), 0.0)
    var_own_test = max(float(np.mean(np.diag(cov))) - var_test, 0.0) / n_seeds
    return float(gaps.var(ddof=1)) / n_seeds, var_own_test, var_test


def bootstrap_components_verdict(per_seed, replicates, n_test: int, alpha: float = ALPHA, bound: float = 1.0,
                                 unit: str = "images") -> Verdict:
    """Gap in a metric that is not a mean over examples (a detector's mAP), from each seed's observed gap
    (n_seeds,) and a paired bootstrap over test examples shared by every seed (replicates: (B, n_seeds));
    ``unit`` names what the bootstrap resampled, in the verdict's ``method`` (a detector's test images).

    The same two noise sources and the same interval as :func:`paired_verdict`, with the test-set parts
    estimated by the bootstrap instead of ANOVA mean squares (:func:`bootstrap_components`). With one seed
    the bootstrap variance is the whole interval, a statement about the two trained models (``note``).
    The bootstrap is never taken over seeds (three seeds give no distribution to resample).
    """
    gaps = _as_metric(per_seed, "per_seed")
    reps = np.asarray(replicates, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[1] != gaps.size or len(reps) < 2 or not np.isfinite(reps).all():
        raise InputError(f"replicates: expected finite (B >= 2, {gaps.size}) bootstrap differences, got shape {reps.shape}")
    alpha, n_seeds = check_alpha(alpha), gaps.size
    common = dict(n_seeds=n_seeds, n_test=n_test, per_seed=tuple(float(v) for v in gaps), bound=bound)
    if n_seeds == 1:
        var = float(reps[:, 0].var(ddof=1))
        return _verdict(float(gaps[0]), [[(var, n_test - 1)]], alpha, method=f"paired bootstrap over test {unit} (one seed)",
                        se_seeds=None, se_test_set=math.sqrt(var), note=ONE_SEED_BOOTSTRAP_NOTE, **common)
    var_seeds, var_own_test, var_test = bootstrap_components(gaps, reps)
    seeds_term = [(var_seeds, n_seeds - 1), (var_own_test, (n_seeds - 1) * (n_test - 1))]
    return _verdict(float(gaps.mean()), [seeds_term, [(var_test, n_test - 1)]], alpha,
                    method=f"seeds x test {unit}, test-set terms from a paired bootstrap over {unit}, Banerjee t-interval",
                    se_seeds=math.sqrt(var_seeds), se_test_set=math.sqrt(var_test), **common)
