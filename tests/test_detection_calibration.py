"""The detection calibration benchmark decides its A/A splits exactly as the verdict does, counts every split
once, and puts an honest (seed-level) error bar on the rate."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_detection_calibration import aa_splits, decide, jackknife_rate, seed_maps, simulated_table, t_split_rates
from xferdiag.tasks.detection.average_precision import metrics_from_table
from xferdiag.tasks.detection.bootstrap import paired_map_bootstrap
from xferdiag.tasks.detection.matching import match_tables
from xferdiag.tasks.detection.synthetic import detection_set
from xferdiag.tasks.detection.verdict import map_verdict


def test_a_split_of_stored_seeds_gets_the_verdict_judge_gives():
    sets = [detection_set(3, n_images=30, n_classes=2, quality=q, model_seed=k) for k, q in enumerate([0.6, 0.7, 0.5, 0.6, 0.65, 0.55])]
    tables = [match_tables(sets[0][0], results) for _, results in sets]
    maps = seed_maps(tables, n_boot=200)
    mine = decide(maps[:, [0, 2, 4]], maps[:, [5, 1, 3]], n_images=30)
    replicates, boot = paired_map_bootstrap([tables[i] for i in (0, 2, 4)], [tables[i] for i in (5, 1, 3)], n_boot=200, seed=0)
    theirs = map_verdict(boot, replicates, 0.05)
    assert mine.gap == pytest.approx(theirs.gap, abs=1e-12)
    assert mine.ci95 == pytest.approx(theirs.ci95, abs=1e-12)
    assert mine.p_value == pytest.approx(theirs.p_value, rel=1e-9)
    assert (mine.n_seeds, mine.n_test) == (3, 30)


def test_every_split_of_eight_seeds_once_without_its_mirror():
    splits = aa_splits(list(range(8)))
    assert len(splits) == 56 * 60 // 2  # 3 of 8, then 3 of 5 in order; mirror images count once
    canonical = {frozenset(zip(a, b)) for a, b in splits}  # a split is its set of pairs, up to the arms' swap
    mirrors = {frozenset((y, x) for x, y in pairs) for pairs in canonical}
    assert len(canonical) == len(splits) and not canonical & mirrors
    assert all(not set(a) & set(b) for a, b in splits)
    assert len(aa_splits(list(range(6)))) == 20 * 6 // 2


def test_sixteen_seeds_give_a_fixed_uniform_sample_of_their_480480_splits():
    splits = aa_splits(list(range(16)), limit=5000)
    assert len(splits) == len(set(splits)) == 5000 and splits == aa_splits(list(range(16)), limit=5000)
    assert all(a[0] < min(b) and not set(a) & set(b) for a, b in splits)
    # uniform over 560 * 858 / 2 = 480,480 splits: each seed takes part in 6/16 of them
    shares = np.bincount([s for a, b in splits for s in (*a, *b)], minlength=16) / len(splits)
    assert np.allclose(shares, 6 / 16, atol=0.03)


def test_jackknife_of_a_rate_that_only_one_seed_drives():
    """False exactly when seed 0 takes part: 1260 of 1680 splits; deleting seed 0 leaves none false, deleting
    another leaves 360 of 420 (6/7); the jackknife standard error is sqrt(7/8 * (0.75^2 + 7 (6/7 - 0.75)^2)) = 0.75."""
    seeds = list(range(8))
    false = {(a, b): 0 in a or 0 in b for a, b in aa_splits(seeds)}
    rate, se = jackknife_rate(seeds, false)
    assert rate == pytest.approx(0.75) and se == pytest.approx(0.75)


def test_simulated_tables_score_perfect_and_useless_detectors():
    rng = np.random.default_rng(0)
    counts = rng.choice(4, 40, p=[0.1, 0.3, 0.3, 0.3])
    perfect = simulated_table(rng, counts, np.full(counts.sum(), 12.0))
    assert metrics_from_table(perfect).map == pytest.approx(1.0)  # every object found at IoU ~1, above every false box
    useless = simulated_table(rng, counts, np.full(counts.sum(), -12.0))
    assert metrics_from_table(useless).map == 0.0
    half = simulated_table(rng, counts, np.full(counts.sum(), 0.3))  # IoU Phi(0.3) = 0.618: true positives at .50-.60 only
    assert metrics_from_table(half).ap50 > 0.5 and metrics_from_table(half).ap75 == 0.0


def test_split_rate_of_an_exact_test_averages_alpha_over_fresh_seeds():
    """With normal per-seed values every 3-vs-3 split is an exact paired t, so the rate over one draw's splits
    averages 0.05 over draws (its spread, about 0.02, is what one set of 8 seeds can show)."""
    rates = t_split_rates(np.random.default_rng(1).standard_normal((2000, 8)))
    assert abs(rates.mean() - 0.05) < 0.002
    assert 0.015 < rates.std() < 0.03
