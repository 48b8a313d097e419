"""Which test examples to explain (seeded, spread over the classes, misclassified ones included),
and how index.json lists them."""

from __future__ import annotations

import numpy as np

from .._validate import check_scalar
from ..errors import InputError
from ._common import as_indices


def pick_examples(labels, predictions_by_arm: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` test indices (sorted), spread over the classes, with misclassified examples included.

    Up to half the picks (at least one) go to examples that some arm gets wrong, the rest to the
    others; each pick goes to the class picked least so far (ties in seeded random order), with a
    seeded random example of it.
    """
    y = as_indices(labels, "labels", len(np.asarray(labels))).numpy()
    n = check_scalar(n, "n", int, 1)
    if not isinstance(predictions_by_arm, dict):
        raise InputError("predictions_by_arm: expected a dict {arm: predictions}")
    wrong = np.zeros(len(y), dtype=bool)
    for arm, pred in predictions_by_arm.items():
        wrong |= as_indices(pred, f"predictions_by_arm[{arm!r}]", len(y)).numpy() != y
    rng = np.random.default_rng(seed)
    n = min(n, len(y))
    counts = np.zeros(y.max() + 1 if len(y) else 0, dtype=int)
    picked = _balanced(np.flatnonzero(wrong), y, min(int(wrong.sum()), max(1, n // 2)), rng, counts)
    picked += _balanced(np.flatnonzero(~wrong), y, n - len(picked), rng, counts)
    if len(picked) < n:  # too few correct examples: fill up with more misclassified ones
        picked += _balanced(np.setdiff1d(np.flatnonzero(wrong), picked), y, n - len(picked), rng, counts)
    return np.sort(np.array(picked, dtype=np.int64))


def _balanced(pool: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator, counts: np.ndarray) -> list[int]:
    """Up to ``n`` items of ``pool``, each from the class with the fewest ``counts`` (updated)."""
    classes = rng.permutation(np.unique(y[pool]))
    queues = {c: list(rng.permutation(pool[y[pool] == c])) for c in classes}
    picked: list[int] = []
    while len(picked) < n and any(queues[c] for c in classes):
        c = min((c for c in classes if queues[c]), key=lambda c: counts[c])
        picked.append(int(queues[c].pop()))
        counts[c] += 1
    return picked


def examples(ids, labels, predictions: dict) -> list[dict]:
    """index.json's ``examples``: each explained test row with its label and every arm's prediction."""
    return [{"index": int(ids[i]), "label": int(labels[i]), "pred": {arm: int(p[i]) for arm, p in predictions.items()},
             "correct": {arm: bool(p[i] == labels[i]) for arm, p in predictions.items()}} for i in range(len(labels))]
