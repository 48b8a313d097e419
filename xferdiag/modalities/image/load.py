"""The image modality's loader: built-in digit domains, Fashion-MNIST, ``.npz`` images and folders of class
folders (asked last: a folder of ``.txt`` files is text, an ``.npz`` with a 2-D ``x`` a table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...data import Domain
from ...data.arrays import labels_and_split, read_arrays
from ...errors import DataError
from .data import ImageFiles, ImageTensors
from .digits import load_digits_domain
from .fashion import CLASSES as FASHION_CLASSES, load_fashion_mnist
from .folder import scan_folder


def load(spec: str) -> Domain:
    """``digits:<name>``, ``fashion-mnist[:train]`` (Debian's package), a ``.npz`` of images or a folder of class
    folders of images: whatever no other modality claimed."""
    if spec.startswith("digits:"):
        images, labels = load_digits_domain(spec.split(":", 1)[1])
        return Domain(spec, [str(i) for i in range(10)], labels, ImageTensors(images))
    if spec == "fashion-mnist" or spec.startswith("fashion-mnist:"):
        images, labels = load_fashion_mnist(spec.partition(":")[2] or "test")
        return Domain(spec, list(FASHION_CLASSES), labels, ImageTensors(images))
    path = Path(spec)
    if path.suffix.lower() == ".npz":
        classes, images, labels, split = load_npz_images(path)
        return Domain(spec, classes, labels, ImageTensors(images), split=split)
    classes, paths, labels, split, sizes = scan_folder(path)
    return Domain(spec, classes, labels, ImageFiles(paths, sizes), split=split)


def load_npz_images(path: str | Path) -> tuple[list[str], torch.Tensor, np.ndarray, np.ndarray | None]:
    """Return (classes, images (N,C,H,W) in [0,1], labels, split-or-None)."""
    path = Path(path)
    arrays = read_arrays(path)
    classes, labels, split = labels_and_split(arrays, path)
    if arrays["x"].ndim == 2:
        raise DataError(f"{path}: 'x' is 2-D (a table); image models need image arrays")
    return classes, _as_nchw(arrays["x"], path), labels, split


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
