"""The dataset card of detection data: what a reader of the report needs to judge the numbers.

Box size is sqrt(box area) / sqrt(image area), the scale COCO's small/medium/large buckets measure
(in pixels there: 32 and 96), so that images of different sizes compare; aspect ratio is width / height.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .core import DetectionData

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class DatasetCard:
    """Counts and distributions of one set of images (crowd/ignored regions counted apart, not as boxes)."""

    images: int
    boxes: int
    crowd_boxes: int
    boxes_per_image_mean: float
    boxes_per_image_max: int
    images_without_boxes: int
    class_counts: dict[str, int]
    relative_size_quantiles: dict[str, float]
    aspect_ratio_quantiles: dict[str, float]
    clipped_boxes: int

    def to_dict(self) -> dict:
        """Plain JSON numbers (``data.json`` carries the card)."""
        return asdict(self)


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    return {f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))}


def dataset_card(data: DetectionData, indices: np.ndarray | None = None) -> DatasetCard:
    """The card of the images at ``indices`` (all by default). ``clipped_boxes`` is the whole dataset's
    count: the readers count clipping per dataset, not per image."""
    indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
    per_image, sizes, aspects = [], [], []
    counts = np.zeros(len(data.classes), dtype=np.int64)
    crowd = 0
    for k in indices:
        img = data.images[int(k)]
        keep = ~img.iscrowd
        boxes = img.boxes[keep].astype(np.float64)
        per_image.append(len(boxes))
        crowd += int(img.iscrowd.sum())
        counts += np.bincount(img.labels[keep], minlength=len(data.classes))
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        sizes.append(np.sqrt(w * h) / np.sqrt(float(img.width) * img.height))
        aspects.append(w / h)
    per_image = np.asarray(per_image, dtype=np.int64)
    return DatasetCard(
        images=len(indices), boxes=int(per_image.sum()), crowd_boxes=crowd,
        boxes_per_image_mean=float(per_image.mean()) if len(per_image) else 0.0,
        boxes_per_image_max=int(per_image.max()) if len(per_image) else 0,
        images_without_boxes=int((per_image == 0).sum()),
        class_counts={name: int(n) for name, n in zip(data.classes, counts)},
        relative_size_quantiles=_quantiles(np.concatenate(sizes) if sizes else np.zeros(0)),
        aspect_ratio_quantiles=_quantiles(np.concatenate(aspects) if aspects else np.zeros(0)),
        clipped_boxes=int(data.clipped))
