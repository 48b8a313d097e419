"""Box overlap with pycocotools' exact arithmetic, in numpy (the evaluator needs no torch).

Boxes are COCO's ``[x, y, width, height]`` in pixels. pycocotools' C code (``maskApi.c``,
``bbIou``) computes ``w = min(right) - max(left)`` (no +1), returns 0 where ``w <= 0`` or
``h <= 0``, and divides by ``da + ga - i`` or, for a crowd region, by the detection's own area
``da`` (a detection inside a crowd counts as covered by it). The same operations in the same order
here give bit-identical IoUs, so a detection that sits exactly on a threshold matches as it does there.
"""

from __future__ import annotations

import numpy as np


def box_iou(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of boxes ``dets`` (..., D, 4) against ``gts`` (..., G, 4), shape (..., D, G).

    ``crowd`` (..., G) marks crowd regions, scored by intersection over the detection's area.
    Leading axes broadcast, so padded batches of (image, class) groups work in one call.
    """
    dets = np.asarray(dets, dtype=np.float64)
    gts = np.asarray(gts, dtype=np.float64)
    d = dets[..., :, None, :]
    g = gts[..., None, :, :]
    w = np.minimum(d[..., 0] + d[..., 2], g[..., 0] + g[..., 2]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 1] + d[..., 3], g[..., 1] + g[..., 3]) - np.maximum(d[..., 1], g[..., 1])
    overlap = (w > 0) & (h > 0)
    inter = np.where(overlap, w * h, 0.0)
    det_area = d[..., 2] * d[..., 3]
    union = np.where(np.asarray(crowd, dtype=bool)[..., None, :], det_area, det_area + g[..., 2] * g[..., 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)
