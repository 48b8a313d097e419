"""Built-in domains made from scikit-learn's handwritten digits (shipped with scikit-learn, offline).

The 1,797 digits are split once into two disjoint writer pools; each pool is turned into a domain
by a visible, deterministic shift. Scenarios pair a source with a target:

* ``transfer-helps``: source ``digits:upright`` (pool A), target ``digits:rotated`` (pool B turned
  40 degrees with thickened strokes). Shapes learned on the source still apply, so a pretrained
  model wins when the target has few labels.
* ``transfer-hurts``: source ``digits:scrambled`` (pool A with one fixed random pixel permutation),
  target ``digits:plain`` (pool B unchanged). Features learned on scrambled pixels carry no
  spatial structure; a frozen backbone from that source is worse than learning from scratch, and
  the shift analysis shows why (the domains are perfectly separable).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ...errors import DataError

SIZE = 16
SCENARIOS = {
    "transfer-helps": ("digits:upright", "digits:rotated"),
    "transfer-hurts": ("digits:scrambled", "digits:plain"),
}


def _pools() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    labels = digits.target.astype(np.int64)
    pool = np.zeros(len(labels), dtype=np.int64)
    rng = np.random.default_rng(1234)
    for cls in range(10):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        pool[idx[len(idx) // 2 :]] = 1
    return images.clamp(0, 1), labels, pool


def _rotate_thicken(x: torch.Tensor) -> torch.Tensor:
    rotated = TF.rotate(x, 40.0, interpolation=TF.InterpolationMode.BILINEAR)
    return torch.maximum(rotated, 0.8 * F.max_pool2d(rotated, 3, stride=1, padding=1))


def _scramble(x: torch.Tensor) -> torch.Tensor:
    perm = torch.from_numpy(np.random.default_rng(99).permutation(SIZE * SIZE))
    flat = x.flatten(start_dim=2)[:, :, perm]
    return flat.view_as(x)


DOMAINS = {
    "upright": (0, lambda x: x),
    "scrambled": (0, _scramble),
    "rotated": (1, _rotate_thicken),
    "plain": (1, lambda x: x),
}


def load_digits_domain(name: str) -> tuple[torch.Tensor, np.ndarray]:
    """Images (N, 1, 16, 16) in [0, 1] and labels of the built-in domain ``name``."""
    if name not in DOMAINS:
        raise DataError(f"digits:{name}: unknown built-in domain; choose one of {', '.join('digits:' + d for d in DOMAINS)}")
    pool_id, shift = DOMAINS[name]
    images, labels, pool = _pools()
    keep = pool == pool_id
    return shift(images[keep]), labels[keep]
