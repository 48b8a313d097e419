"""Detection made ready for ``finetune``: the COCO/VOC/YOLO data, splits by image, K shots per class, the
datasets, data.json's record (with the dataset card) and the test split's COCO ground truth, and a fresh
detector per arm and seed: the pretrained weights for the transfer arm, random ones for scratch, the same
architecture, normalisation and settings for both (see :mod:`..prepared`)."""

from __future__ import annotations

import functools
import sys

import numpy as np

from ...config import RunConfig
from ...data import InputSpec
from ...engine import distributed
from ...engine.trainer import SplitData, seed_everything
from ...errors import ConfigError
from ...modalities.kinds import IMAGE
from ..base import Task
from ..prepared import Prepared, PreparedPoint
from .checkpoints import load_pretrained
from .data import BoxAugment, DetectionData, dataset_card, load_detection, split_images, take_shots, to_coco
from .dataset import DetectionSet
from .models import DetectionModel, build_detection_model
from .settings import settings_for, settings_in_effect


def new_detector(config: RunConfig, num_classes: int, use_pretrained: bool, seed: int) -> DetectionModel:
    """A fresh detector for one seed: built with every random stream seeded, then (transfer arm) loaded from
    the pretrained checkpoint, so both arms share everything the weights do not decide."""
    seed_everything(seed)
    model = build_detection_model(config.model, num_classes, backbone=config.backbone, norm=config.detector_norm,
                                  settings=settings_for(config.detector_scale, config.image_size), fpn_channels=config.fpn_channels)
    if use_pretrained:
        load_pretrained(model, config.pretrained_checkpoint)
    distributed.seed_this_rank(seed)
    return model


SCALE_WORDS = {"cpu": "xferdiag's CPU-scale sampling (--detector-scale cpu)",
               "torchvision": "torchvision's default sampling (--detector-scale torchvision)"}


def input_spec(model: DetectionModel, config: RunConfig) -> InputSpec:
    """What the detector does to an image before its backbone sees it (run.json's ``input``)."""
    settings = settings_in_effect(model.detector)
    transform = model.detector.transform
    size = settings.get("min_size") or min(transform.min_size)
    chosen = "--image-size" if config.image_size else "the scale's default"
    origin = (f"the detector's own transform: each image resized so its shorter side is {size} px ({chosen}; longer side at "
              f"most {settings.get('max_size')} px), {SCALE_WORDS[config.detector_scale]}")
    return InputSpec(3, int(size), tuple(float(v) for v in transform.image_mean), tuple(float(v) for v in transform.image_std), origin)


def box_prior(data: DetectionData, train: np.ndarray) -> dict[str, list[float]]:
    """Per category id (1..C) the mean training box relative to its image (centre x, y, width, height) and
    the class's share of the training boxes: the health check's baseline (see :mod:`.verdict`)."""
    rows = [(label, (box[0] + box[2]) / 2 / img.width, (box[1] + box[3]) / 2 / img.height,
             (box[2] - box[0]) / img.width, (box[3] - box[1]) / img.height)
            for img in (data.images[int(k)] for k in train) for box, label, crowd in zip(img.boxes, img.labels, img.iscrowd)
            if not crowd]
    if not rows:
        return {}
    table = np.array(rows, dtype=np.float64)
    return {str(int(c) + 1): [*table[table[:, 0] == c, 1:].mean(axis=0).tolist(), float((table[:, 0] == c).mean())]
            for c in np.unique(table[:, 0])}


def data_record(data: DetectionData, splits: dict[str, np.ndarray], train: np.ndarray, shots, size: int) -> dict:
    """data.json's content for one training size: classes, split sizes, the dataset card of each split."""
    used = {"train": train, "val": splits["val"], "test": splits["test"]}
    return {
        "classes": list(data.classes), "kind": IMAGE, "spec": data.spec, "format": data.fmt, "shots": shots,
        "splits": {"target": {name: int(len(idx)) for name, idx in used.items()}},
        "card": {name: dataset_card(data, idx).to_dict() for name, idx in used.items()},
        "notes": list(data.notes), "provenance": data.provenance or None, "box_prior": box_prior(data, train),
        "input": {"channels": 3, "size": size, "resize": "shorter-side"},
    }


def prepared_point(config: RunConfig, data: DetectionData, splits: dict[str, np.ndarray], shots, size: int) -> PreparedPoint:
    """One training size of a detection run, ready for the shared training command."""
    selection = take_shots(data, splits["train"], shots, seed=config.split_seed)
    augment = BoxAugment() if config.augment else None
    sets = SplitData(
        train=DetectionSet(data, selection.indices, training=True, augment=augment),
        train_plain=DetectionSet(data, selection.indices, training=True),
        val=DetectionSet(data, splits["val"]), test=DetectionSet(data, splits["test"]), num_classes=len(data.classes))
    return PreparedPoint(
        shots=shots, data=sets, record=data_record(data, splits, selection.indices, shots, size),
        sizes={"train": len(selection.indices), "val": len(splits["val"]), "test": len(splits["test"])},
        new_model=functools.partial(new_detector, config, len(data.classes)),
        run_records={"test_ground_truth": to_coco(data, splits["test"])},
    )


def prepare(task: Task, config: RunConfig, *, source_domain=None, resumed: bool = False, recorded_input=None,
            quiet: bool = False) -> Prepared:
    """Everything a detection run trains on, checked: bad annotations, splits, a detector that does not
    build or a checkpoint that does not fit end here, before any file."""
    if not config.pretrained_checkpoint:
        raise ConfigError(f"model {config.model!r}: a detection run needs the pretrained weights its transfer arm starts "
                          "from: give --pretrained-checkpoint FILE (a classifier's state_dict for the backbone, or a whole "
                          "detector's)")
    if config.backbone is None and config.fpn_channels != RunConfig.fpn_channels:
        raise ConfigError("fpn_channels: sets the pyramid xferdiag puts on --backbone; a torchvision detector by name keeps its own")
    data = load_detection(config.data)
    splits = split_images(data, config.val_fraction, config.test_fraction, config.split_seed)
    probe = build_detection_model(config.model, len(data.classes), backbone=config.backbone, norm=config.detector_norm,
                                  settings=settings_for(config.detector_scale, config.image_size), fpn_channels=config.fpn_channels)
    transfer = load_pretrained(probe, config.pretrained_checkpoint)  # a checkpoint that fits nothing ends here
    spec = recorded_input or input_spec(probe, config)
    config = config.with_absolute_paths()  # finetune records the task's name in run.json
    points = sorted(config.shots, key=lambda s: float("inf") if s == "all" else s)

    def announce() -> None:
        if not quiet and distributed.is_main():
            print(f"input: {spec.origin}", file=sys.stderr)
            if data.provenance:
                print(f"data: {data.provenance}", file=sys.stderr)
            if config.detector_norm == "frozen" and config.baseline == "scratch":
                print("warning: --detector-norm frozen keeps every arm's backbone BatchNorm at its initial statistics: the "
                      "scratch arm's are those of random weights, which handicaps it (--detector-norm batch or group is fair)",
                      file=sys.stderr)

    return Prepared(task, config, spec, [prepared_point(config, data, splits, s, spec.size) for s in points], announce,
                    model_record={**probe.describe(), "transfer": transfer})
