"""Is the transfer-vs-scratch verdict calibrated? xferdiag against two naive intervals.

A/A simulations (no true difference) count how often each method still declares a verdict
(positive or negative) at alpha 0.05; a calibrated method does so at most 5 % of the time. The
naive methods each ignore one noise source:

* bootstrap over test examples (seed-averaged correctness, percentile interval): blind to
  seed-to-seed variation, so overconfident when seeds disagree;
* paired t over per-seed gaps: blind to the test-set noise that every seed shares, so
  overconfident when the test set is small relative to how differently the arms behave on it.

Then power: how often xferdiag calls a real gap positive. "met" for a false-verdict row allows two
Monte Carlo standard errors above the target; power rows have no target.

    python -m benchmarks.bench_verdict_calibration [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from xferdiag.negative import paired_verdict

ALPHA = 0.05
N_TEST = 500

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


METHODS = {"xferdiag": xferdiag_interval, "t over seeds": t_over_seeds, "bootstrap over examples": bootstrap_examples}


def rates(method, correct_a, correct_b, rng) -> tuple[float, float]:
    """(fraction of positive verdicts, fraction of negative verdicts) over the trials."""
    cis = np.array([method(a, b, rng) for a, b in zip(correct_a, correct_b)])
    return float((cis[:, 0] > 0).mean()), float((cis[:, 1] < 0).mean())


def false_verdict_row(name, scenario, n_seeds, trials, rng) -> dict:
    a, b = simulate(rng, trials, n_seeds, **SCENARIOS[scenario])
    rate = sum(rates(METHODS[name], a, b, rng))
    slack = 2 * np.sqrt(ALPHA * (1 - ALPHA) / trials)
    return {"name": name, "scenario": f"A/A, {scenario}, {n_seeds} seed{'s' * (n_seeds > 1)}",
            "rate": rate, "target": ALPHA, "met": bool(rate <= ALPHA + slack)}


def power_row(scenario, n_seeds, gap, trials, rng) -> dict:
    a, b = simulate(rng, trials, n_seeds, gap=gap, **SCENARIOS[scenario])
    positive, _ = rates(xferdiag_interval, a, b, rng)
    return {"name": "xferdiag", "scenario": f"power, gap {gap:.2f}, {scenario}, {n_seeds} seeds",
            "rate": positive, "target": None, "met": None}


def main(quick: bool = False) -> list[dict]:
    trials = 200 if quick else 1000
    rng = np.random.default_rng(0)
    rows = [false_verdict_row(name, scenario, 3, trials, rng) for scenario in SCENARIOS for name in METHODS]
    rows.append(false_verdict_row("xferdiag", "seeds disagree", 1, trials, rng))
    rows += [power_row(scenario, 3, gap, trials, rng)
             for scenario in ("seeds disagree", "seed ~ test noise") for gap in (0.02, 0.05, 0.10)]
    rows += [power_row("seeds disagree", 10, 0.05, trials, rng)]

    print(f"verdict calibration, alpha {ALPHA}, n_test {N_TEST}, {trials} trials per row")
    print(f"{'method':<24} {'scenario':<52} {'rate':>6} {'target':>7}  met")
    for row in rows:
        target = "" if row["target"] is None else f"<={row['target']:.2f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['name']:<24} {row['scenario']:<52} {row['rate']:>6.3f} {target:>7}  {met}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trials per row instead of 1000")
    main(quick=parser.parse_args().quick)
