"""Images stored as arrays in ``.npz``: ``x`` (images), ``y`` (labels), optional ``split`` and ``classes``.

The readers of ``y``, ``classes`` and ``split`` are shared with ``.npz`` tables (tables.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

SPLIT_CODES = {0: "train", 1: "val", 2: "test"}


def _as_nchw(x: np.ndarray, path: Path) -> torch.Tensor:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3):
        x = np.moveaxis(x, -1, 1)
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise DataError(f"{path}: 'x' must hold images shaped (N,H,W), (N,H,W,C) or (N,C,H,W), got {x.shape}")
    x = x[:, :3].astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: 'x' contains NaN or infinite values")
    scale = 255.0 if x.max() > 1.0 else 1.0
    return torch.from_numpy(x / scale).clamp(0, 1)


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


def load_npz_images(path: str | Path) -> tuple[list[str], torch.Tensor, np.ndarray, np.ndarray | None]:
    """Return (classes, images (N,C,H,W) in [0,1], labels, split-or-None)."""
    path = Path(path)
    arrays = read_arrays(path)
    classes, labels, split = labels_and_split(arrays, path)
    if arrays["x"].ndim == 2:
        raise DataError(f"{path}: 'x' is 2-D (a table); image models need image arrays")
    return classes, _as_nchw(arrays["x"], path), labels, split
