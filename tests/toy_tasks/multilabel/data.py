"""The toy task's data: rows of features with a set of 0 or more labels each, in a ``*.labelsets.json`` file
(``{"classes": [...], "features": [[...], ...], "labels": [[...], ...]}``) that only this task claims."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xferdiag.errors import DataError

SUFFIX = ".labelsets.json"


class LabelSets(Dataset):
    """Rows of ``features`` with their label sets (int64 tensors of 0 or more classes)."""

    def __init__(self, features: torch.Tensor, label_sets: list[torch.Tensor]):
        self.features, self.label_sets = features, label_sets

    def __len__(self) -> int:
        return len(self.label_sets)

    def __getitem__(self, i):
        return self.features[i], self.label_sets[i]

    def subset(self, indices) -> LabelSets:
        return LabelSets(self.features[indices], [self.label_sets[int(i)] for i in indices])


def label_sets(n: int, classes: int, seed: int, features: int = 8) -> LabelSets:
    """Class k is present where feature k is above 0.3: 0 to ``classes`` labels per row, learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    return LabelSets(x, [torch.nonzero(row[:classes] > 0.3).flatten() for row in x])


def write_label_sets(path: Path, n: int, classes: int, seed: int) -> Path:
    """A ``*.labelsets.json`` file of :func:`label_sets` (what a test hands to ``--data``)."""
    rows = label_sets(n, classes, seed)
    path.write_text(json.dumps({"classes": [f"tag{k}" for k in range(classes)], "features": rows.features.tolist(),
                                "labels": [t.tolist() for t in rows.label_sets]}))
    return path


def claims(data: str) -> bool:
    return data.endswith(SUFFIX)


def load(data: str) -> tuple[list[str], LabelSets]:
    """The classes and rows of a ``*.labelsets.json`` file; a broken one ends in one line."""
    try:
        doc = json.loads(Path(data).read_text())
        classes = [str(c) for c in doc["classes"]]
        features = torch.tensor(doc["features"], dtype=torch.float32)
        labels = [torch.tensor(row, dtype=torch.int64) for row in doc["labels"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{data}: not a label-sets file ({exc})") from None
    if features.ndim != 2 or len(labels) != len(features) or any(((t < 0) | (t >= len(classes))).any() for t in labels):
        raise DataError(f"{data}: needs one row of features and one list of labels in 0..{len(classes) - 1} per example")
    return classes, LabelSets(features, labels)
