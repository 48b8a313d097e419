"""A toy second task for the task seam's tests: multi-label classification with label sets of varying size.

It exercises what detection needs of the seam and classification does not: the model returns a dict
of losses in train mode, targets are a list of per-example tensors of varying length (a list
collate), and the score (mean average precision over classes) is not a mean over examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from torch.utils.data import Dataset

from xferdiag.models import ModelSource, build_transfer_model


class LabelSets(Dataset):
    """Rows of ``features`` with their label sets (int64 tensors of 0 or more classes)."""

    def __init__(self, features: torch.Tensor, label_sets: list[torch.Tensor]):
        self.features, self.label_sets = features, label_sets

    def __len__(self) -> int:
        return len(self.label_sets)

    def __getitem__(self, i):
        return self.features[i], self.label_sets[i]


def label_sets(n: int, classes: int, seed: int) -> LabelSets:
    """Class k is present where feature k is positive: 0 to ``classes`` labels per row, learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return LabelSets(x, [torch.nonzero(row[:classes] > 0.3).flatten() for row in x])


class MultiLabelNet(nn.Module):
    """Wraps a built-in MLP: a dict of losses given targets in train mode, class probabilities in eval mode."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes
        self.net = build_transfer_model(ModelSource.parse("builtin:tabular-mlp:features=8"), classes, pretrained=None)
        self.backbone, self.head, self.blocks = self.net.backbone, self.net.head, self.net.blocks

    def forward(self, x, targets=None):
        logits = self.net(x)
        if not self.training:
            return logits.sigmoid()
        return {"bce": nn.functional.binary_cross_entropy_with_logits(logits, multi_hot(targets, self.classes).to(logits))}


def multi_hot(targets: list[torch.Tensor], classes: int) -> torch.Tensor:
    out = torch.zeros(len(targets), classes)
    for row, labels in enumerate(targets):
        out[row, labels] = 1.0
    return out


@dataclass
class MultiLabelEvaluation:
    mean_ap: float
    scores: np.ndarray
    label_sets: list[np.ndarray]
    selection_name = "one minus validation mAP"

    @property
    def selection(self) -> float:
        return 1.0 - self.mean_ap

    def summary(self) -> dict[str, float]:
        return {"map": self.mean_ap}

    def history(self) -> dict[str, float]:
        return {"val_map": self.mean_ap}

    def postfix(self) -> dict[str, str]:
        return {"val_map": f"{self.mean_ap:.3f}"}


class MultiLabelTask:
    name = "toy-multilabel"
    caches_features = False

    @staticmethod
    def collate(batch):
        return torch.stack([x for x, _ in batch]), [labels for _, labels in batch]

    def targets_to(self, targets, device):
        return [t.to(device) for t in targets]

    def train_loss(self, module, inputs, targets) -> torch.Tensor:
        return sum(module(inputs, targets).values())

    def predict_batch(self, module, inputs):
        return module(inputs).cpu()

    def rank_key(self, summary):
        return (-summary["map"],)

    def headline(self, summary):
        return f"mAP {summary['map']:.3f}"

    def evaluate(self, outputs, targets, num_classes: int) -> MultiLabelEvaluation:
        scores = torch.cat(list(outputs)).numpy()
        sets = [t.numpy() for batch in targets for t in batch]
        truth = multi_hot([torch.as_tensor(s) for s in sets], num_classes).numpy()
        present = truth.any(axis=0)
        mean_ap = float(average_precision_score(truth[:, present], scores[:, present], average="macro"))
        return MultiLabelEvaluation(mean_ap, scores, sets)
