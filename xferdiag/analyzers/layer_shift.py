"""Where in the network source and target come apart: the kernel two-sample test at every layer.

The penultimate layer's shift says whether the domains differ for the head; the same test layer by
layer says where the difference appears: in the first blocks (pixels, colours, word pieces) or
only deep in the network (content). Every layer is tested on the same seeded subsample of
examples, so the rows differ only in the layer; the MMD² of a Gaussian kernel at the median
bandwidth lies on the same scale at every layer, whatever its width. p-values are adjusted across
the layers with Benjamini-Hochberg, as the per-feature tests are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._validate import check_scalar, check_seed
from ..errors import InputError
from ..negative import ALPHA
from .mmd import mmd_test
from .shift import _benjamini_hochberg

LAYER_SAMPLES = 300
"""Examples per side at each layer: the kernel matrix of 600 points makes 500 permutations take a
fraction of a second per layer, so a 16-block network adds seconds, not minutes, to analyze."""
LAYER_PERMUTATIONS = 500


def layer_shift(source: Mapping[str, np.ndarray], target: Mapping[str, np.ndarray], *, max_samples: int = LAYER_SAMPLES,
                n_permutations: int = LAYER_PERMUTATIONS, seed: int = 0) -> list[dict]:
    """One row per layer of ``source`` (in its order): ``{"name", "mmd2", "p_value", "p_adjusted", "shifted",
    "n_source", "n_target"}``; ``source[name]`` is (n, d) and ``target[name]`` (m, d) for every name."""
    if not source or set(source) != set(target):
        raise InputError("layer_shift: give features of the same layers for source and target")
    max_samples = check_scalar(max_samples, "max_samples", int, 2)
    rng = check_seed(seed)
    n, m = len(next(iter(source.values()))), len(next(iter(target.values())))
    rows_s = np.sort(rng.choice(n, min(n, max_samples), replace=False))
    rows_t = np.sort(rng.choice(m, min(m, max_samples), replace=False))
    rows = []
    for name in source:
        result = mmd_test(np.asarray(source[name])[rows_s], np.asarray(target[name])[rows_t], n_permutations=n_permutations,
                          seed=seed)
        rows.append({"name": name, "mmd2": result.statistic, "p_value": result.p_value,
                     "n_source": len(rows_s), "n_target": len(rows_t)})
    adjusted = _benjamini_hochberg(np.array([row["p_value"] for row in rows]))
    for row, q in zip(rows, adjusted):
        row.update(p_adjusted=float(q), shifted=bool(q < ALPHA))
    return rows
