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

    python -m benchmarks.bench_verdict_calibration [--quick] [--n-test N]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import optimize, stats

from xferdiag.negative import _variance_components, paired_verdict

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


def simulate(rng, n_trials, n_seeds, n_test=N_TEST, gap=0.0, *, seed_sd, shared, arm, mean=0.8):
    """Per-example correctness of arms A and B, each (n_trials, n_seeds, n_test) bool.

    Every trial draws a fresh test set. Example i has a difficulty shared by both arms and an
    affinity for each arm (some examples suit one arm better); each arm-seed run has its own true
    accuracy p ~ N(mean +- gap/2, seed_sd) and gets an example right when its latent score clears
    the threshold for p, so p is exactly that run's accuracy on the whole population.
    """
    noise = np.sqrt(max(0.0, 1.0 - shared**2 - arm**2))
    difficulty = rng.standard_normal((n_trials, 1, n_test))
    arms = []
    for arm_mean in (mean + gap / 2, mean - gap / 2):
        p = np.clip(arm_mean + seed_sd * rng.standard_normal((n_trials, n_seeds, 1)), 0.01, 0.99)
        score = (shared * difficulty + arm * rng.standard_normal((n_trials, 1, n_test))
                 + noise * rng.standard_normal((n_trials, n_seeds, n_test)))
        arms.append(score > stats.norm.ppf(1 - p))
    return arms[0], arms[1]


def xferdiag_interval(a, b, rng):
    return paired_verdict(a, b, ALPHA).ci95


def welch_satterthwaite(a, b, rng):
    """max(var_seeds, var_own_test) + var_test with a t quantile at Welch-Satterthwaite df: S - 1
    for var_seeds, (S - 1)(n - 1) for its lower bound var_own_test, n - 1 for var_test."""
    d = a.astype(np.float64) - b
    n_seeds, n_test = d.shape
    var_seeds, var_own, var_test = (float(v) for v in _variance_components(d))
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
        var_seeds, var_own, var_test = (v.mean() for v in _variance_components(a.astype(np.float64) - b))
        row.update(target=f">= {POWER_TARGET:.2f}", met=bool(positive >= POWER_TARGET - _slack(trials, POWER_TARGET)),
                   ceiling=power_ceiling(n_seeds, max(var_seeds / var_own, 1.0), var_test / var_own,
                                         gap / np.sqrt(var_own)))
    return row


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

    agreeing = "; ".join(f"{s} (run accuracy sd {SCENARIOS[s]['seed_sd']:g})" for s in AGREEING)
    print(f"verdict calibration, alpha {ALPHA}, n_test {n_test}, {trials} trials per row")
    print(f"power target >= {POWER_TARGET:.2f}: gap 0.05, 3 seeds, where seeds agree: {agreeing}")
    print(f"{'method':<24} {'scenario':<52} {'rate':>6} {'target':>8}  {'met':<4} ceiling")
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        ceiling = "" if row["ceiling"] is None else f"{row['ceiling']:.3f}"
        print(f"{row['name']:<24} {row['scenario']:<52} {row['rate']:>6.3f} {row['target'] or '':>8}  {met:<4} {ceiling}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trials per row instead of 1000")
    parser.add_argument("--n-test", type=int, default=N_TEST, help=f"test examples per trial (default {N_TEST})")
    args = parser.parse_args()
    main(quick=args.quick, n_test=args.n_test)
