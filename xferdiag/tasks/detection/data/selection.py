"""Seeded splits by image and K-shot selection for detection data.

Images are the unit: the boxes of one image are correlated and must stay in one split. A split is
stratified by each image's rarest class (negatives form their own stratum), so rare classes reach every
split. K shots keep K annotated images per class, greedily: rarest class first, images in a seeded order (those
that would take a class already served past K last), an image counting for every class it holds (so a
class may get more than K where its images are shared, never fewer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...._validate import check_scalar
from ....errors import DataError
from .core import DetectionData


def _strata(data: DetectionData, indices: np.ndarray) -> np.ndarray:
    """Each image's rarest annotated class (by images holding it), or -1 for an image without boxes."""
    present = np.array([data.annotated(int(k)) for k in indices]).reshape(len(indices), len(data.classes))
    frequency = present.sum(axis=0)
    rarity = np.where(present, frequency[None, :], np.iinfo(np.int64).max)
    return np.where(present.any(axis=1), rarity.argmin(axis=1), -1)


def split_images(data: DetectionData, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Train/val/test image indices: the format's own splits where it has them (a val or test split it lacks
    is carved out of its train split, at its fraction of the whole), else a seeded split stratified by
    rarest class."""
    val_fraction = check_scalar(val_fraction, "val_fraction", float, 0.0, 1.0, inclusive=(True, False))
    test_fraction = check_scalar(test_fraction, "test_fraction", float, 0.0, 1.0, inclusive=(True, False))
    if data.splits is None:
        splits = _stratified(data, np.arange(len(data)), val_fraction, test_fraction, seed)
    else:
        splits = {name: np.asarray(idx, dtype=np.int64) for name, idx in data.splits.items()}
        fractions = {"val": val_fraction, "test": test_fraction}
        missing = [name for name in fractions if len(splits[name]) == 0]
        if missing:  # as fractions of the whole: the train split is what the format's own val/test left
            share = 1.0 - sum(f for name, f in fractions.items() if name not in missing)
            inner = _stratified(data, splits["train"], *(fractions[n] / share if n in missing else 0.0 for n in fractions), seed)
            splits = {"train": inner["train"], **{n: inner[n] if n in missing else splits[n] for n in fractions}}
    for name in ("train", "val") + (("test",) if test_fraction > 0 else ()):
        if len(splits[name]) == 0:
            raise DataError(f"{data.spec}: the {name} split is empty ({len(data)} images); add images or change the fractions")
    return splits


def _stratified(data: DetectionData, indices: np.ndarray, val_fraction: float, test_fraction: float,
                seed: int) -> dict[str, np.ndarray]:
    """Systematic stratified sampling: within each stratum the images are shuffled and spread evenly over
    [0, 1); sorted by that position, the first go to test, the next to val, the rest to train."""
    rng = np.random.default_rng(seed)
    strata = _strata(data, indices)
    position = np.empty(len(indices))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        position[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    order = indices[np.argsort(position, kind="stable")]
    n_test = int(round(len(indices) * test_fraction))
    n_val = int(round(len(indices) * val_fraction))
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]), "train": np.sort(order[n_test + n_val:])}


@dataclass(frozen=True, eq=False)
class ShotSelection:
    """The training images kept by ``--shots K``: per class, how many kept images hold it; how many
    images without boxes (negatives) were kept beside them, at the training split's own rate."""

    indices: np.ndarray
    per_class: dict[str, int]
    negatives: int
    shots: int | str

    def describe(self) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in self.per_class.items())
        return (f"{len(self.indices)} training images for {self.shots} shots per class (images per class: {counts}), "
                f"{self.negatives} of them without boxes (negatives)")


def take_shots(data: DetectionData, train: np.ndarray, shots: int | str, seed: int) -> ShotSelection:
    """Keep ``shots`` annotated images per class from ``train`` ('all' keeps every image)."""
    train = np.asarray(train, dtype=np.int64)
    present = np.array([data.annotated(int(k)) for k in train]).reshape(len(train), len(data.classes))
    negative = ~present.any(axis=1)
    if shots == "all":
        return ShotSelection(np.sort(train), _per_class(data, present), int(negative.sum()), shots)
    shots = check_scalar(shots, "shots", int, 1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    chosen = np.zeros(len(train), dtype=bool)
    for c in np.argsort(present.sum(axis=0), kind="stable"):
        have = int(present[chosen, c].sum())
        if not present[:, c].any():  # a class the training split never shows has no shots to give
            continue
        if present[:, c].sum() < shots:
            raise DataError(f"shots {shots}: class '{data.classes[c]}' is in only {int(present[:, c].sum())} "
                            "training images; lower it")
        full = present[chosen].sum(axis=0) >= shots
        spills = (present[order] & full[None, :]).any(axis=1)  # would push a class that has its K past it
        for k in order[np.argsort(spills, kind="stable")]:
            if have >= shots:
                break
            if present[k, c] and not chosen[k]:
                chosen[k] = True
                have += 1
    n_neg = int(round(chosen.sum() * negative.sum() / max(int((~negative).sum()), 1)))
    negatives = rng.permutation(np.flatnonzero(negative))[:n_neg]
    chosen[negatives] = True
    return ShotSelection(np.sort(train[chosen]), _per_class(data, present[chosen]), int(len(negatives)), shots)


def _per_class(data: DetectionData, present: np.ndarray) -> dict[str, int]:
    return {name: int(n) for name, n in zip(data.classes, present.sum(axis=0))}
