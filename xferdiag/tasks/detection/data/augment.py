"""Box-aware augmentation (torchvision ``transforms.v2`` on ``tv_tensors.BoundingBoxes``), identical across arms.

Each call draws its randomness from (seed, epoch, image index) alone, inside a forked torch RNG: the
transferred and the scratch arm see the same flips and scales for the same image in the same epoch,
whatever order or worker processes the images, and the global RNG that initialises weights and shuffles
batches is left as it was. Boxes that shrink below a pixel after the transform are dropped with their
labels and crowd flags.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ...._validate import check_scalar


def _labels_and_crowd(inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return inputs["labels"], inputs["iscrowd"]


def draw_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one image in one epoch, independent for every (seed, epoch, index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class BoxAugment:
    """Horizontal flip (probability ``flip``) and a small scale jitter about the image centre (``scale``)."""

    def __init__(self, flip: float = 0.5, scale: tuple[float, float] = (0.9, 1.1)):
        flip = check_scalar(flip, "flip", float, 0.0, 1.0, inclusive=(True, True))
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale {scale!r}: two factors, 0 < low <= high")
        self.transform = v2.Compose([
            v2.RandomHorizontalFlip(flip),
            v2.RandomAffine(degrees=0.0, scale=tuple(scale)),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(labels_getter=_labels_and_crowd),
        ])

    def __call__(self, image: torch.Tensor, boxes, labels, iscrowd, *, seed: int, epoch: int,
                 index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``image`` (C, H, W); ``boxes`` (k, 4) x1 y1 x2 y2 pixels; returns the four, transformed."""
        height, width = image.shape[-2:]
        sample = {
            "image": tv_tensors.Image(image),
            "boxes": tv_tensors.BoundingBoxes(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY",
                                              canvas_size=(int(height), int(width))),
            "labels": torch.as_tensor(labels, dtype=torch.int64),
            "iscrowd": torch.as_tensor(iscrowd, dtype=torch.bool),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw_seed(seed, epoch, index))
            out = self.transform(sample)
        return out["image"].as_subclass(torch.Tensor), out["boxes"].as_subclass(torch.Tensor), out["labels"], out["iscrowd"]
