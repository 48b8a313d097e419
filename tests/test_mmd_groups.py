"""The MMD permutation test with groups (the boxes of one image): relabelling boxes one by one treats an image's boxes
as independent and rejects a true null almost always on clustered data; relabelling whole images keeps the false
positive rate at the test's level."""

from __future__ import annotations

import numpy as np
import pytest

from xferdiag.analyzers.mmd import mmd_test
from xferdiag.analyzers.permutation_groups import group_design, group_masks, group_subset
from xferdiag.errors import InputError


def _clustered(n_groups: int, per_group: int, rng, dim: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Points around random group centres (between-group spread 3, within 1): one distribution, clustered by group."""
    centres = rng.normal(0.0, 3.0, (n_groups, dim))
    groups = np.repeat(np.arange(n_groups), per_group)
    return centres[groups] + rng.normal(0.0, 1.0, (len(groups), dim)), groups


def test_grouped_masks_move_whole_groups_and_swap_pairs():
    """Groups 0-2 hold source points only, 5-6 target points only, 3 and 4 both (pairs): every relabelling keeps a
    one-sided group on one side, keeps three one-sided groups labelled x, and puts a pair's two sides on opposite sides."""
    gx, gy = np.array([0, 0, 1, 2, 2, 3, 4, 4]), np.array([3, 3, 4, 5, 6, 6])
    design = group_design((gx, gy), len(gx), len(gy))
    assert design.mixed.tolist() == [False, False, False, True, True, False, False]
    masks = group_masks(np.random.default_rng(0), design, 200)
    ids, side = np.r_[gx, gy], np.r_[np.ones(len(gx)), np.zeros(len(gy))]
    for g in (0, 1, 2, 5, 6):
        assert (masks[:, ids == g] == masks[:, ids == g][:, :1]).all()
    assert (np.stack([masks[:, ids == g][:, 0] for g in (0, 1, 2, 5, 6)]).sum(0) == 3).all()
    for g in (3, 4):
        same = masks[:, ids == g] == side[ids == g]  # each point keeps its side, or every point of the pair flips
        assert (same.all(1) | (~same).all(1)).all()
    assert 0.35 <= (masks[:, ids == 3][:, 0] == 1).mean() <= 0.65  # a fair swap
    with pytest.raises(InputError, match="groups: have 7 and 6 ids"):
        group_design((gx[:-1], gy), len(gx), len(gy))


def test_grouped_permutations_hold_the_level_on_clustered_data_from_one_distribution():
    """100 draws of 8 images a side, 5 points each, source and target images from one distribution: by point the test
    rejects at 0.05 in nearly every draw, by image at about 5% (at most 12 of 100: the binomial 99% bound), and the
    grouped p-values spread over [0, 1]."""
    by_point, by_group = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        (x, gx), (y, gy) = _clustered(8, 5, rng), _clustered(8, 5, rng)
        by_group.append(mmd_test(x, y, n_permutations=200, bandwidth="median", seed=seed, groups=(gx, gy + 8)).p_value)
        if seed < 10:
            by_point.append(mmd_test(x, y, n_permutations=200, bandwidth="median", seed=seed).p_value)
    by_group = np.array(by_group)
    assert np.mean(np.array(by_point) <= 0.05) >= 0.9
    assert 1 <= int((by_group <= 0.05).sum()) <= 12
    assert 0.35 <= float(np.median(by_group)) <= 0.65 and by_group.min() < 0.1 and by_group.max() > 0.9


def test_grouped_test_still_sees_a_real_shift_and_reports_its_groups():
    """Target clusters moved by 3 along every axis: rejected with groups too, by the default aggregated test."""
    rng = np.random.default_rng(0)
    (x, gx), (y, gy) = _clustered(10, 5, rng), _clustered(10, 5, rng)
    result = mmd_test(x, y + 3.0, n_permutations=200, seed=0, groups=(gx, gy + 10))
    assert result.p_value < 0.01 and result.groups == 20 and result.to_dict()["groups"] == 20
    assert mmd_test(x, y, n_permutations=20, seed=0).groups is None


def test_above_the_block_threshold_a_grouped_test_samples_whole_groups():
    """With groups the B-test (whose blocks would cut groups) gives way to a permutation test on whole groups."""
    rng = np.random.default_rng(1)
    (x, gx), (y, gy) = _clustered(20, 5, rng), _clustered(20, 5, rng)
    design = group_design((gx, gy + 20), len(x), len(y))
    kept = group_subset(design, 63, np.random.default_rng(0))
    assert len(kept) == 60 and all(np.isin(design.index, g).sum() in (0, 5) for g in np.unique(design.index[kept]))
    result = mmd_test(x, y, n_permutations=50, seed=0, groups=(gx, gy + 20), block_threshold=63)
    assert result.estimator == "permutation" and result.groups == 12
