"""The classification task: logits in, cross-entropy as the step's loss, the lowest validation loss
picks the best epoch (see :mod:`..base`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ... import health
from ...engine import distributed
from ..descriptor import DESCRIPTORS
from .audit import prepare_audit
from .metrics import Evaluation, evaluate_logits
from .prepare import prepare
from .verdict import judge


class ClassificationTask:
    name = "classification"
    descriptor = DESCRIPTORS[name]
    caches_features = True
    eval_batch_floor = 256
    collate = None

    def claims(self, data: str) -> bool:
        """Any data no other task claims: image folders, arrays, tables, texts."""
        return True

    def prepare(self, config, **options):
        return prepare(self, config, **options)

    def prepare_audit(self, config, checkpoint, **options):
        return prepare_audit(self, config, checkpoint, **options)

    def judge(self, a, b, **context):
        return judge(a, b, **context)

    def targets_to(self, targets: torch.Tensor, device: torch.device) -> torch.Tensor:
        return targets.to(device, non_blocking=True)

    def train_loss(self, module: nn.Module, inputs, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(module(inputs).float(), targets)

    def predict_batch(self, module: nn.Module, inputs) -> torch.Tensor:
        return module(inputs).float().cpu()

    def rank_key(self, summary: dict[str, float]) -> tuple[float, float]:
        """Higher accuracy first; the loss breaks ties (the accuracies of small splits often tie)."""
        return (-summary["accuracy"], summary["loss"])

    def headline(self, summary: dict[str, float]) -> str:
        return f"accuracy {summary['accuracy']:.1%}"

    def learned(self, summary: dict[str, float], record: dict) -> bool | None:
        """Validation accuracy significantly above the validation split's majority-class rate, by the binomial
        test the verdict's health check uses (:func:`xferdiag.health.needed_above_chance`); None where the
        record has no validation class counts or the split is too small for the test."""
        counts = (record.get("class_counts") or {}).get("val")
        chance = health.majority_share(counts) if counts else None
        needed = health.needed_above_chance(int(sum(counts)), chance) if chance is not None else None
        return None if needed is None else bool(summary["accuracy"] >= needed - 1e-9)  # accuracies are k/n

    def evaluate(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], num_classes: int) -> Evaluation:
        logits, labels = (distributed.gather_rows(torch.cat(list(parts))) for parts in (outputs, targets))
        return evaluate_logits(logits, labels, num_classes)
