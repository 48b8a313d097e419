"""Detection examples as a detector takes them: a float image in [0, 1] (the detector normalises and
resizes it itself) and a target dict with 1-based labels (0 is the detector's background).

Training targets leave out crowd / ignored regions (they are neither objects to find nor background
to suppress); evaluation targets keep them so the evaluator can ignore detections that hit them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .data import BoxAugment, DetectionData


class DetectionSet(Dataset):
    """The images of ``data`` at ``indices``; a ``training`` set drops ignored regions and, with ``augment``,
    transforms each image by draws from (seed, epoch, image)."""

    def __init__(self, data: DetectionData, indices: np.ndarray, training: bool = False, augment: BoxAugment | None = None):
        self.data, self.indices, self.training, self.augment = data, np.asarray(indices, dtype=np.int64), training, augment
        self.seed, self.epoch = 0, 0

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Which augmentation draws come next: the trainer calls this before every epoch of a seed."""
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        index = int(self.indices[i])
        item = self.data.images[index]
        image = torch.from_numpy(np.array(item.load())).permute(2, 0, 1).float().div_(255)  # a copy: scenes share their pixels
        boxes, labels, crowd = (torch.as_tensor(a) for a in (item.boxes, item.labels, item.iscrowd))
        if self.training:
            boxes, labels, crowd = boxes[~crowd], labels[~crowd], crowd[~crowd]
        if self.augment is not None:
            image, boxes, labels, crowd = self.augment(image, boxes, labels, crowd, seed=self.seed, epoch=self.epoch, index=index)
        target = {"boxes": boxes.float().reshape(-1, 4), "labels": labels.long() + 1, "iscrowd": crowd.bool(),
                  "image_id": int(item.image_id), "size": tuple(image.shape[-2:])}
        return image, target
