"""Shift between a detection source and target: in the boxes (size, aspect ratio, position, count per image), at
the image level (the pretrained backbone body's last stage, globally average-pooled) and at the instance level (the
body's RoI-aligned features inside the ground-truth boxes, overall, per class and in object-sized background boxes),
each level through the same shared analyses of :mod:`xferdiag.analyzers.shift` (DA Faster R-CNN's two levels,
Chen et al. 2018).

Box statistics are distributions compared by a two-sample KS test each, Benjamini-Hochberg across the statistics:
a shift in box size says the detector sees objects at other scales, which the anchors and the pyramid feel first.

The instance level reads an early stage (:data:`INSTANCE_STAGE`) inside each box's central part (:data:`INNER`):
at CI scale the last stage is a few cells wide and each cell sees the whole image, so RoI features of whole boxes on
the last stage moved with the backgrounds as much as the pooled image did (domain classifier 0.99-1.0 at both
levels when only the backgrounds changed; docs/detection.md has the numbers of each try). Boxes of one image are
alike, so the domain classifiers' folds split by image, never by box.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from ...analyzers import shift
from ...analyzers.shift import _benjamini_hochberg
from ...errors import DataError
from ...negative import ALPHA
from .data import DetectionData
from .models import DetectionModel
from .roi_features import BACKGROUND, BoxFeatures, box_features

INSTANCE_STAGE = 0
"""The body stage the instance level reads: the first of the pyramid's (stride 8 on the usual bodies)."""
INNER = 0.3
"""The central fraction of each box side the instance level pools: the cells there see the object more than its
surroundings (a stride-8 MobileNetV2 cell's receptive field is about 60 px, a CI-scale object 23-58 px)."""
MIN_BOXES = 10
"""Boxes a side (over at least :data:`MIN_IMAGES` images) a class or the background boxes need to be compared."""
MIN_IMAGES = 5
"""Images a side the domain classifiers need: the proxy A-distance's five folds each hold one of each side."""

BOX_STATISTICS = ("size", "aspect_ratio", "centre_x", "centre_y", "boxes_per_image")
"""Per box: sqrt of its share of the image area, width / height, its relative centre; per image: its boxes."""


def box_table(data: DetectionData, indices=None) -> dict[str, np.ndarray]:
    """Each of :data:`BOX_STATISTICS` over the images at ``indices`` (all by default); crowd / ignored regions
    are neither objects nor counted."""
    images = [data.images[int(k)] for k in (range(len(data)) if indices is None else indices)]
    rows, counts = [], []
    for img in images:
        boxes = np.asarray(img.boxes, dtype=np.float64).reshape(-1, 4)[~np.asarray(img.iscrowd, dtype=bool)]
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (w > 0) & (h > 0)
        boxes, w, h = boxes[keep], w[keep], h[keep]
        rows.append(np.stack([np.sqrt(w * h / (img.width * img.height)), w / h,
                              (boxes[:, 0] + boxes[:, 2]) / 2 / img.width, (boxes[:, 1] + boxes[:, 3]) / 2 / img.height], axis=1))
        counts.append(len(boxes))
    table = np.concatenate(rows) if rows else np.zeros((0, 4))
    return {**{name: table[:, j] for j, name in enumerate(BOX_STATISTICS[:4])}, "boxes_per_image": np.asarray(counts, dtype=np.float64)}


def box_statistics(source: dict[str, np.ndarray], target: dict[str, np.ndarray], alpha: float = ALPHA) -> dict:
    """Per statistic of two :func:`box_table` results: sizes, medians, the KS statistic and p-value, the
    Benjamini-Hochberg adjusted p across the statistics and whether it is below ``alpha`` (shift.json's
    ``boxes.statistics``). A domain without boxes ends in one line."""
    for name, table in (("source", source), ("target", target)):
        if not len(table["size"]):
            raise DataError(f"the {name} images hold no boxes; comparing box statistics needs boxes on both sides")
    tests = [stats.ks_2samp(source[name], target[name]) for name in BOX_STATISTICS]
    p = np.array([float(t.pvalue) for t in tests])
    q = _benjamini_hochberg(p)
    return {"alpha": alpha, "statistics": [
        {"name": name, "n_source": len(source[name]), "n_target": len(target[name]),
         "median_source": float(np.median(source[name])), "median_target": float(np.median(target[name])),
         "ks_statistic": float(test.statistic), "p_value": float(p[j]), "p_adjusted": float(q[j]), "shifted": bool(q[j] <= alpha)}
        for j, (name, test) in enumerate(zip(BOX_STATISTICS, tests))]}


@torch.no_grad()
def pooled_features(model: DetectionModel, data: DetectionData, indices, batch_size: int = 8,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """(n, channels): the backbone body's last stage, globally average-pooled, per image at ``indices``, each image
    first resized and normalised by the detector's own transform (as the detector sees it)."""
    model = model.to(device).eval()
    rows = []
    indices = [int(k) for k in indices]
    for start in range(0, len(indices), batch_size):
        chunk = [torch.from_numpy(np.array(data.images[k].load())).permute(2, 0, 1).float().div_(255).to(device)
                 for k in indices[start:start + batch_size]]
        batch, _ = model.detector.transform(chunk)
        out = model.backbone(batch.tensors)
        last = list(out.values())[-1] if isinstance(out, dict) else out
        rows.append((last.flatten(2).mean(2) if last.ndim > 2 else last).float().cpu())  # a body may pool itself
    return torch.cat(rows).numpy().astype(np.float64)


def image_shift(x: np.ndarray, y: np.ndarray, seed: int = 0, n_permutations: int = 1000, paired: bool = False) -> dict:
    """The shared shift analyses of pooled source features ``x`` and target features ``y`` (shift.json's top level).
    ``paired``: target image k shows source image k's objects, so the domain classifiers keep the two in one fold."""
    groups = (np.arange(len(x)), np.arange(len(y))) if paired else None
    return {
        "layer": "backbone body, last stage, global average pool", "model": "pretrained", "n_source": len(x), "n_target": len(y),
        **shift.two_sample_shift(x, y, seed=seed, n_permutations=n_permutations, groups=groups),
    }


def instance_features(model: DetectionModel, data: DetectionData, indices, seed: int = 0,
                      device: torch.device | str = "cpu") -> BoxFeatures:
    """The boxes' features the instance level compares: :data:`INSTANCE_STAGE` inside the central :data:`INNER` of
    each box, and as many object-sized background boxes (drawn with ``seed``)."""
    return box_features(model, data, indices, stage=INSTANCE_STAGE, background=1, seed=seed, device=device, inner=INNER)


def _comparable(x: BoxFeatures, y: BoxFeatures) -> bool:
    return all(len(side.labels) >= MIN_BOXES and len(np.unique(side.image)) >= MIN_IMAGES for side in (x, y))


def _level(x: BoxFeatures, y: BoxFeatures, seed: int, n_permutations: int, paired: bool) -> dict:
    """The shared analyses of two sets of boxes, the domain classifiers' folds split by image (with ``paired``, target
    image k goes with source image k; else every image is its own group)."""
    offset = 0 if paired else int(x.image.max()) + 1
    return {"n_source": len(x.labels), "n_target": len(y.labels),
            "n_source_images": len(np.unique(x.image)), "n_target_images": len(np.unique(y.image)),
            **shift.two_sample_shift(x.features, y.features, seed=seed, n_permutations=n_permutations,
                                     groups=(x.image, y.image + offset))}


def instance_shift(x: BoxFeatures, y: BoxFeatures, classes: tuple[str, ...], seed: int = 0, n_permutations: int = 1000,
                   paired: bool = False) -> dict:
    """shift.json's ``instance``: the object boxes of source ``x`` against target ``y`` (all classes together), each
    class both sides hold :data:`MIN_BOXES` of, and the background boxes; ``skipped`` says what was too small."""
    objects = (x.of(x.labels != BACKGROUND), y.of(y.labels != BACKGROUND))
    result = {"layer": f"backbone body stage {x.stage} (stride {x.stride}), RoI-aligned over the central {INNER:g} of each box side",
              "stage": x.stage, "stride": x.stride, "inner": INNER, "model": "pretrained", "min_boxes": MIN_BOXES}
    if not _comparable(*objects):
        return {**result, "skipped": f"{len(objects[0].labels)} and {len(objects[1].labels)} object boxes; the instance "
                                     f"level needs {MIN_BOXES} a side over at least {MIN_IMAGES} images"}
    result["objects"] = _level(*objects, seed, n_permutations, paired)
    result["per_class"] = [{"class": name, **_level(*pair, seed, n_permutations, paired)} for name, pair in
                           ((name, (x.of(x.labels == c), y.of(y.labels == c))) for c, name in enumerate(classes))
                           if len(classes) > 1 and _comparable(*pair)]
    background = (x.of(x.labels == BACKGROUND), y.of(y.labels == BACKGROUND))
    if _comparable(*background):
        result["background"] = _level(*background, seed, n_permutations, paired)
    return result
