"""``xferdiag analyze`` for a detection run: box statistics, image-level and instance-level shift (:mod:`.shift`)
of the run's source against its target, or without ``--source-data`` of its training split against its test split.
Transferability and layer similarity of detection runs are not built yet."""

from __future__ import annotations

import numpy as np

from ...analyzers.shift import label_shift
from ...config import RunConfig
from ...errors import InputError
from .data import load_detection, split_images
from .prepare import new_detector
from .shift import MIN_IMAGES, box_statistics, box_table, image_shift, instance_features, instance_shift, pooled_features


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
