"""D-RISE (Petsiuk et al., CVPR 2021): which pixels a detector needs to find one box, from the detector's outputs alone.

Random low-resolution binary grids, upsampled bilinearly and shifted by a random fraction of a cell, mask the image;
the detector runs on each masked image in eval mode, and each mask is weighted by how well the masked image's
best detection still matches the target box: IoU x the detection's score where its class is the target's (the
paper's IoU x objectness x class cosine, for torchvision detectors, whose outputs keep only the winning class
and its score). The map is the masks' weighted sum, centred: ``sum_i (w_i - mean w) M_i / (N p)``, RISE's
estimator less its constant part (a mask that changes nothing adds nothing), so its positive mass is what
raises the match and the energy pointing game (:func:`pointing_shares`) reads it directly.

Every arm sees the same masked images (one batch, every arm's detector), and every target box on an image
is weighted from the same forward passes, so a map's cost is per image and arm, not per box.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import qmc
from torch import nn
from torchvision.ops import box_iou

MASK_DESIGNS = ("random", "stratified", "sobol")
"""How the masks' cells are drawn: independently (``random``, the paper's); per cell exactly ``round(p N)``
masks keep it, the shifts on a Latin hypercube (``stratified``); a scrambled Sobol sequence over the cells
and the shift, thresholded at ``p`` (``sobol``: the default, the benchmark's best; a power of 2 masks keeps its balance)."""
CELLS, KEEP = 6, 0.5
"""The masks' grid and the probability that a cell is kept. The paper's 16 x 16 cells (on COCO images) left maps of
large objects in 128 px scenes mostly noise: Spearman rho 0.19 with a 2000-mask reference at 512 masks, against
0.86 at 8 x 8 and 0.88 (random) to 0.93 (Sobol) at 6 x 6 (benchmarks/bench_detection_drise.py). Finer grids suit
smaller objects and need more masks."""
EXPLAIN_SCORE = 0.001
"""The detector's score floor while explaining: a masked image's weak detections of the target still count
(torchvision's default 0.05 hides them, and a missed box's map is made of weak detections)."""


def _grids(n: int, cells: int, p: float, design: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, cells, cells) kept cells and (n, 2) shifts in [0, 1) of a cell, drawn by ``design``."""
    d = cells * cells
    if design == "random":
        return rng.random((n, d)).reshape(n, cells, cells) < p, rng.random((n, 2))
    if design == "stratified":
        ranks = rng.permuted(np.tile(np.arange(n), (d, 1)), axis=1).T  # (n, d): per cell a permutation of 0..n-1
        keep = ranks < round(p * n)
        shifts = (rng.permuted(np.tile(np.arange(n), (2, 1)), axis=1).T + rng.random((n, 2))) / n
        return keep.reshape(n, cells, cells), shifts
    if design == "sobol":
        # the first n points of the next power of two: the same points as random(n), without scipy's warning that
        # a count like the budget planner's 300 is not a power of two
        points = qmc.Sobol(d + 2, scramble=True, seed=rng).random_base2(max(0, math.ceil(math.log2(n))))[:n]
        return (points[:, :d] < p).reshape(n, cells, cells), points[:, d:]
    raise ValueError(f"design {design!r}: one of {', '.join(MASK_DESIGNS)}")


def masks(n: int, size: tuple[int, int], *, cells: int = CELLS, p: float = KEEP, design: str = "sobol",
          seed: int = 0) -> torch.Tensor:
    """(n, H, W) float masks in [0, 1]: each grid upsampled bilinearly to (cells + 1) cells and cropped at its shift."""
    height, width = size
    keep, shifts = _grids(n, cells, p, design, np.random.default_rng(seed))
    ch, cw = math.ceil(height / cells), math.ceil(width / cells)
    grid = torch.from_numpy(np.pad(keep, ((0, 0), (0, 1), (0, 1)), mode="edge").astype(np.float32))
    up = F.interpolate(grid[:, None], size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear", align_corners=False)[:, 0]
    dy = torch.from_numpy((shifts[:, 0] * ch).astype(np.int64))
    dx = torch.from_numpy((shifts[:, 1] * cw).astype(np.int64))
    rows = dy[:, None] + torch.arange(height)
    cols = dx[:, None] + torch.arange(width)
    return up[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def match_weights(boxes: torch.Tensor, labels: torch.Tensor, detections: dict) -> torch.Tensor:
    """(T,) for T target boxes (x1 y1 x2 y2, 1-based labels): the best detection's IoU x score among those of
    the target's class; 0 where there is none."""
    found = detections["boxes"]
    if len(found) == 0 or len(boxes) == 0:
        return torch.zeros(len(boxes))
    same = (labels[:, None] == detections["labels"][None, :]).float()
    return (box_iou(boxes.float(), found.float()) * same * detections["scores"][None, :].float()).max(dim=1).values


@contextlib.contextmanager
def low_score_floor(detector: nn.Module, floor: float = EXPLAIN_SCORE) -> Iterator[None]:
    """The detector's score threshold lowered to ``floor`` (Faster R-CNN's ``roi_heads``, RetinaNet's and FCOS's own)
    while explaining, restored after."""
    holder = getattr(detector, "roi_heads", detector)
    before = getattr(holder, "score_thresh", None)
    if before is not None:
        holder.score_thresh = min(before, floor)
    try:
        yield
    finally:
        if before is not None:
            holder.score_thresh = before


Detect = Callable[[list[torch.Tensor]], list[dict]]


def detector_fn(model: nn.Module) -> Detect:
    """A detector's eval-mode call on a list of images (its device), outputs on the CPU."""
    device = next(model.parameters()).device

    def detect(images: list[torch.Tensor]) -> list[dict]:
        with torch.inference_mode(), low_score_floor(getattr(model, "detector", model)):
            out = model([im.to(device) for im in images])
        return [{k: v.cpu() for k, v in o.items()} for o in out]

    return detect


def drise(detectors: dict[str, Detect], image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, *,
          n_masks: int, batch_size: int = 16, cells: int = CELLS, p: float = KEEP, design: str = "sobol",
          seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per arm, (T, H, W) centred D-RISE maps of the T target boxes of one (C, H, W) image in [0, 1], and the
    (n_masks, T) mask weights; every arm sees the same masks (drawn by ``design`` and ``seed``)."""
    height, width = image.shape[-2:]
    stack = masks(n_masks, (height, width), cells=cells, p=p, design=design, seed=seed)
    weights = {arm: torch.zeros(n_masks, len(boxes)) for arm in detectors}
    for start in range(0, n_masks, batch_size):
        batch = stack[start:start + batch_size]
        masked = list(image[None] * batch[:, None])
        for arm, detect in detectors.items():
            weights[arm][start:start + len(batch)] = torch.stack([match_weights(boxes, labels, d) for d in detect(masked)])
    flat = stack.reshape(n_masks, -1)
    maps = {arm: ((w - w.mean(0)).T @ flat / (n_masks * p)).reshape(len(boxes), height, width).numpy() for arm, w in weights.items()}
    return maps, {arm: w.numpy() for arm, w in weights.items()}


def pointing_shares(maps: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The energy-based pointing game (Wang et al. 2020, Score-CAM) per map of (T, H, W) and box (T, 4 pixels x1 y1 x2
    y2): the share of the map's positive mass inside its box, and the box's share of the image area (a map that
    knows nothing of the box scores that share on average). A map without positive mass scores 0."""
    maps = np.clip(np.asarray(maps, dtype=np.float64), 0, None)
    t, height, width = maps.shape
    ys, xs = np.arange(height) + 0.5, np.arange(width) + 0.5
    b = np.asarray(boxes, dtype=np.float64).reshape(t, 4)
    inside = ((ys[None, :, None] >= b[:, 1, None, None]) & (ys[None, :, None] < b[:, 3, None, None])
              & (xs[None, None, :] >= b[:, 0, None, None]) & (xs[None, None, :] < b[:, 2, None, None]))
    total = maps.sum(axis=(1, 2))
    share = np.where(total > 0, (maps * inside).sum(axis=(1, 2)) / np.where(total > 0, total, 1), 0.0)
    return share, inside.sum(axis=(1, 2)) / (height * width)
