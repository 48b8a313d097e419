"""Shift between a detection source and target: in the boxes (size, aspect ratio, position, count per image) and
at the image level (the pretrained backbone body's last stage, globally average-pooled, through the shared shift
analyses of :mod:`xferdiag.analyzers.shift`). Instance-level shift (RoI features of the boxes) is not built yet.

Box statistics are distributions compared by a two-sample KS test each, Benjamini-Hochberg across the statistics:
a shift in box size says the detector sees objects at other scales, which the anchors and the pyramid feel first.
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


def image_shift(x: np.ndarray, y: np.ndarray, seed: int = 0, n_permutations: int = 1000) -> dict:
    """The shared shift analyses of pooled source features ``x`` and target features ``y`` (shift.json's ``image``)."""
    return {
        "layer": "backbone body, last stage, global average pool", "model": "pretrained", "n_source": len(x), "n_target": len(y),
        **shift.two_sample_shift(x, y, seed=seed, n_permutations=n_permutations),
    }
