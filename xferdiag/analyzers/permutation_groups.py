"""Permutations that move whole groups: the boxes of one image are alike, so a two-sample test over boxes that
relabels boxes one by one treats an image's boxes as independent draws and its p-value is optimistic (on clustered
points from one distribution it rejects nearly always). Relabelling whole images keeps the null distribution exact
under the exchangeability that holds: images, not boxes, are the independent units. An id on both sides pairs a
source group with a target group (target image k shows source image k's objects): the pair's two sides swap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class GroupDesign:
    """What a grouped permutation moves: per pooled point its group's position (``index``) and side
    (1 = x); per group whether it holds points of both sides (``mixed``: a pair, whose two sides swap
    with probability 1/2), and the sides of the one-sided groups (shuffled among them)."""

    index: np.ndarray
    side: np.ndarray
    mixed: np.ndarray
    sides: np.ndarray


def group_design(groups, n: int, m: int) -> GroupDesign:
    """``groups`` (the group of each x point and of each y point; an id on both sides pairs them) as a design."""
    if len(groups) != 2:
        raise InputError("groups: give two arrays, the group of each source point and of each target point")
    gx, gy = (np.asarray(g).reshape(-1) for g in groups)
    if (len(gx), len(gy)) != (n, m):
        raise InputError(f"groups: have {len(gx)} and {len(gy)} ids for {n} source and {m} target points")
    _, index = np.unique(np.concatenate([gx, gy]), return_inverse=True)
    side = np.r_[np.ones(n), np.zeros(m)]
    has_x, has_y = (np.bincount(index, weights=w, minlength=index.max() + 1) > 0 for w in (side, 1 - side))
    mixed = has_x & has_y
    return GroupDesign(index, side, mixed, has_x[~mixed].astype(np.float64))


def group_masks(rng, design: GroupDesign, count: int) -> np.ndarray:
    """``count`` relabellings that move whole groups (rows drawn one after the other, as
    :func:`.mmd._permutation_masks`): the one-sided groups' sides shuffled, each pair's sides swapped or not."""
    rows = np.empty((count, len(design.mixed)))
    for row in rows:
        row[~design.mixed] = rng.permutation(design.sides)
        row[design.mixed] = rng.integers(0, 2, int(design.mixed.sum()))
    per_point = rows[:, design.index]
    return np.where(design.mixed[design.index], np.abs(design.side - per_point), per_point)


def group_subset(design: GroupDesign, cap: int, rng) -> np.ndarray:
    """Pooled positions of a seeded random subset of whole groups holding at most ``cap`` points (at least one
    group): a grouped test on more points than one kernel matrix holds runs on a sample of groups, since the
    B-test's blocks would cut them."""
    sizes = np.bincount(design.index)
    order = rng.permutation(len(sizes))
    kept = order[: max(1, int(np.searchsorted(np.cumsum(sizes[order]), cap, side="right")))]
    return np.flatnonzero(np.isin(design.index, kept))
