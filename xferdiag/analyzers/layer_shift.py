"""Where in the network source and target come apart: the kernel two-sample test, the domain
classifiers and the Fréchet distance at every layer.

The penultimate layer's shift says whether the domains differ for the head; the same tests layer by
layer say where the difference appears: in the first blocks (pixels, colours, word pieces) or
only deep in the network (content). Every layer is tested on the same seeded subsample of
examples, so the rows differ only in the layer; the reported MMD² (Gaussian kernel at the median
bandwidth on whitened features, :mod:`.mmd`) is dimensionless, on the same scale at every layer
whatever its width or feature scales, and so are the proxy A-distance
(0 to 2) and the C2ST accuracy (1/2 to 1) of the pooled analysis (:mod:`.shift`), run here on each
layer; the Fréchet distance is in each layer's own squared units, comparable between runs at the
same layer, not between layers. MMD p-values are adjusted across the layers with Benjamini-Hochberg,
as the per-feature tests are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._validate import check_scalar, check_seed
from ..errors import InputError
from ..negative import ALPHA
from .mmd import mmd_test
from .shift import _benjamini_hochberg, classifier_two_sample_test, frechet_distance, proxy_a_distance

LAYER_SAMPLES = 300
"""Examples per side at each layer: the kernel matrix of 600 points makes 500 permutations take a
fraction of a second per layer, so a 16-block network adds seconds, not minutes, to analyze."""
LAYER_PERMUTATIONS = 500
PAD_FOLDS = 5  # the pooled proxy A-distance's cross-validation folds


def layer_shift(source: Mapping[str, np.ndarray], target: Mapping[str, np.ndarray], *, max_samples: int = LAYER_SAMPLES,
                n_permutations: int = LAYER_PERMUTATIONS, seed: int = 0) -> list[dict]:
    """One row per layer of ``source`` (in its order): ``{"name", "mmd2", "p_value", "p_adjusted", "shifted",
    "proxy_a_distance", "c2st_accuracy", "c2st_p_value", "frechet", "n_source", "n_target"}``; ``source[name]``
    is (n, d) and ``target[name]`` (m, d) for every name. The domain classifiers need 5 examples per side
    (the proxy A-distance's folds): with fewer their fields are None."""
    if not source or set(source) != set(target):
        raise InputError("layer_shift: give features of the same layers for source and target")
    max_samples = check_scalar(max_samples, "max_samples", int, 2)
    rng = check_seed(seed)
    n, m = len(next(iter(source.values()))), len(next(iter(target.values())))
    rows_s = np.sort(rng.choice(n, min(n, max_samples), replace=False))
    rows_t = np.sort(rng.choice(m, min(m, max_samples), replace=False))
    rows = []
    for name in source:
        x, y = np.asarray(source[name])[rows_s], np.asarray(target[name])[rows_t]
        result = mmd_test(x, y, n_permutations=n_permutations, seed=seed)
        rows.append({"name": name, "mmd2": result.statistic, "p_value": result.p_value, **_separation(x, y, seed),
                     "n_source": len(rows_s), "n_target": len(rows_t)})
    adjusted = _benjamini_hochberg(np.array([row["p_value"] for row in rows]))
    for row, q in zip(rows, adjusted):
        row.update(p_adjusted=float(q), shifted=bool(q < ALPHA))
    return rows


def _separation(x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """The pooled analysis's proxy A-distance, C2ST and Fréchet distance on one layer's subsample."""
    row = {"frechet": frechet_distance(x, y).value}
    if min(len(x), len(y)) < PAD_FOLDS:
        return {"proxy_a_distance": None, "c2st_accuracy": None, "c2st_p_value": None, **row}
    c2st = classifier_two_sample_test(x, y, seed=seed)
    return {"proxy_a_distance": proxy_a_distance(x, y, seed=seed, n_splits=PAD_FOLDS).value, "c2st_accuracy": c2st.accuracy,
            "c2st_p_value": c2st.p_value, **row}
