"""The verdict for a metric that is not a mean over examples (a detector's mAP) combines seeds as the
accuracy verdict does, with its test-set terms from a paired bootstrap over test examples."""

from __future__ import annotations

import numpy as np
import pytest

from xferdiag.errors import InputError
from xferdiag.negative import bootstrap_components_verdict, paired_verdict


def _tables(seed: int, n_seeds: int = 3, n: int = 400):
    """Per-example correctness of two arms: examples share a difficulty, seeds differ a little."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=n)
    a = np.array([rng.random(n) < 1 / (1 + np.exp(-(1.2 - difficulty + rng.normal(0, 0.2)))) for _ in range(n_seeds)])
    b = np.array([rng.random(n) < 1 / (1 + np.exp(-(1.0 - difficulty + rng.normal(0, 0.2)))) for _ in range(n_seeds)])
    return a.astype(float), b.astype(float)


def _bootstrap(a, b, draws: int, seed: int):
    """Per-seed accuracy gaps on resampled test sets, one resample shared by every seed."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.shape[1], size=(draws, a.shape[1]))
    d = a - b
    return d.mean(axis=1), d[:, idx].mean(axis=2).T  # (S,), (B, S)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_a_mean_over_examples_it_matches_the_closed_form_interval(seed):
    a, b = _tables(seed)
    closed = paired_verdict(a, b)
    gaps, reps = _bootstrap(a, b, 4000, seed)
    boot = bootstrap_components_verdict(gaps, reps, n_test=a.shape[1])
    assert boot.gap == pytest.approx(closed.gap, abs=1e-12)
    assert boot.per_seed == pytest.approx(closed.per_seed, abs=1e-12)
    assert boot.se_seeds == pytest.approx(closed.se_seeds, rel=1e-9)  # the same spread of per-seed gaps
    width = lambda v: v.ci95[1] - v.ci95[0]  # noqa: E731
    assert width(boot) == pytest.approx(width(closed), rel=0.1)  # test-set terms: bootstrap vs ANOVA estimates
    assert boot.se_test_set == pytest.approx(closed.se_test_set, rel=0.25, abs=2e-3)


def test_one_seed_uses_the_bootstrap_variance_alone():
    a, b = _tables(3, n_seeds=1)
    gaps, reps = _bootstrap(a, b, 4000, 3)
    boot = bootstrap_components_verdict(gaps, reps, n_test=a.shape[1])
    closed = paired_verdict(a, b)
    assert boot.note.startswith("one seed:") and closed.note.startswith("one seed:") and boot.se_seeds is None
    assert boot.se_test_set == pytest.approx(closed.se_test_set, rel=0.05)


def test_a_clear_gap_is_positive_and_a_reversed_one_negative():
    gaps = np.array([0.10, 0.12, 0.11])
    reps = gaps + np.random.default_rng(0).normal(0, 0.01, size=(500, 1))  # shared test noise only
    assert bootstrap_components_verdict(gaps, reps, n_test=200).verdict == "positive"
    assert bootstrap_components_verdict(-gaps, -reps, n_test=200).verdict == "negative"
    assert bootstrap_components_verdict(gaps - 0.11, reps - 0.11, n_test=200).verdict == "inconclusive"


def test_replicates_of_the_wrong_shape_end_in_one_line():
    with pytest.raises(InputError, match="replicates"):
        bootstrap_components_verdict([0.1, 0.2], np.zeros((10, 3)), n_test=50)


def test_a_one_seed_bootstrap_verdict_warns_without_the_accuracy_simulations_number():
    reps = np.random.default_rng(0).normal(0.05, 0.02, size=(200, 1))
    note = bootstrap_components_verdict([0.05], reps, n_test=40).note
    assert note.startswith("one seed: the interval reflects test-set noise only") and "train 3 or more seeds" in note
    assert "accuracy" not in note  # a detector's mAP is not an accuracy, and the 40% came from accuracy runs
