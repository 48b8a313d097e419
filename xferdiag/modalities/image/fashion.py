"""Fashion-MNIST (Xiao et al. 2017) from Debian's ``dataset-fashion-mnist``: real photos of clothing,
read in place, offline.

``fashion-mnist`` is the 10,000-image test file (``fashion-mnist:train`` the 60,000 training
images). Each file is gzipped IDX: a 16-byte header (magic 2051, count, rows, columns) before the
images, 8 bytes (magic 2049, count) before the labels. Images are 28x28 gray in [0, 1].
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError

ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {"test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
         "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
INSTALL = "apt-get install dataset-fashion-mnist"


def _read_idx(path: Path, magic: int, header: int) -> tuple[np.ndarray, tuple[int, ...]]:
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"fashion-mnist: {path} not found; install the data with '{INSTALL}'") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"fashion-mnist: {path} is unreadable ({exc}); reinstall with '{INSTALL} --reinstall'") from None
    fields = struct.unpack(f">{header // 4}I", raw[:header])
    if fields[0] != magic or len(raw) - header != int(np.prod(fields[1:])):
        raise DataError(f"fashion-mnist: {path} is not an IDX file of the expected size; reinstall with '{INSTALL} --reinstall'")
    return np.frombuffer(raw, dtype=np.uint8, offset=header), fields[1:]


def load_fashion_mnist(part: str, root: Path | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """``(images (N, 1, 28, 28) float in [0, 1], labels (N,))`` of the ``test`` or ``train`` file (from :data:`ROOT`)."""
    root = ROOT if root is None else root
    if part not in FILES:
        raise DataError(f"fashion-mnist:{part}: choose fashion-mnist (the test file) or fashion-mnist:train")
    image_file, label_file = FILES[part]
    pixels, (n, rows, cols) = _read_idx(root / image_file, 2051, 16)
    labels, (n_labels,) = _read_idx(root / label_file, 2049, 8)
    if n != n_labels:
        raise DataError(f"fashion-mnist: {n} images but {n_labels} labels in {root}; reinstall with '{INSTALL} --reinstall'")
    images = torch.from_numpy(pixels.reshape(n, 1, rows, cols).astype(np.float32) / 255.0)
    return images, labels.astype(np.int64)
