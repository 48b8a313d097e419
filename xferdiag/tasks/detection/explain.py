"""``xferdiag explain`` for a detection run: D-RISE and EigenCAM for chosen boxes of the test images, every arm on the
same masks, with the energy pointing game per box and the weight-randomisation check (Adebayo et al. 2018) of the
D-RISE maps, under the budget planner of :mod:`xferdiag.explainers.budget`.

The plan counts detector forwards: D-RISE runs ``masks`` masked images per box and arm (boxes on one image share
them, so the estimate is an upper bound), EigenCAM one forward per box and arm, the randomisation check ``masks``
per step and box it re-explains. A budget that cannot pay for all of it explains fewer boxes; it never draws fewer
masks than :data:`MASK_FLOOR`, the smallest count whose maps keep Spearman rho >= 0.9 with a 2000-mask reference
(benchmarks/bench_detection_drise.py, reports/benchmarks.md).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from ...explainers.budget import PassCosts, Plan, fit_plan, per_input
from ...explainers.faithfulness import SANITY_THRESHOLD, cascading_randomisation
from ..base import RunInputs
from .checkpoints import load_finetuned
from .data import load_detection
from .dataset import DetectionSet
from .drise import CELLS, KEEP, detector_fn, drise, pointing_shares
from .eigencam import eigencam, in_boxes
from .picks import Pick, pick_boxes
from .prepare import new_detector

METHODS = ("drise", "eigencam")
MASK_DESIGN = "sobol"
MASK_FLOOR = 512
"""D-RISE masks per image and arm, never fewer: the benchmark's smallest count at which the masks (Sobol, 6 x 6
cells) keep a mean Spearman rho >= 0.9 with a 2000-mask reference (0.928, worst box 0.896; plain random masks need
1024; reports/benchmarks.md "detection_drise")."""
SANITY_BOXES, SANITY_STEPS = 1, 2
"""Boxes the randomisation check re-explains on the first arm, and its cascade's steps: the output layer
re-initialised, then every layer (the cascade goes from the output down, Adebayo et al.). Each step costs as many
forwards as a box on one arm: one box keeps the check at half of a box's explanation (the default 90 s budget then
explains 2 boxes on an idle 2-core machine, not 1)."""
BATCH = 16
"""Masked images per detector call."""


@dataclass(frozen=True)
class BoxPlan(Plan):
    """The sizes of one box explanation run: ``n`` boxes, ``arms`` detectors, ``masks`` D-RISE masks per box and arm,
    and the ``sanity_examples`` boxes the randomisation check re-explains in ``sanity_steps`` steps."""

    methods: tuple[str, ...]
    arms: int
    n: int
    masks: int
    sanity_examples: int
    sanity_steps: int = SANITY_STEPS

    FLOORS = {"masks": MASK_FLOOR, "sanity_examples": 1, "n": 1}
    UNIT = "image"
    EARLY_CUTS = (("masks", MASK_FLOOR, f"D-RISE draws {MASK_FLOOR} masks per box (the quality floor)"),)

    def seconds(self, costs: PassCosts) -> dict[str, float]:
        """Estimated seconds per part: each method's maps for every arm, and the D-RISE randomisation check."""
        forward = costs.forward_s
        return {"drise": self.arms * self.n * self.masks * forward, "eigencam": self.arms * self.n * forward,
                "drise checks": self.sanity_steps * min(self.sanity_examples, self.n) * self.masks * forward}

    def describe(self) -> str:
        k = min(self.sanity_examples, self.n)
        return (f"{self.n} box{'es' if self.n != 1 else ''} x {self.masks} masks x {self.arms} arms, EigenCAM per box, "
                f"randomisation check on {k} box{'es' if k != 1 else ''} ({self.sanity_steps} steps)")


def _detector(config, num_classes: int, seed: int, path, device: torch.device):
    model = new_detector(config, num_classes, False, seed)
    load_finetuned(model, path)
    return model.to(device).eval()


def _image(data, index_of: dict[int, int], image_id: int) -> torch.Tensor:
    return DetectionSet(data, np.array([index_of[image_id]]))[0][0]


def _forward_s(model, image: torch.Tensor, device: torch.device) -> float:
    """Seconds per masked image of one detector call on a batch, as D-RISE makes them."""
    detect, batch = detector_fn(model), [image * 0.5] * BATCH
    return per_input(lambda: detect(batch), BATCH, device, inference=True)


def _targets(picks: list[Pick]) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor([p.box for p in picks], dtype=torch.float32).reshape(-1, 4),
            torch.tensor([p.category_id for p in picks], dtype=torch.int64))


def _by_image(picks: list[Pick]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for k, pick in enumerate(picks):
        groups.setdefault(pick.image_id, []).append(k)
    return groups


def drise_boxes(models: dict, images: dict[int, torch.Tensor], picks: list[Pick], *, masks: int, seed: int) -> dict[str, list]:
    """Per arm, the (H, W) D-RISE map of every pick, the arms on the same masks (seeded per image)."""
    out = {arm: [None] * len(picks) for arm in models}
    detectors = {arm: detector_fn(model) for arm, model in models.items()}
    for image_id, rows in _by_image(picks).items():
        boxes, labels = _targets([picks[k] for k in rows])
        maps, _ = drise(detectors, images[image_id], boxes, labels, n_masks=masks, batch_size=BATCH, design=MASK_DESIGN,
                        seed=seed + image_id)
        for arm, stack in maps.items():
            for k, row in zip(rows, stack):
                out[arm][k] = row
    return out


def randomisation(model, images: dict[int, torch.Tensor], picks: list[Pick], original: list[np.ndarray], *, masks: int,
                  steps: int, seed: int) -> dict:
    """The cascading weight-randomisation check (:func:`~xferdiag.explainers.faithfulness.cascading_randomisation`)
    of the D-RISE maps of ``picks`` on ``model``: re-initialised from the output layer down, re-explained on the
    same masks. Flagged: the maps of the fully randomised detector still rank pixels alike (|rho| > threshold)."""
    def explain(randomised) -> np.ndarray:
        return np.stack(drise_boxes({"x": randomised}, images, picks, masks=masks, seed=seed)["x"])

    result = cascading_randomisation(model, explain, np.stack(original), threshold=SANITY_THRESHOLD, n_steps=steps, seed=seed)
    return {"boxes": len(picks), "layers": result.layers, "similarity": [round(float(v), 4) for v in result.similarity],
            "similarity_after_randomisation": round(result.similarity_after_randomisation, 4),
            "threshold": result.threshold, "flagged": bool(result.flagged)}


def _box_row(pick: Pick, k: int, drise_maps: dict, cams: dict) -> dict:
    """The index's entry of one explained box: the pick, each arm's pointing share for both methods, the box's area share."""
    box = np.array([pick.box])
    shares = {arm: float(pointing_shares(maps[k][None], box)[0][0]) for arm, maps in drise_maps.items()}
    area = float(pointing_shares(next(iter(drise_maps.values()))[k][None], box)[1][0])
    cam_shares = {arm: float(pointing_shares(cam[pick.image_id][None], box)[0][0]) for arm, cam in cams.items()}
    return {**pick.to_dict(), "area_share": round(area, 4), "pointing": {arm: round(s, 4) for arm, s in shares.items()},
            "pointing_passed": {arm: s > area for arm, s in shares.items()},
            "eigencam_pointing": {arm: round(s, 4) for arm, s in cam_shares.items()}}


def _maps(picks: list[Pick], drise_maps: dict, cams: dict, images: dict[int, torch.Tensor]) -> dict[str, np.ndarray]:
    """maps.npz's arrays: per box and arm its D-RISE map and its EigenCAM renormalised in the box, per image its pixels."""
    out = {f"image_{image_id}": (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image_id, image in images.items()}
    for k, pick in enumerate(picks):
        for arm in drise_maps:
            out[f"drise_{arm}_{k}"] = drise_maps[arm][k].astype(np.float32)
            out[f"eigencam_{arm}_{k}"] = in_boxes(cams[arm][pick.image_id], np.array([pick.box]))[0]
    return out


def explain(inputs: RunInputs, *, n: int, seed: int = 0, budget=None, progress: bool = True) -> tuple[dict, dict]:
    """explanations/ of a detection run: index.json's content (the boxes, their checks, the plan) and maps.npz's arrays."""
    config, device = inputs.config, inputs.device
    data = load_detection(config.data)
    index_of = {img.image_id: k for k, img in enumerate(data.images)}
    arms = list(inputs.models)
    picks, pools = pick_boxes(inputs.run_records["test_ground_truth"],
                              {arm: inputs.records[arm]["detections"] for arm in arms}, n)
    models = {arm: _detector(config, len(data.classes), s, path, device) for arm, (s, path) in inputs.models.items()}
    images = {pick.image_id: _image(data, index_of, pick.image_id) for pick in picks}
    costs = PassCosts(_forward_s(models[arms[0]], next(iter(images.values())), device) if images else 0.0, 0.0)
    fitted = fit_plan(BoxPlan(METHODS, len(arms), max(1, len(picks)), MASK_FLOOR, SANITY_BOXES), costs, budget)
    plan = fitted.plan
    if progress:
        print(fitted.line(), file=sys.stderr)
    picks = picks[:plan.n]
    images = {pick.image_id: images[pick.image_id] for pick in picks}
    seconds, start = {}, time.perf_counter()
    drise_maps = drise_boxes(models, images, picks, masks=plan.masks, seed=seed)
    seconds["drise"], start = time.perf_counter() - start, time.perf_counter()
    cams = {arm: {image_id: eigencam(model, image) for image_id, image in images.items()} for arm, model in models.items()}
    seconds["eigencam"], start = time.perf_counter() - start, time.perf_counter()
    ranked = sorted(range(len(picks)), key=lambda k: -picks[k].scores.get(arms[0], 0.0))  # boxes the arm finds tell most
    checked = [k for k in ranked if picks[k].image_id == picks[ranked[0]].image_id][:plan.sanity_examples] if picks else []
    sanity = randomisation(models[arms[0]], images, [picks[k] for k in checked], [drise_maps[arms[0]][k] for k in checked],
                           masks=plan.masks, steps=plan.sanity_steps, seed=seed) if checked else None
    seconds["drise checks"] = time.perf_counter() - start
    rows = [_box_row(pick, k, drise_maps, cams) for k, pick in enumerate(picks)]
    index = {"kind": "image", "methods": list(METHODS), "arms": arms, "boxes": rows, "candidates": pools,
             "boxes_requested": n, "boxes_explained": len(rows), "randomisation": sanity and {**sanity, "arm": arms[0]},
             "masks": {"n": plan.masks, "design": MASK_DESIGN, "cells": CELLS, "keep": KEEP, "seed": seed},
             "budget": {**fitted.to_dict(), "measured_s_by_part": {k: round(v, 2) for k, v in seconds.items()}}}
    if progress:
        print(f"explained {len(rows)} of {n} requested boxes ({sum(pools.values())} candidates)", file=sys.stderr)
    return index, _maps(picks, drise_maps, cams, images)
