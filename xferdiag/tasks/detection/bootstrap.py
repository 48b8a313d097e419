"""Paired bootstrap of the mAP difference over test images, from match tables.

Images are the unit (boxes in one image are correlated). One set of B resamples of the image
indices is drawn once and shared by every seed and both arms, so each replicate is one alternative
test set scored for all models. A replicate never re-runs the evaluator: matching stays inside an
image, so a resampled test set is the same match table with each image's detections and ground-truth
counts weighted by how often the image was drawn (:mod:`.average_precision`).

What the shared verdict needs (``xferdiag/negative.py``'s seeds x examples terms). With the
per-seed differences ``g_s`` (``observed``) and the replicate matrix ``D`` (B, S):

* ``tau^2`` is the sample variance of the ``g_s`` over seeds (``S - 1`` degrees of freedom), as
  for accuracy; ``var_seeds = tau^2 / S``.
* The test-set variance shared by all seeds (negative.py's ``sigma_b^2 / n``, ``var_test``) is
  ``shared_covariance``: the mean covariance of two different seeds' replicates. Both seeds are
  scored on the same resampled images, so what moves them together is the test set.
* Each seed's own test noise (``var_own_test``, the floor under ``var_seeds``) is
  ``(mean(variance_per_seed) - shared_covariance) / S``: the bootstrap variance of one seed's
  difference is its shared plus its own test noise.
* With one seed, ``variance_per_seed[0]`` is the whole test-set variance of the paired t over
  images. ``n_images - 1`` are the test terms' degrees of freedom, as negative.py gives its test term.
* Both differences can come out below 0 by chance; clip them at 0, as negative.py clips its
  mean-square difference.

mAP is not a mean over images, so these are bootstrap estimates rather than ANOVA mean squares; for
a metric that is such a mean they estimate the same quantities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xferdiag.errors import InputError
from xferdiag.tasks.detection.average_precision import mean_average_precision
from xferdiag.tasks.detection.matching import MatchTable

_CELLS = 2_000_000  # replicates x thresholds x detections of one class evaluated at once


def image_weights(n_images: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_images) multiplicities of B seeded resamples of the images, with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(n_boot, n_images))
    return weights_of(draws, n_images)


def weights_of(draws: np.ndarray, n_images: int) -> np.ndarray:
    """Multiplicities (replicates, n_images) of resampled image indices (replicates, draws)."""
    offsets = np.arange(len(draws))[:, None] * n_images
    return np.bincount((draws + offsets).ravel(), minlength=len(draws) * n_images).reshape(len(draws), n_images).astype(float)


def replicate_map(table: MatchTable, weights: np.ndarray) -> np.ndarray:
    """mAP over the table's IoU columns (COCO's mAP@[.5:.95], or AP50 for a one-column table) on each
    weighted test set, (replicates,); the replicates go through in chunks to bound memory."""
    per_class = np.bincount(table.category, minlength=len(table.category_ids))
    rows = max(1, _CELLS // (table.tp.shape[1] * max(int(per_class.max(initial=0)), 1)))
    return np.concatenate([mean_average_precision(table, weights[i:i + rows]) for i in range(0, len(weights), rows)])


@dataclass(frozen=True)
class PairedBootstrap:
    """Per seed the observed mAP difference (arm A minus arm B) and its bootstrap variance, and the
    mean covariance between different seeds' replicates (None with one seed); see the module docstring."""

    observed: tuple[float, ...]
    variance_per_seed: tuple[float, ...]
    shared_covariance: float | None
    n_boot: int
    n_images: int

    def to_dict(self) -> dict:
        return {"observed": list(self.observed), "variance_per_seed": list(self.variance_per_seed),
                "shared_covariance": self.shared_covariance, "n_boot": self.n_boot, "n_images": self.n_images}


def paired_weights(tables_a: list[MatchTable], tables_b: list[MatchTable], n_boot: int, seed: int,
                   weights: np.ndarray | None) -> np.ndarray:
    """The shared resamples, (1 + replicates, images): the identity first (the observed values), then
    ``weights`` or ``n_boot`` seeded draws; checks that both arms' seeds share one test set."""
    if not tables_a or len(tables_a) != len(tables_b):
        raise InputError(f"match tables: need the same number of seeds in both arms, got {len(tables_a)} and {len(tables_b)}")
    first = tables_a[0]
    for table in [*tables_a, *tables_b]:
        if table.image_ids != first.image_ids or table.category_ids != first.category_ids \
                or not np.array_equal(table.gt_counts, first.gt_counts):
            raise InputError("match tables: every seed of both arms must be scored on the same test images and ground truth")
    n_images = len(first.image_ids)
    weights = image_weights(n_images, n_boot, seed) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or len(weights) < 2 or weights.shape[1] != n_images or (weights < 0).any():
        raise InputError(f"n_boot/weights: need at least 2 replicates of {n_images} non-negative image weights, got {weights.shape}")
    return np.vstack([np.ones((1, n_images)), weights])


def paired_result(differences: np.ndarray, n_images: int) -> tuple[np.ndarray, PairedBootstrap]:
    """(replicates, summary) from per-seed differences scored on :func:`paired_weights`' rows (1 + B, S)."""
    replicates = differences[1:]
    replicates_ok = replicates[np.isfinite(replicates).all(axis=1)]  # a replicate without any class with ground truth has no mAP
    cov = np.atleast_2d(np.cov(replicates_ok, rowvar=False))
    n_seeds = cov.shape[0]
    shared = float((cov.sum() - np.trace(cov)) / (n_seeds * (n_seeds - 1))) if n_seeds > 1 else None
    return replicates, PairedBootstrap(observed=tuple(float(v) for v in differences[0]),
                                       variance_per_seed=tuple(float(v) for v in np.diag(cov)),
                                       shared_covariance=shared, n_boot=len(replicates), n_images=n_images)


def paired_map_bootstrap(tables_a: list[MatchTable], tables_b: list[MatchTable], n_boot: int = 1000,
                         seed: int = 0, weights: np.ndarray | None = None) -> tuple[np.ndarray, PairedBootstrap]:
    """(replicates (n_boot, S) of mAP(A) - mAP(B) per seed, summary) with one shared set of resamples.

    ``tables_a[s]`` and ``tables_b[s]`` are seed ``s`` of each arm, all on the same test images.
    ``weights`` (replicates, images) replaces the seeded draw, e.g. to score resamples a peer also scores."""
    rows = paired_weights(tables_a, tables_b, n_boot, seed, weights)
    differences = np.stack([replicate_map(a, rows) - replicate_map(b, rows) for a, b in zip(tables_a, tables_b)], axis=1)
    return paired_result(differences, rows.shape[1])
