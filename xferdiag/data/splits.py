"""Seeded, stratified splits and K-shot subsampling (every class keeps its share)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Split indices into train/val/test per class, so that rare classes appear in every split."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        if len(idx) - n_test - n_val < 1 or (test_fraction > 0 and n_test < 1):
            raise DataError(
                f"class {cls} has only {len(idx)} examples: too few to split into train/val/test; "
                "add examples or give ready-made train/val/test folders"
            )
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def take_shots(indices: np.ndarray, labels: np.ndarray, shots: int | str, seed: int) -> np.ndarray:
    """Keep ``shots`` labelled examples per class from ``indices`` ('all' keeps everything)."""
    if shots == "all":
        return indices
    rng = np.random.default_rng(seed)
    kept = []
    for cls in np.unique(labels[indices]):
        idx = indices[labels[indices] == cls]
        if len(idx) < shots:
            raise DataError(f"shots {shots}: class {cls} has only {len(idx)} training examples; lower it")
        kept.append(rng.choice(idx, size=shots, replace=False))
    return np.sort(np.concatenate(kept))
