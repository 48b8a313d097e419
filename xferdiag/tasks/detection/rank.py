"""``xferdiag rank`` on detection data: candidate backbones, each put under the detector family ``--model`` names
(``fasterrcnn``, ``retinanet``, ``fcos``) as ``finetune --backbone`` puts it, scored on the training images that
``finetune`` would train on (the same split and shots) before any training (:mod:`.transferability`)."""

from __future__ import annotations

import sys
import time

import numpy as np

from ...config import RunConfig
from ...engine.trainer import seed_everything
from ...environment import choose_device
from ...errors import ConfigError, ModelError
from ...models import ModelSource
from .checkpoints import load_pretrained
from .data import DetectionData, load_detection, split_images, take_shots
from .models import build_detection_model, family_of
from .settings import settings_for
from .transferability import SCORES, box_score, chosen_stage, class_scores

MIN_BOXES = 3
"""Fewer training boxes leave nothing to score (an evidence over one or two rows says nothing)."""
NO_SOURCE_OUTPUTS = "a detection candidate is scored on its box features; no source head's outputs apply to boxes"


def candidate_weights(candidate: str, arch: str, checkpoint: str | None) -> str | None:
    """The file a candidate's backbone weights come from: its ``=CHECKPOINT``, or the file a built-in ships; None for
    a random-initialisation reference. Torchvision's ``ARCH:WEIGHTS`` would download, which a detector never does."""
    source = ModelSource.parse(arch)
    if checkpoint:
        return checkpoint
    if source.ships_weights:
        return source.shipped_checkpoint()
    if source.weights:
        raise ConfigError(f"candidate {candidate!r}: a detection candidate's weights come from a file (ARCH=CHECKPOINT) or "
                          "a built-in that ships them (builtin:efficientnet-lite0); ARCH:WEIGHTS would download them")
    return None


def score_weights(config: RunConfig, arch: str, weights: str | None, data: DetectionData, train: np.ndarray, device) -> dict:
    """The detector ``finetune`` builds on backbone ``arch`` with ``weights`` loaded (None: random, drawn from seed 0 so a
    rerun scores the same), scored by every score of :data:`.transferability.SCORES` on the training images' boxes;
    ``transfer`` is :func:`.checkpoints.load_pretrained`'s record."""
    seed_everything(0)
    model = build_detection_model(config.model, len(data.classes), backbone=arch, norm=config.detector_norm,
                                  settings=settings_for(config.detector_scale, config.image_size), fpn_channels=config.fpn_channels)
    transfer = load_pretrained(model, weights)
    stage = chosen_stage(model, data, train, device=device)
    classes = class_scores(model, data, train, stage=stage, device=device)
    regression, about = box_score(model, data, train, stage=stage, device=device)
    not_applicable = {"leep": NO_SOURCE_OUTPUTS, "nce": NO_SOURCE_OUTPUTS}
    if regression is None:
        not_applicable["logme_box"] = about["not_applicable"]
    return {"pretrained": weights is not None, **classes["scores"], "logme_box": regression, "not_applicable": not_applicable,
            "notes": classes["notes"], "stage": classes["stage"], "boxes": classes["boxes"],
            "background_boxes": classes["background_boxes"], "anchor_iou_median": about.get("anchor_iou_median"), "transfer": transfer}


def score_backbone(config: RunConfig, candidate: tuple[str, str, str | None], data: DetectionData, train: np.ndarray,
                   device, quiet: bool = False) -> dict:
    """One candidate (its spec, architecture and checkpoint) scored by :func:`score_weights`, its row of ranking.json."""
    spec, arch, checkpoint = candidate
    start = time.perf_counter()
    weights = candidate_weights(spec, arch, checkpoint)
    try:
        row = score_weights(config, arch, weights, data, train, device)
    except ModelError as exc:
        raise ModelError(f"candidate {spec!r}: {exc}") from None
    transfer = row.pop("transfer")
    if not quiet:
        print(f"{spec}: {transfer['description']}; box features of body stage {row['stage']} "
              f"({row['boxes']} boxes, {row['background_boxes']} background boxes)", file=sys.stderr)
    if weights is None:
        row["not_applicable"]["note"] = "no pretrained weights: a random-initialisation reference"
    return {"candidate": spec, **row, "transfer": transfer["level"], "seconds": time.perf_counter() - start}


def rank_candidates(config: RunConfig, candidates: list[tuple[str, str, str | None]], *, shots, quiet: bool = False) -> dict:
    """Every candidate's row (see :func:`score_backbone`) and ranking.json's record of what was scored:
    ``{"rows": [...], "meta": {...}}``."""
    try:
        family = family_of(config.model)
    except ModelError:
        given = "" if config.model == RunConfig.model else f" {config.model!r}"  # the default names a classifier nobody gave
        raise ConfigError(f"model{given}: rank on detection data puts each candidate backbone under a detector; "
                          "name its family: fasterrcnn, retinanet or fcos") from None
    data = load_detection(config.data)
    splits = split_images(data, config.val_fraction, config.test_fraction, config.split_seed)
    train = take_shots(data, splits["train"], shots, seed=config.split_seed).indices
    boxes = sum(int((~np.asarray(data.images[int(k)].iscrowd, dtype=bool)).sum()) for k in train)
    if boxes < MIN_BOXES:
        raise ConfigError(f"data {config.data}: {boxes} box{'es' if boxes != 1 else ''} in {len(train)} training "
                          f"image{'s' if len(train) != 1 else ''}; rank scores candidates on the training boxes and needs at "
                          f"least {MIN_BOXES} (more images, or a larger --shots)")
    device = choose_device(config.device)
    rows = [score_backbone(config, candidate, data, train, device, quiet) for candidate in candidates]
    meta = {"split": "train", "n": int(len(train)), "unit": "images", "detector": family, "scores": list(SCORES),
            "background": "one object-sized background box per object, scored as one more class"}
    return {"rows": rows, "meta": meta}
