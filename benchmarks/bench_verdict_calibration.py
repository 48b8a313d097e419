"""Is the transfer-vs-scratch verdict calibrated, and how often does it find a real gap?

A/A simulations (no true difference) count how often each method still declares a verdict
(positive or negative) at alpha 0.05; a calibrated method does so at most 5 % of the time. The
naive methods each ignore one noise source:

* bootstrap over test examples (seed-averaged correctness, percentile interval): blind to
  seed-to-seed variation, so overconfident when seeds disagree;
* paired t over per-seed gaps: blind to the test-set noise that every seed shares, so
  overconfident when the test set is small relative to how differently the arms behave on it.

Welch-Satterthwaite is the tighter candidate of issue 16: xferdiag's own variance components,
``max(var_seeds, var_own_test) + var_test``, with one t quantile at Welch-Satterthwaite degrees of
freedom. A seed variance that is small by chance buys it degrees of freedom, so with 3 seeds it
gives too many false verdicts when seeds disagree.

Then power: how often a real gap is called positive. The issue-16 target is power >= 0.90 for a
0.05 gap with 3 seeds x 600 test examples where seeds agree, i.e. in the two regimes whose runs
barely differ by seed: "test noise dominates" (run accuracy sd 0.002) and "no seed or example
effect" (sd 0). Those rows also print a ceiling: the most power any test can have there while its
false verdicts stay at most alpha for every amount of seed-to-seed variation (see
:func:`power_ceiling`). "met" allows two Monte Carlo standard errors past a target.

Then the look-extend-look procedure of :mod:`xferdiag.sequential`: 3 seeds; when inconclusive, extend
to the seeds the verdict's plan suggests for a gap of ``min_effect`` (3 points) at 80% power, capped at
20 seeds (also where the plan calls seeds infeasible: the worst case for false verdicts), and look again
at the later look's level. Under A/A the overall false-verdict rate (either look) must stay <= 0.05;
with a true gap of ``min_effect`` the row gives the share decided (positive) after following the
suggestion, beside the promised 80% among the runs whose suggestion was feasible. Each row says its
Monte Carlo standard error.

Then paired comparisons between two arms (issue 30: two strategies, or two runs given to ``compare``):
the verdict's paired statistic (:func:`xferdiag.pairwise.paired`) against ``compare``'s unpaired
fallback, Welch's t over per-seed accuracy, side by side on the same simulated tables: false verdicts
under A/A and power at a 3-point difference with 3 seeds, in every regime, with the two arms' runs of
a seed independent (link 0, as transfer against scratch) and correlated (two strategies sharing the
seed's data order and head initialisation; ``--link RUN_A RUN_B`` measures that correlation on two
real runs, beside simulated tables at known links); and the family-wise A/A rate of three strategies
compared pair by pair with Holm's correction.

    python -m benchmarks.bench_verdict_calibration [--quick] [--n-test N] [--paired-only] [--link RUN_A RUN_B]
"""

from __future__ import annotations

import argparse
from itertools import combinations

import numpy as np
from scipy import optimize, stats

from xferdiag import sequential
from xferdiag.negative import paired_verdict, variance_components
from xferdiag.pairwise import holm, welch

ALPHA = 0.05
N_TEST = 600
POWER_TARGET = 0.90
AGREEING = ("test noise dominates", "no seed or example effect")  # the target rows' regimes

# Correctness model weights: shared difficulty, arm-specific affinity for examples; seed_sd is the
# sd of each arm-seed run's true accuracy.
SCENARIOS = {
    "seeds disagree": dict(seed_sd=0.03, shared=0.8, arm=0.3),
    "seed ~ test noise": dict(seed_sd=0.01, shared=0.7, arm=0.5),
    "test noise dominates": dict(seed_sd=0.002, shared=0.5, arm=0.8),
    "no seed or example effect": dict(seed_sd=0.0, shared=0.8, arm=0.0),
}


def simulate(rng, n_trials, n_seeds, n_test=N_TEST, gap=0.0, *, mean=0.8, **regime):
    """Per-example correctness of arms A and B, each (n_trials, n_seeds, n_test) bool, A's true accuracy ``gap``
    above B's (see :func:`simulate_arms`)."""
    return tuple(simulate_arms(rng, (mean + gap / 2, mean - gap / 2), n_trials, n_seeds, n_test, **regime))


def simulate_arms(rng, means, n_trials, n_seeds, n_test=N_TEST, *, seed_sd, shared, arm, link=0.0):
    """Per-example correctness of one arm per true accuracy in ``means``, each (n_trials, n_seeds, n_test) bool.

    Every trial draws a fresh test set. Example i has a difficulty shared by all arms and an
    affinity for each arm (some examples suit one arm better); each arm-seed run has its own true
    accuracy p ~ N(mean, seed_sd) and gets an example right when its latent score clears the
    threshold for p, so p is exactly that run's accuracy on the whole population. ``link`` is the
    correlation between the arms' runs of the same seed (their seed effect and their per-example
    luck): 0 for transfer against scratch, more for strategies that share the seed's data order
    and head initialisation (see :func:`seed_link`).
    """
    noise = np.sqrt(max(0.0, 1.0 - shared**2 - arm**2))
    difficulty = rng.standard_normal((n_trials, 1, n_test))
    common = (rng.standard_normal((n_trials, n_seeds, 1)), rng.standard_normal((n_trials, n_seeds, n_test))) if link else (0.0, 0.0)
    own, linked = np.sqrt(1.0 - link), np.sqrt(link)
    arms = []
    for arm_mean in means:
        p = np.clip(arm_mean + seed_sd * (own * rng.standard_normal((n_trials, n_seeds, 1)) + linked * common[0]), 0.01, 0.99)
        score = (shared * difficulty + arm * rng.standard_normal((n_trials, 1, n_test))
                 + noise * (own * rng.standard_normal((n_trials, n_seeds, n_test)) + linked * common[1]))
        arms.append(score > stats.norm.ppf(1 - p))
    return arms


def xferdiag_interval(a, b, rng):
    return paired_verdict(a, b, ALPHA).ci95


def welch_satterthwaite(a, b, rng):
    """max(var_seeds, var_own_test) + var_test with a t quantile at Welch-Satterthwaite df: S - 1
    for var_seeds, (S - 1)(n - 1) for its lower bound var_own_test, n - 1 for var_test."""
    d = a.astype(np.float64) - b
    n_seeds, n_test = d.shape
    var_seeds, var_own, var_test = (float(v) for v in variance_components(d))
    seeds, df_seeds = (var_seeds, n_seeds - 1) if var_seeds >= var_own else (var_own, (n_seeds - 1) * (n_test - 1))
    total = seeds + var_test
    df = total**2 / (seeds**2 / df_seeds + var_test**2 / (n_test - 1))
    half = stats.t.isf(ALPHA / 2, df) * np.sqrt(total)
    return d.mean() - half, d.mean() + half


def t_over_seeds(a, b, rng):
    """Paired t over per-seed accuracy gaps, df = S - 1."""
    gaps = a.mean(axis=1) - b.mean(axis=1)
    half = stats.t.isf(ALPHA / 2, gaps.size - 1) * gaps.std(ddof=1) / np.sqrt(gaps.size)
    return gaps.mean() - half, gaps.mean() + half


def bootstrap_examples(a, b, rng, n_boot=1000):
    """Percentile bootstrap over test examples of the seed-averaged per-example difference."""
    per_example = (a.astype(np.float64) - b).mean(axis=0)
    means = per_example[rng.integers(0, per_example.size, (n_boot, per_example.size))].mean(axis=1)
    return tuple(np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2]))


METHODS = {"xferdiag": xferdiag_interval, "Welch-Satterthwaite": welch_satterthwaite,
           "t over seeds": t_over_seeds, "bootstrap over examples": bootstrap_examples}


def power_ceiling(n_seeds, seed_ratio, shared, effect, alpha=ALPHA) -> float:
    """Most power any test of "no gap" can have while its false-verdict rate stays <= alpha for
    every amount of seed-to-seed variation (normal approximation, two-sided).

    Unit: each seed's own test noise ``var_own_test``, which the data pin down. The seed term's
    variance is ``seed_ratio`` >= 1 times that (1 when seeds agree), estimated with S - 1 degrees
    of freedom; the shared test-set variance is ``shared``; the true gap is ``effect``. A test is
    any rejection probability on a grid of (seed-term estimate, |gap|) cells, so the best one
    solves a linear programme: maximise power at ``seed_ratio`` subject to size <= alpha at
    every ratio on a grid over [1, 1000]. Finer grids move the answer by under 0.002.
    """
    df = n_seeds - 1
    ratio_edges = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 60), [np.inf]])
    gap_edges = np.concatenate([np.linspace(0.0, effect + 6 * np.sqrt(seed_ratio + shared), 80), [np.inf]])

    def cell_probabilities(ratio, mean):
        estimate = np.diff(stats.chi2.cdf(ratio_edges * df / ratio, df))
        sd = np.sqrt(ratio + shared)
        magnitude = np.diff(stats.norm.cdf((gap_edges - mean) / sd) - stats.norm.cdf((-gap_edges - mean) / sd))
        return np.outer(estimate, magnitude).ravel()

    ratios = np.geomspace(1.0, 1e3, 30)
    nulls = np.array([cell_probabilities(ratio, 0.0) for ratio in ratios])
    best = optimize.linprog(-cell_probabilities(seed_ratio, effect), A_ub=nulls, b_ub=np.full(ratios.size, alpha),
                            bounds=(0, 1), method="highs")
    return float(-best.fun)


def rates(method, correct_a, correct_b, rng) -> tuple[float, float]:
    """(fraction of positive verdicts, fraction of negative verdicts) over the trials."""
    cis = np.array([method(a, b, rng) for a, b in zip(correct_a, correct_b)])
    return float((cis[:, 0] > 0).mean()), float((cis[:, 1] < 0).mean())


def _slack(trials: int, rate: float) -> float:
    return 2 * np.sqrt(rate * (1 - rate) / trials)


def false_verdict_row(name, scenario, n_seeds, trials, rng, n_test=N_TEST) -> dict:
    a, b = simulate(rng, trials, n_seeds, n_test, **SCENARIOS[scenario])
    rate = sum(rates(METHODS[name], a, b, rng))
    return {"name": name, "scenario": f"A/A, {scenario}, {n_seeds} seed{'s' * (n_seeds > 1)}", "rate": rate,
            "target": f"<= {ALPHA:.2f}", "met": bool(rate <= ALPHA + _slack(trials, ALPHA)), "ceiling": None}


def power_row(name, scenario, n_seeds, gap, trials, rng, n_test=N_TEST, target=False) -> dict:
    """Fraction of positive verdicts; a target row also gets the ceiling at this regime's variance
    components (their averages over the trials, in units of var_own_test)."""
    a, b = simulate(rng, trials, n_seeds, n_test, gap=gap, **SCENARIOS[scenario])
    positive, _ = rates(METHODS[name], a, b, rng)
    row = {"name": name, "scenario": f"power, gap {gap:.2f}, {scenario}, {n_seeds} seeds", "rate": positive,
           "target": None, "met": None, "ceiling": None}
    if target:
        var_seeds, var_own, var_test = (v.mean() for v in variance_components(a.astype(np.float64) - b))
        row.update(target=f">= {POWER_TARGET:.2f}", met=bool(positive >= POWER_TARGET - _slack(trials, POWER_TARGET)),
                   ceiling=power_ceiling(n_seeds, max(var_seeds / var_own, 1.0), var_test / var_own,
                                         gap / np.sqrt(var_own)))
    return row


def _test_set(rng, trials, n_test, shared, arm):
    """What every seed of a trial shares: each example's difficulty and its affinity for each arm."""
    return tuple(rng.standard_normal((trials, n_test), dtype=np.float32) for _ in range(3))


def _seed(rng, test, rows, gap, *, seed_sd, shared, arm, mean=0.8):
    """Per-example differences (A - B) of one more seed for the trials ``rows`` (as :func:`simulate`)."""
    noise = np.sqrt(max(0.0, 1.0 - shared**2 - arm**2))
    difficulty, affinity_a, affinity_b = (x[rows] for x in test)
    correct = []
    for arm_mean, affinity in ((mean + gap / 2, affinity_a), (mean - gap / 2, affinity_b)):
        p = np.clip(arm_mean + seed_sd * rng.standard_normal((rows.size, 1)), 0.01, 0.99)
        score = shared * difficulty + arm * affinity + noise * rng.standard_normal(difficulty.shape, dtype=np.float32)
        correct.append(score > stats.norm.ppf(1 - p))
    return correct[0].astype(np.int8) - correct[1].astype(np.int8)


class _Tables:
    """Running sums of the trials' seeds x examples difference tables, one seed added at a time, so a
    trial extended to 20 seeds never holds its whole table (the two-way ANOVA needs only these sums)."""

    def __init__(self, rng, trials, n_test, gap, scenario, max_seeds):
        self.rng, self.gap, self.scenario, self.n = rng, gap, scenario, n_test
        self.test = _test_set(rng, trials, n_test, scenario["shared"], scenario["arm"])
        self.by_example = np.zeros((trials, n_test))
        self.squares = np.zeros(trials)
        self.per_seed = np.zeros((trials, max_seeds))

    def add(self, rows, seed):
        d = _seed(self.rng, self.test, rows, self.gap, **self.scenario)
        self.by_example[rows] += d
        self.squares[rows] += (d != 0).sum(axis=1)
        self.per_seed[rows, seed] = d.mean(axis=1)

    def decide(self, rows, n_seeds, alpha):
        """(positive, negative, (tau2, own, shared)) of the verdict at ``n_seeds`` for ``rows``."""
        per_seed, n = self.per_seed[rows, :n_seeds], self.n
        gap = per_seed.mean(axis=1)
        ss_seeds = n * ((per_seed - gap[:, None]) ** 2).sum(axis=1)
        ss_examples = n_seeds * ((self.by_example[rows] / n_seeds - gap[:, None]) ** 2).sum(axis=1)
        ms_residual = (self.squares[rows] - n_seeds * n * gap**2 - ss_seeds - ss_examples) / ((n_seeds - 1) * (n - 1))
        parts = (per_seed.var(axis=1, ddof=1), ms_residual / n,
                 np.maximum(ss_examples / (n - 1) - ms_residual, 0.0) / (n_seeds * n))
        h = sequential.half_width(*parts, n_seeds, n, alpha)
        return gap - h > 0, gap + h < 0, parts


def look_extend_look(rng, trials, gap, scenario, n_test=N_TEST, effect=sequential.MIN_EFFECT, cap=sequential.MAX_SEEDS):
    """(positive, negative, suggestion feasible) per trial of 3 seeds, extended when inconclusive."""
    tables, first = _Tables(rng, trials, n_test, gap, SCENARIOS[scenario], cap), np.arange(trials)
    for seed in range(3):
        tables.add(first, seed)
    positive, negative, parts = tables.decide(first, 3, ALPHA)
    open_ = ~(positive | negative)
    second = sequential.look_alpha(2, ALPHA)
    wanted = np.zeros(trials, dtype=int)
    wanted[open_] = sequential.seeds_needed(*(v[open_] for v in parts), 3, n_test, effect, second)
    feasible, wanted = open_ & (wanted <= cap), np.minimum(wanted, cap)
    for seed in range(3, cap):
        rows = np.flatnonzero(open_ & (wanted > seed))
        if rows.size:
            tables.add(rows, seed)
    for n_seeds in np.unique(wanted[open_]):
        rows = np.flatnonzero(open_ & (wanted == n_seeds))
        positive[rows], negative[rows], _ = tables.decide(rows, int(n_seeds), second)
    return positive, negative, feasible


def _chunks(rng, trials, gap, scenario, n_test, size=2000):
    return [look_extend_look(rng, min(size, trials - start), gap, scenario, n_test) for start in range(0, trials, size)]


def sequential_rows(trials, rng, n_test=N_TEST) -> list[dict]:
    """Per regime: the A/A false-verdict rate of look-extend-look (``trials``), and the share decided for
    a real gap (a quarter as many trials: a power needs less precision than a rate near its limit)."""
    rows, effect = [], sequential.MIN_EFFECT
    for scenario in SCENARIOS:
        chunks = _chunks(rng, trials, 0.0, scenario, n_test)
        rate = float(np.mean(np.concatenate([p | q for p, q, _ in chunks])))
        rows.append({"name": "xferdiag look-extend-look", "scenario": f"A/A, {scenario}, 3 seeds then plan", "rate": rate,
                     "target": f"<= {ALPHA:.2f}", "met": bool(rate <= ALPHA + _slack(trials, ALPHA)), "ceiling": None,
                     "mc_se": round(float(np.sqrt(rate * (1 - rate) / trials)), 4)})
        positive, feasible = (np.concatenate([c[i] for c in _chunks(rng, trials // 4, effect, scenario, n_test)]) for i in (0, 2))
        kept = float(positive[feasible].mean()) if feasible.any() else None
        rows.append({"name": "xferdiag look-extend-look", "scenario": f"power, gap {effect:.2f}, {scenario}, 3 seeds then plan",
                     "rate": float(positive.mean()), "target": None, "met": None, "ceiling": None,
                     "mc_se": round(float(np.sqrt(positive.mean() * (1 - positive.mean()) / (trials // 4))), 4),
                     "plan_feasible_share": round(float(feasible.mean()), 3),
                     "decided_where_feasible": None if kept is None else round(kept, 3), "promised": sequential.POWER})
    return rows


# --- paired comparisons between arms (issue 30): the verdict's paired statistic against Welch -----------------

PAIRED_GAP = 0.03  # the 3-point difference between two strategies
LINKS = (0.0, 0.5, 0.9)  # same-seed correlations of two strategies' runs in the paired rows (see seed_link and the report)
LINK = 0.5  # the linked case of the family rows


def welch_over_seeds(a, b, rng):
    """``compare``'s unpaired fallback (:func:`xferdiag.pairwise.welch`): Welch's t over the arms' per-seed accuracy."""
    ci = welch(a.mean(axis=1), b.mean(axis=1), names=("a", "b"), unpaired_because="benchmark").ci95
    return (-np.inf, np.inf) if ci[0] is None else ci


PAIR_METHODS = {"paired (xferdiag.pairwise)": xferdiag_interval, "Welch over seeds": welch_over_seeds}


def paired_rows(trials, rng, n_test=N_TEST) -> list[dict]:
    """Per regime, with independent seeds (link 0) and with seeds shared by the two arms (``LINKS``): false verdicts
    under A/A and power at a ``PAIRED_GAP`` difference, 3 seeds, each method on the same simulated tables."""
    rows = []
    for scenario in SCENARIOS:
        for link in LINKS:
            label = f"{scenario}, link {link:g}"
            null = simulate(rng, trials, 3, n_test, **SCENARIOS[scenario], link=link)
            real = simulate(rng, trials, 3, n_test, gap=PAIRED_GAP, **SCENARIOS[scenario], link=link)
            for name, method in PAIR_METHODS.items():
                rate, power = sum(rates(method, *null, rng)), rates(method, *real, rng)[0]
                rows.append({"name": name, "scenario": f"A/A, {label}, 3 seeds", "rate": rate, "target": f"<= {ALPHA:.2f}",
                             "met": bool(rate <= ALPHA + _slack(trials, ALPHA)), "ceiling": None})
                rows.append({"name": name, "scenario": f"power, gap {PAIRED_GAP:.2f}, {label}, 3 seeds", "rate": power,
                             "target": None, "met": None, "ceiling": None})
    return rows


def _p_values(a, b) -> tuple[float, float]:
    """(paired, Welch) p-values of one pair of (n_seeds, n_test) tables; Welch without a test counts as p = 1."""
    p = welch(a.mean(axis=1), b.mean(axis=1), names=("a", "b"), unpaired_because="benchmark").p_value
    return paired_verdict(a, b, ALPHA).p_value, 1.0 if p is None else p


def family_rows(trials, rng, n_test=N_TEST, n_arms=3) -> list[dict]:
    """A/A with ``n_arms`` strategies (every pair compared, Holm over the pairs, as a sweep and ``compare`` do): the
    share of trials with any pair called different, the family-wise error Holm holds at alpha."""
    rows = []
    for scenario in ("seeds disagree", "test noise dominates"):
        for link in (0.0, LINK):
            tables = simulate_arms(rng, (0.8,) * n_arms, trials, 3, n_test, **SCENARIOS[scenario], link=link)
            pairs = list(combinations(range(n_arms), 2))
            p = np.array([[_p_values(tables[i][t], tables[j][t]) for i, j in pairs] for t in range(trials)])
            for k, name in enumerate(PAIR_METHODS):
                rate = float(np.mean([min(holm(list(row[:, k]))) < ALPHA for row in p]))
                rows.append({"name": f"{name} + Holm", "scenario": f"A/A, {n_arms} arms, {len(pairs)} pairs, {scenario}, "
                             f"link {link:g}, 3 seeds", "rate": rate, "target": f"<= {ALPHA:.2f}",
                             "met": bool(rate <= ALPHA + _slack(trials, ALPHA)), "ceiling": None})
    return rows


def _residuals(correct: np.ndarray) -> np.ndarray:
    """A seeds x examples table less its seed and example means (the two-way ANOVA's residual)."""
    c = correct.astype(np.float64)
    return c - c.mean(axis=1, keepdims=True) - c.mean(axis=0, keepdims=True) + c.mean()


def seed_link(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """How much more two arms' per-example luck agrees within a seed than across seeds: the mean correlation of
    their residuals at the same seed less that at different seeds ((n_seeds, n_test) correctness tables, n_seeds >= 2)."""
    ra, rb = _residuals(correct_a), _residuals(correct_b)
    corr = np.corrcoef(ra, rb)[: len(ra), len(ra):]
    same = np.nanmean(np.diag(corr))
    return float(same - np.nanmean(corr[~np.eye(len(ra), dtype=bool)]))


def link_rows(runs: tuple[str, str], trials: int, rng, n_test=N_TEST) -> list[dict]:
    """:func:`seed_link` of the transfer arms of two real run directories (same split and seeds), beside the same
    statistic of simulated tables ("seed ~ test noise" regime) at several links, to read off the link they match."""
    from xferdiag.rundir import RunDir, read_predictions

    tables = []
    for root in runs:
        rd = RunDir(root)
        seeds = [read_predictions(rd.seed("transfer", s)) for s in rd.seeds("transfer")]
        tables.append(np.array([p.predictions == p.labels for p in seeds]))
    n_seeds, n = tables[0].shape
    rows = [{"name": "seed link, real runs", "scenario": f"{runs[0]} vs {runs[1]}, {n_seeds} seeds x {n} examples",
             "rate": seed_link(*tables), "target": None, "met": None, "ceiling": None}]
    for link in (0.0, 0.25, 0.5, 0.75):
        a, b = simulate(rng, min(trials, 200), n_seeds, n, **SCENARIOS["seed ~ test noise"], link=link)
        rows.append({"name": "seed link, simulated", "scenario": f"link {link:g}, {n_seeds} seeds x {n} examples",
                     "rate": float(np.mean([seed_link(x, y) for x, y in zip(a, b)])), "target": None, "met": None, "ceiling": None})
    return rows


def _print(rows: list[dict]) -> None:
    print(f"{'method':<28} {'scenario':<56} {'rate':>6} {'target':>8}  {'met':<4} ceiling")
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        ceiling = "" if row["ceiling"] is None else f"{row['ceiling']:.3f}"
        print(f"{row['name']:<28} {row['scenario']:<56} {row['rate']:>6.3f} {row['target'] or '':>8}  {met:<4} {ceiling}")


def main(quick: bool = False, n_test: int = N_TEST) -> list[dict]:
    trials = 200 if quick else 1000
    rng = np.random.default_rng(0)
    rows = [false_verdict_row(name, scenario, 3, trials, rng, n_test) for scenario in SCENARIOS for name in METHODS]
    rows.append(false_verdict_row("xferdiag", "seeds disagree", 1, trials, rng, n_test))
    rows += [power_row("xferdiag", scenario, 3, gap, trials, rng, n_test)
             for scenario in ("seeds disagree", "seed ~ test noise") for gap in (0.02, 0.05, 0.10)]
    rows += [power_row("xferdiag", "seeds disagree", 10, 0.05, trials, rng, n_test)]
    rows += [power_row(name, scenario, 3, 0.05, trials, rng, n_test, target=True)
             for scenario in AGREEING for name in ("xferdiag", "Welch-Satterthwaite")]
    rows += [power_row("xferdiag", scenario, 4, 0.05, trials, rng, n_test) for scenario in AGREEING]
    rows += sequential_rows(2000 if quick else 20000, rng, n_test)
    rows += paired_rows(trials, np.random.default_rng(30), n_test)  # its own stream: the rows above stay as published
    rows += family_rows(trials, np.random.default_rng(32), n_test)

    agreeing = "; ".join(f"{s} (run accuracy sd {SCENARIOS[s]['seed_sd']:g})" for s in AGREEING)
    print(f"verdict calibration, alpha {ALPHA}, n_test {n_test}, {trials} trials per row")
    print(f"power target >= {POWER_TARGET:.2f}: gap 0.05, 3 seeds, where seeds agree: {agreeing}")
    _print(rows)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trials per row instead of 1000")
    parser.add_argument("--n-test", type=int, default=N_TEST, help=f"test examples per trial (default {N_TEST})")
    parser.add_argument("--paired-only", action="store_true", help="only the rows of paired comparisons between arms")
    parser.add_argument("--link", nargs=2, metavar="RUN", help="the seed link of two run directories' transfer arms")
    args = parser.parse_args()
    trials = 200 if args.quick else 1000
    if args.link:
        _print(link_rows(tuple(args.link), trials, np.random.default_rng(31)))
    elif args.paired_only:
        _print(paired_rows(trials, np.random.default_rng(30), args.n_test) + family_rows(trials, np.random.default_rng(32), args.n_test))
    else:
        main(quick=args.quick, n_test=args.n_test)
