"""The paired image bootstrap from match tables: weighted tables equal duplicated test sets scored by
pycocotools, the identity resample gives the observed difference, and the variance summary is right."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.coco_reference import coco_eval, duplicated
from xferdiag.errors import InputError
from xferdiag.tasks.detection.average_precision import evaluate, metrics_from_table
from xferdiag.tasks.detection.bootstrap import image_weights, paired_map_bootstrap, paired_result, replicate_map, weights_of
from xferdiag.tasks.detection.matching import match_tables
from xferdiag.tasks.detection.synthetic import detection_set


@pytest.mark.parametrize("seed", range(3))
def test_weighted_table_equals_the_duplicated_test_set(seed):
    pytest.importorskip("pycocotools")
    gt, results = detection_set(seed, distinct_scores=True)
    table = match_tables(gt, results)
    weights = image_weights(len(table.image_ids), 2, seed)
    assert weights.max() >= 2 and (weights == 0).any()
    for counts, ours in zip(weights, replicate_map(table, weights)):
        copies_gt, copies_results = duplicated(gt, results, counts)
        assert ours == pytest.approx(coco_eval(copies_gt, copies_results).stats[0], abs=1e-6)
        assert ours == pytest.approx(evaluate(copies_gt, copies_results).map, abs=1e-12)


def _arms(n_seeds: int):
    gt, _ = detection_set(0)
    tables = {}
    for arm, quality in (("a", 0.7), ("b", 0.5)):
        tables[arm] = []
        for s in range(n_seeds):
            _, results = detection_set(0, quality=quality, model_seed=10 * len(tables) + s)
            tables[arm].append(match_tables(gt, results))
    return tables["a"], tables["b"]


def test_identity_resample_gives_the_observed_difference():
    a, b = _arms(2)
    n_images = len(a[0].image_ids)
    weights = np.vstack([np.ones(n_images), image_weights(n_images, 5, 1)])
    replicates, result = paired_map_bootstrap(a, b, weights=weights)
    observed = [metrics_from_table(x).map - metrics_from_table(y).map for x, y in zip(a, b)]
    np.testing.assert_allclose(result.observed, observed, atol=1e-12)
    np.testing.assert_allclose(replicates[0], observed, atol=1e-12)
    assert replicates.shape == (6, 2) and np.ptp(replicates[:, 0]) > 0


def test_seeds_that_are_the_same_model_share_all_their_test_noise():
    a, b = _arms(1)
    _, result = paired_map_bootstrap(a * 2, b * 2, n_boot=50, seed=4)
    assert result.variance_per_seed[0] == pytest.approx(result.variance_per_seed[1], rel=1e-12)
    assert result.shared_covariance == pytest.approx(result.variance_per_seed[0], rel=1e-12) and result.shared_covariance > 0


def test_shared_draws_and_identical_arms():
    a, _ = _arms(1)
    replicates, result = paired_map_bootstrap(a, a, n_boot=20, seed=3)
    assert not replicates.any() and result.observed == (0.0,) and result.shared_covariance is None
    np.testing.assert_array_equal(image_weights(10, 4, 3), image_weights(10, 4, 3))
    np.testing.assert_array_equal(weights_of(np.array([[0, 0, 2]]), 4), [[2, 0, 1, 0]])
    assert image_weights(10, 4, 3).sum(1).tolist() == [10] * 4


def test_summary_of_a_known_replicate_matrix():
    # columns x = (1, -1, 0, 0), y = (1, -1, 1, -1): var x = 2/3, var y = 4/3, cov = 2/3
    # (the first row is the observed difference, a row without mAP is left out)
    rows = np.array([[0.1, 0.2], [1.0, 1.0], [-1.0, -1.0], [0.0, 1.0], [0.0, -1.0], [np.nan, 0.0]])
    replicates, result = paired_result(rows, n_images=9)
    assert result.observed == (0.1, 0.2) and len(replicates) == 5 and result.n_images == 9
    np.testing.assert_allclose(result.variance_per_seed, [2 / 3, 4 / 3])
    assert result.shared_covariance == pytest.approx(2 / 3)


def test_bad_pairs_are_input_errors():
    a, b = _arms(2)
    with pytest.raises(InputError, match="same number of seeds"):
        paired_map_bootstrap(a, b[:1])
    gt_other, results = detection_set(5)
    with pytest.raises(InputError, match="same test images"):
        paired_map_bootstrap(a[:1], [match_tables(gt_other, results)])
    with pytest.raises(InputError, match="at least 2 replicates"):
        paired_map_bootstrap(a, b, n_boot=1)


@pytest.mark.slow
def test_bootstrap_variance_matches_the_spread_of_map_over_fresh_test_sets():
    # a pool of 500 images; test sets of 50 drawn from it: the spread of mAP over 300 fresh test sets
    # against the mean bootstrap variance within 10 of them (200 replicates each); measured ratio 0.98
    gt, results = detection_set(0, n_images=500, quality=0.8, jitter=0.05, model_seed=1)
    table = match_tables(gt, results)
    rng = np.random.default_rng(0)
    test_sets = np.stack([rng.choice(500, 50, replace=False) for _ in range(300)])
    true_var = replicate_map(table, weights_of(test_sets, 500)).var(ddof=1)
    draws = np.concatenate([test_sets[k][rng.integers(0, 50, (200, 50))] for k in range(10)])
    boot_var = replicate_map(table, weights_of(draws, 500)).reshape(10, 200).var(axis=1, ddof=1)
    assert 0.7 < boot_var.mean() / true_var < 1.4
