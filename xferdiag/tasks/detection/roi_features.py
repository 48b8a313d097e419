"""Features of boxes: the backbone body's stage maps, RoI-aligned inside each box and averaged.

Instance-level shift (the objects themselves, apart from their surroundings) and detection transferability
(how well the pretrained features separate the target's classes inside their boxes) both read the same thing: what
the classification body sees inside a ground-truth box, as the detector sees the image (its own resize and
normalisation). The body's maps come before the pyramid and the detection layers, whose weights a pretrained
backbone does not bring (they start random in both arms), so the features say what the pretraining gives.

Background boxes (regions that hold no object) are drawn per image with the sizes of that image's own boxes and at
most :data:`BACKGROUND_MAX_IOU` overlap with any of them: a background box the size of an object, so that the
instance-level comparison of background and objects does not mix in a difference of scale.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou, roi_align

from ..._validate import check_scalar
from .backbones import PyramidBackbone
from .data import DetectionData
from .models import DetectionModel

BACKGROUND_MAX_IOU = 0.1
"""A background box overlaps no object box by more than this (TIDE's background threshold)."""
BACKGROUND = -1
"""The label of a background box (the data's classes count from 0)."""
ROI_SIZE = 4
"""RoI-align grid per box side, averaged: enough samples to cover a box a few feature cells wide."""


@dataclass(frozen=True)
class BoxFeatures:
    """Per box: ``features`` (n, channels), ``labels`` (n,; the data's class indices, :data:`BACKGROUND` for background boxes),
    ``image`` (n,; the position in the ``indices`` asked for) and ``boxes`` (n, 4; x1 y1 x2 y2 in the image's pixels)."""

    features: np.ndarray
    labels: np.ndarray
    image: np.ndarray
    boxes: np.ndarray
    stage: str
    stride: int

    def of(self, mask: np.ndarray) -> BoxFeatures:
        return BoxFeatures(self.features[mask], self.labels[mask], self.image[mask], self.boxes[mask], self.stage, self.stride)


def stage_maps(model: DetectionModel, batch: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
    """The body's stage outputs for a batch the detector's transform made: a pyramid on ``--backbone`` names its
    stages, a torchvision detector's body returns them; any other body gives its one output."""
    pyramid = model.detector.get_submodule("backbone")
    if isinstance(pyramid, PyramidBackbone):
        return pyramid.stage_features(batch)
    out = model.backbone(batch)
    return OrderedDict(out) if isinstance(out, dict) else OrderedDict([("out", out)])


def background_boxes(boxes: np.ndarray, width: int, height: int, count: int, rng: np.random.Generator,
                     tries: int = 50) -> np.ndarray:
    """Up to ``count`` boxes inside the image, each the size of one of ``boxes`` (drawn at random), overlapping none
    of them by more than :data:`BACKGROUND_MAX_IOU`; fewer where the image has no room left."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, 4))
    found: list[np.ndarray] = []
    for _ in range(count):
        for _ in range(tries):
            pick = boxes[rng.integers(len(boxes))]
            w, h = np.minimum(pick[2:] - pick[:2], (width, height))
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            candidate = np.array([x, y, x + w, y + h])
            if float(box_iou(torch.from_numpy(candidate[None]), torch.from_numpy(boxes)).max()) <= BACKGROUND_MAX_IOU:
                found.append(candidate)
                break
    return np.asarray(found).reshape(-1, 4)


def inner_part(boxes: np.ndarray, fraction: float) -> np.ndarray:
    """Each box shrunk about its centre to ``fraction`` of its width and height."""
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2 * fraction
    return np.concatenate([centre - half, centre + half], axis=1)


def _image_boxes(data: DetectionData, index: int, background: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An image's object boxes (crowd regions left out) and ``background`` boxes per object, with their labels."""
    image = data.images[index]
    keep = ~np.asarray(image.iscrowd, dtype=bool)
    boxes = np.asarray(image.boxes, dtype=np.float64).reshape(-1, 4)[keep]
    labels = np.asarray(image.labels, dtype=np.int64)[keep]
    if background:
        extra = background_boxes(boxes, image.width, image.height, background * len(boxes), rng)
        boxes, labels = np.concatenate([boxes, extra]), np.concatenate([labels, np.full(len(extra), BACKGROUND, np.int64)])
    return boxes, labels


@torch.no_grad()
def box_features(model: DetectionModel, data: DetectionData, indices, *, stage: int = -1, background: int = 0,
                 seed: int = 0, batch_size: int = 8, device: torch.device | str = "cpu", inner: float = 1.0) -> BoxFeatures:
    """RoI-aligned features of the boxes of the images at ``indices`` from the body's ``stage`` (an index into its
    stages, coarsest last), with ``background`` background boxes per object box (label :data:`BACKGROUND`) drawn with ``seed``.
    ``inner`` < 1 pools only each box's central part (that fraction of its sides; ``boxes`` are then those parts): a
    box's rim and the cells beside it see its surroundings, its centre mostly itself."""
    inner = check_scalar(inner, "inner", float, 0.0, 1.0, inclusive=(False, True))
    model = model.to(device).eval()
    rng = np.random.default_rng(seed)
    rows, labels, owners, kept = [], [], [], []
    names, stride = None, 0
    indices = [int(k) for k in indices]
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        images = [torch.from_numpy(np.array(data.images[k].load())).permute(2, 0, 1).float().div_(255).to(device) for k in chunk]
        per_image = [(inner_part(b, inner), labels_) for b, labels_ in (_image_boxes(data, k, background, rng) for k in chunk)]
        targets = [{"boxes": torch.as_tensor(b, dtype=torch.float32, device=device)} for b, _ in per_image]
        batch, resized = model.detector.transform(images, targets)
        maps = stage_maps(model, batch.tensors)
        names = list(maps)
        chosen = maps[names[stage]]
        stride = round(batch.tensors.shape[-1] / chosen.shape[-1])
        pooled = roi_align(chosen.float(), [t["boxes"] for t in resized], ROI_SIZE, spatial_scale=1.0 / stride,
                           sampling_ratio=2, aligned=True)
        rows.append(pooled.mean((2, 3)).cpu())
        for position, (boxes, box_labels) in zip(range(start, start + len(chunk)), per_image):
            labels.append(box_labels)
            owners.append(np.full(len(box_labels), position))
            kept.append(boxes)
    stage_name = names[stage] if names else ""
    return BoxFeatures(torch.cat(rows).numpy().astype(np.float64) if rows else np.zeros((0, 0)),
                       np.concatenate(labels) if labels else np.zeros(0, np.int64),
                       np.concatenate(owners) if owners else np.zeros(0, np.int64),
                       np.concatenate(kept) if kept else np.zeros((0, 4)), stage_name, stride)
