"""One in-memory form for every detection dataset, whatever format it came from, and its COCO ground truth.

Boxes are float32 ``(k, 4)`` x1 y1 x2 y2 in pixels, labels int64 ``(k,)`` indexing ``classes`` (no
background slot), ``iscrowd`` bool ``(k,)``: regions the evaluator ignores (COCO crowds, VOC ``difficult``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ....errors import DataError
from ....imagefiles import check_header

SPLITS = ("train", "val", "test")
# A box at least this share of whose area lies inside the image is clipped to it (and counted); less is an error.
MIN_INSIDE = 0.5
# Boxes whose every coordinate lies in [0, 1] on an image at least this many pixels a side were written normalised.
NORMALISED_MIN_SIDE = 32


@dataclass(frozen=True, eq=False)
class DetImage:
    """One image and its boxes. ``path`` is read lazily; ``pixels`` (uint8 H x W x 3) holds generated scenes."""

    image_id: int
    name: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray
    path: Path | None = None
    pixels: np.ndarray | None = None
    source: str = ""

    def load(self) -> np.ndarray:
        """The image as uint8 (H, W, 3) RGB."""
        if self.pixels is not None:
            return self.pixels
        try:
            with Image.open(self.path) as img:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{self.path}: unreadable image ({exc}); remove or replace the file") from None
        if arr.shape[:2] != (self.height, self.width):
            raise DataError(f"{self.path}: image is {arr.shape[1]}x{arr.shape[0]}, its annotations say {self.width}x{self.height}")
        return arr


@dataclass(frozen=True, eq=False)
class DetectionData:
    """A detection dataset: class names (index 0..C-1), images with boxes, and the format's own splits if any.

    ``clipped``: boxes a little over the image edge, clipped to it. ``notes``: what the reader decided
    that a report should say (difficult boxes ignored, images left out). ``provenance``: where generated
    data came from, in one line.
    """

    spec: str
    fmt: str
    classes: tuple[str, ...]
    images: tuple[DetImage, ...]
    splits: dict[str, np.ndarray] | None = None
    clipped: int = 0
    notes: tuple[str, ...] = ()
    provenance: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def annotated(self, k: int) -> np.ndarray:
        """Per class, whether image ``k`` has a box of it that is not a crowd/ignored region."""
        img = self.images[k]
        present = np.zeros(len(self.classes), dtype=bool)
        present[img.labels[~img.iscrowd]] = True
        return present


def to_coco(data: DetectionData, indices: np.ndarray | None = None) -> dict:
    """The COCO ground truth of the images at ``indices`` (all by default): bbox as [x, y, w, h] in
    pixels, category ids 1..C in the order of ``data.classes``, annotation ids 1.. in image order."""
    indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
    images, annotations = [], []
    for k in indices:
        img = data.images[int(k)]
        images.append({"id": int(img.image_id), "file_name": img.name, "width": int(img.width), "height": int(img.height)})
        for box, label, crowd in zip(img.boxes.astype(np.float64), img.labels, img.iscrowd):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": int(img.image_id), "category_id": int(label) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": int(crowd)})
    categories = [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(data.classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def checked_box(box, width: int, height: int, where: str, pixels_expected: bool = True) -> tuple[np.ndarray, bool]:
    """Validate one x1 y1 x2 y2 pixel box on a ``width`` x ``height`` image; return it clipped to the image
    and whether clipping moved it. ``where`` names the file and line or id in the error."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise DataError(f"{where}: box {box!r} is not four numbers") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise DataError(f"{where}: box ({x1}, {y1}, {x2}, {y2}) has a coordinate that is not a finite number")
    if x2 <= x1 or y2 <= y1:
        raise DataError(f"{where}: box has zero or negative area (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}); remove or fix it")
    if pixels_expected and min(width, height) >= NORMALISED_MIN_SIDE and max(abs(v) for v in (x1, y1, x2, y2)) <= 1.0:
        raise DataError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies within [0, 1] on a {width}x{height} image: "
                        "normalised coordinates where this format takes pixels; multiply by the image size")
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    inside = max(cx2 - cx1, 0.0) * max(cy2 - cy1, 0.0)
    if inside < MIN_INSIDE * (x2 - x1) * (y2 - y1):
        raise DataError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies mostly outside the {width}x{height} image "
                        f"({inside / ((x2 - x1) * (y2 - y1)):.0%} inside); fix its coordinates")
    clipped = (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
    return np.array([cx1, cy1, cx2, cy2], dtype=np.float32), clipped


def image_size(path: Path, where: str) -> tuple[int, int]:
    """(width, height) of an image file, checked readable without decoding its pixels."""
    if not path.is_file():
        raise DataError(f"{where}: image {path} is missing")
    return check_header(path)[1]


def check_size(path: Path, width: int, height: int, where: str) -> None:
    """The image on disk has the size its annotation states."""
    actual = image_size(path, where)
    if actual != (width, height):
        raise DataError(f"{where}: says the image is {width}x{height}, but {path} is {actual[0]}x{actual[1]}")


def box_arrays(boxes: list, labels: list, crowd: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lists of one image's boxes as the arrays :class:`DetImage` holds (shapes right when empty)."""
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64).reshape(-1),
            np.asarray(crowd, dtype=bool).reshape(-1))


def splits_from_names(names: list[str | None]) -> dict[str, np.ndarray] | None:
    """Per-image split names (None where the format has no splits) as index arrays."""
    if all(n is None for n in names):
        return None
    arr = np.array([n or "" for n in names])
    return {s: np.flatnonzero(arr == s) for s in SPLITS}
