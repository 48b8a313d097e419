"""The detection task: torchvision's contract (a dict of losses in train mode, boxes in eval mode),
COCO metrics, and validation AP50 to pick the best epoch (see :mod:`..base`).

Targets are a list per batch (images hold different numbers of boxes); labels are 1-based, 0 being
the background a torchvision detector reserves, and equal COCO category ids, so the evaluator
reads targets and predictions as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...engine import distributed
from ..descriptor import DESCRIPTORS
from .analysis import analyze, transferability
from .audit import prepare_audit
from .average_precision import DetectionMetrics, evaluate
from .data.load import detect_format, split_spec
from .explain import explain
from .prepare import prepare
from .rank import candidate_weights, rank_candidates
from .transferability import SCORES as RANK_SCORES
from .verdict import judge


def _plain(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class DetectionEvaluation:
    """A split's COCO metrics with the ground truth and detections they came from (COCO formats)."""

    metrics: DetectionMetrics
    ground_truth: dict
    results: list[dict]
    selection_name = "one minus validation AP50"

    @property
    def selection(self) -> float:
        """Validation AP50 picks the best epoch: measured in eval mode, the number the user reads. A split
        without ground truth has no AP: every epoch then ties and the first is kept."""
        ap50 = self.metrics.ap50
        return 1.0 - ap50 if math.isfinite(ap50) else 1.0

    def summary(self) -> dict:
        full = self.metrics.to_dict()
        return {key: full[key] for key in ("map", "ap50", "ap75", "ar100", "per_class_ap")}

    def history(self) -> dict[str, float | None]:
        return {"val_map": _plain(self.metrics.map), "val_ap50": _plain(self.metrics.ap50)}

    def record(self) -> dict:
        """What the seed keeps of its test split: its detections in COCO's results format."""
        return {"detections": self.results}

    def postfix(self) -> dict[str, str]:
        return {"val_ap50": f"{self.metrics.ap50:.3f}", "val_map": f"{self.metrics.map:.3f}"}


def coco_ground_truth(targets: Sequence[dict], num_classes: int) -> dict:
    """The targets of a split (dicts with ``image_id``, ``boxes`` x1 y1 x2 y2, ``labels``, optional ``iscrowd``,
    ``size`` (height, width)) as a COCO ground-truth dict."""
    images, annotations = [], []
    for target in targets:
        image_id = int(target["image_id"])
        height, width = (int(v) for v in target["size"])
        images.append({"id": image_id, "height": height, "width": width})
        crowd = target.get("iscrowd", torch.zeros(len(target["labels"]), dtype=torch.bool))
        for box, label, is_crowd in zip(target["boxes"].tolist(), target["labels"].tolist(), crowd.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": int(is_crowd)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k} for k in range(1, num_classes + 1)]}


def coco_results(predictions: Sequence[dict], image_ids: Sequence[int]) -> list[dict]:
    """A detector's eval-mode outputs (``boxes`` x1 y1 x2 y2, ``scores``, ``labels``) in COCO's results format."""
    results = []
    for image_id, prediction in zip(image_ids, predictions):
        for box, score, label in zip(prediction["boxes"].tolist(), prediction["scores"].tolist(), prediction["labels"].tolist()):
            results.append({"image_id": int(image_id), "category_id": int(label),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score)})
    return results


class DetectionTask:
    name = "detection"
    descriptor = DESCRIPTORS[name]
    caches_features = False
    eval_batch_floor = 1  # the training batch: 256 images at torchvision's 1000 proposals each took 9 GB (benchmarks.md)
    rank_scores = RANK_SCORES

    def claims(self, data: str) -> bool:
        """A COCO, Pascal VOC or YOLO folder, or one named ``coco:``, ``voc:``, ``yolo:``."""
        named, path = split_spec(data)
        return named is not None or detect_format(path) is not None

    def prepare(self, config, **options):
        return prepare(self, config, **options)

    def prepare_audit(self, config, checkpoint, **options):
        return prepare_audit(self, config, checkpoint, **options)

    def judge(self, a, b, **context):
        return judge(a, b, **context)

    def analyze(self, config, **options) -> dict:
        """shift.json's content: box statistics, image- and instance-level shift (:mod:`.analysis`)."""
        return analyze(config, **options)

    def explain(self, inputs, **options) -> tuple[dict, dict]:
        """index.json's content and maps.npz's arrays: D-RISE and EigenCAM for chosen boxes (:mod:`.explain`)."""
        return explain(inputs, **options)

    def transferability(self, config, **options) -> dict:
        """transferability.json's content: the run's pretrained backbone scored on its boxes, beside random weights."""
        return transferability(config, **options)

    def rank_candidates(self, config, candidates, **options) -> dict:
        """``xferdiag rank``'s rows: candidate backbones under ``config.model``'s detector family (:mod:`.rank`)."""
        return rank_candidates(config, candidates, **options)

    def candidate_config(self, config, candidate: str, arch: str, checkpoint: str | None):
        """``rank --then-finetune``'s run of a candidate: its backbone under ``config.model``, its weights as the transfer
        arm's pretrained checkpoint, beside a scratch arm."""
        return config.replace(backbone=arch, pretrained_checkpoint=candidate_weights(candidate, arch, checkpoint), baseline="scratch")

    @staticmethod
    def collate(batch: list) -> tuple[list[torch.Tensor], list[dict]]:
        return [image for image, _ in batch], [target for _, target in batch]

    def targets_to(self, targets: list[dict], device: torch.device) -> list[dict]:
        return [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]

    def train_loss(self, module: nn.Module, inputs, targets) -> torch.Tensor:
        return sum(module(inputs, targets).values())

    def predict_batch(self, module: nn.Module, inputs) -> list[dict]:
        """Boxes and scores in float32 even inside the evaluation's autocast (``--amp``): torchvision decodes boxes
        in the regression output's dtype, so under bfloat16 they came out on a grid of 0.5 px at 64-128 px and
        4 px at 512-1024, which costs AP at IoU 0.75-0.95 (torchvision's references evaluate without autocast)."""
        with torch.autocast(inputs[0].device.type, enabled=False):
            outputs = module(inputs)
        return [{k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in out.items()} for out in outputs]

    def rank_key(self, summary: dict) -> tuple[float, float]:
        """Higher AP50 first, then higher mAP (a missing AP counts as 0)."""
        return (-(summary["ap50"] or 0.0), -(summary["map"] or 0.0))

    def headline(self, summary: dict) -> str:
        return f"AP50 {(summary['ap50'] or 0.0):.3f}"

    def learned(self, summary: dict, record: dict) -> None:
        """Unknown: a detector has learned when its AP50 beats the box prior's (:mod:`.verdict`), and the prior's
        AP50 on the validation split is not computed during the lr search (it needs the split's ground truth)."""
        return None

    def evaluate(self, outputs: Sequence[list[dict]], targets: Sequence[list[dict]], num_classes: int) -> DetectionEvaluation:
        predictions = [p for part in distributed.gather_objects([p for batch in outputs for p in batch]) for p in part]
        truths = [t for part in distributed.gather_objects([t for batch in targets for t in batch]) for t in part]
        ground_truth = coco_ground_truth(truths, num_classes)
        results = coco_results(predictions, [int(t["image_id"]) for t in truths])
        return DetectionEvaluation(evaluate(ground_truth, results), ground_truth, results)
