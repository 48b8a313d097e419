"""Arrays stored in ``.npz``: ``x`` (images or a table), ``y`` (labels), optional ``split`` and ``classes``.

The readers of ``y``, ``classes`` and ``split``, shared by ``.npz`` images and tables (the image and table
modalities' loaders, :mod:`xferdiag.modalities.image.load` and :mod:`xferdiag.modalities.table.load`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

SPLIT_CODES = {0: "train", 1: "val", 2: "test"}


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file (no pickle), checking that ``x`` and ``y`` are there."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise DataError(f"{path}: unreadable .npz ({exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array '{key}' (expected x, y and optionally split, classes)")
    return arrays


def labels_and_split(arrays: dict[str, np.ndarray], path: Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(classes, labels, split-or-None) from ``y`` and the optional ``classes`` and ``split`` arrays."""
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y) or y.ndim != 1:
        raise DataError(f"{path}: 'y' must be 1-D with one label per example ({len(x)} examples, y shape {y.shape})")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: 'y' must hold integer class labels, got {y.dtype}")
    n_classes = int(y.max()) + 1 if len(y) else 0
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(n_classes)]
    if y.min(initial=0) < 0 or n_classes > len(classes):
        raise DataError(f"{path}: labels must be 0..{len(classes) - 1}")
    split = None
    if "split" in arrays:
        raw = arrays["split"]
        split = np.array([SPLIT_CODES.get(int(s), "?") if np.issubdtype(raw.dtype, np.integer) else str(s) for s in raw])
        if len(split) != len(y) or not set(split) <= set(SPLIT_CODES.values()) or not {"train", "test"} <= set(split):
            raise DataError(f"{path}: 'split' must give train/val/test (or 0/1/2) per example, with train and test present")
    return classes, y.astype(np.int64), split
