"""``xferdiag analyze`` for a detection run: box statistics, image-level and instance-level shift (:mod:`.shift`)
of the run's source against its target, or without ``--source-data`` of its training split against its test split;
and the transferability scores of the run's pretrained backbone (:mod:`.transferability`) beside those of the same
detector at random initialisation. Layer similarity of detection runs is not built yet."""

from __future__ import annotations

import time

import numpy as np

from ...analyzers.shift import label_shift
from ...config import RunConfig
from ...errors import InputError
from .data import load_detection, split_images, take_shots
from .prepare import new_detector
from .rank import MIN_BOXES, score_weights
from .shift import MIN_IMAGES, box_statistics, box_table, image_shift, instance_features, instance_shift, pooled_features
from .transferability import SCORES


def _sample(n: int, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` of ``n`` indices, seeded, in order."""
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False)) if n > cap else np.arange(n)


def _box_labels(data, indices) -> np.ndarray:
    """The class of every box (crowd / ignored regions left out) of the images at ``indices``."""
    return np.concatenate([data.images[int(k)].labels[~data.images[int(k)].iscrowd] for k in indices] or [np.zeros(0, np.int64)])


def analyze(config: RunConfig, *, layers: list[str] | None = None, max_samples: int = 1000, n_permutations: int = 1000,
            seed: int = 0, device="cpu") -> dict:
    """shift.json's content (less its sentences) for a detection run's configuration: ``compared`` says which images
    were compared, ``boxes`` holds the box statistics over every image compared, the image-level analyses (MMD,
    proxy A-distance, Fréchet, C2ST, KS) stand at the top level, as a classification run's do, and the instance
    level's under ``instance``, over the same images (at most ``max_samples`` per side)."""
    if layers:
        raise InputError("--layers: a detection run's analysis reads the backbone body's last stage only; leave --layers out")
    target = load_detection(config.data)
    if config.source_data:
        source = load_detection(config.source_data)
        source_idx, target_idx = np.arange(len(source)), np.arange(len(target))
        compared = f"source data {source.spec} ({len(source)} images) against the target data {target.spec} ({len(target)} images)"
    else:
        splits = split_images(target, config.val_fraction, config.test_fraction, config.split_seed)
        source, source_idx, target_idx = target, splits["train"], splits["test"]
        compared = (f"the target data's training split ({len(source_idx)} images) against its test split ({len(target_idx)} "
                    "images): the run names no --source-data")
    result = {"compared": compared, "boxes": box_statistics(box_table(source, source_idx), box_table(target, target_idx))}
    if source.classes == target.classes:  # the boxes' class proportions compare only over the same classes
        result["label_shift"] = label_shift(_box_labels(source, source_idx), _box_labels(target, target_idx),
                                            n_classes=len(target.classes)).to_dict()
    if min(len(source_idx), len(target_idx)) < MIN_IMAGES:
        return {**result, "features_skipped": f"{len(source_idx)} and {len(target_idx)} images; the image-level tests need "
                                              f"at least {MIN_IMAGES} a side"}
    model = new_detector(config, len(target.classes), True, seed)
    source_idx = source_idx[_sample(len(source_idx), max_samples, seed + 1)]
    target_idx = target_idx[_sample(len(target_idx), max_samples, seed)]
    x, y = pooled_features(model, source, source_idx, device=device), pooled_features(model, target, target_idx, device=device)
    boxes = instance_features(model, source, source_idx, seed, device), instance_features(model, target, target_idx, seed + 1, device)
    classes = target.classes if source.classes == target.classes else ()  # classes pair up only when they are the same
    return {**image_shift(x, y, seed=seed, n_permutations=n_permutations),
            "instance": instance_shift(*boxes, classes, seed=seed, n_permutations=n_permutations), **result}


REFERENCE = "random initialisation"
"""The reference the transferability analysis scores beside the pretrained backbone: the same detector, weights drawn from seed
0 (what the scratch arm starts from, in kind): the gap between the two is what pretraining brings to the boxes."""


def _scored(config: RunConfig, weights: str | None, data, train: np.ndarray, device) -> dict:
    """transferability.json's part for one set of weights: its scores, why any is missing, notes, the time taken."""
    start = time.perf_counter()
    row = score_weights(config, config.backbone, weights, data, train, device)
    return {"scores": {name: row[name] for name in SCORES if row[name] is not None}, "not_applicable": row["not_applicable"],
            "notes": row["notes"], "seconds_total": time.perf_counter() - start, **{key: row[key] for key in
            ("boxes", "background_boxes", "stage", "anchor_iou_median")}, "transfer": row["transfer"]["level"]}


def transferability(config: RunConfig, *, max_samples: int = 1000, seed: int = 0, device="cpu") -> dict:
    """transferability.json's content for a detection run: every score of :data:`.transferability.SCORES` of the
    run's pretrained backbone under its detector, on the boxes of the images its largest ``--shots`` point trains
    on (at most ``max_samples``, seeded), as ``rank`` scores a candidate; ``reference``: the same at
    :data:`REFERENCE`. Fewer than :data:`.rank.MIN_BOXES` boxes leave every score not applicable, said why."""
    data = load_detection(config.data)
    splits = split_images(data, config.val_fraction, config.test_fraction, config.split_seed)
    shots = max(config.shots, key=lambda s: float("inf") if s == "all" else s)
    train = take_shots(data, splits["train"], shots, seed=config.split_seed).indices
    train = train[_sample(len(train), max_samples, seed)]
    head = {"model": "pretrained", "split": "train", "n": int(len(train)), "unit": "images"}
    boxes = len(_box_labels(data, train))
    if boxes < MIN_BOXES:
        why = (f"{boxes} box{'es' if boxes != 1 else ''} in {len(train)} training image{'s' if len(train) != 1 else ''}: too "
               f"few to score (at least {MIN_BOXES})")
        return {**head, "scores": {}, "not_applicable": dict.fromkeys(SCORES, why), "notes": {}, "seconds": {}}
    pretrained = _scored(config, config.pretrained_checkpoint, data, train, device)
    reference = _scored(config, None, data, train, device)
    return {**head, **pretrained, "seconds": {}, "reference": {"model": REFERENCE, **reference}}
