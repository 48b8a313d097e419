"""The toy task's model: the built-in MLP with one output per label, a dict of losses in train mode
(given the targets, as a torchvision detector takes them) and label probabilities in eval mode."""

from __future__ import annotations

import torch
from torch import nn


def multi_hot(targets: list[torch.Tensor], classes: int) -> torch.Tensor:
    out = torch.zeros(len(targets), classes)
    for row, labels in enumerate(targets):
        out[row, labels] = 1.0
    return out


class MultiLabelNet(nn.Module):
    """Wraps a transfer model (``backbone``, ``head``, ``blocks``, as the trainer's strategies need them)."""

    def __init__(self, net: nn.Module, classes: int):
        super().__init__()
        self.classes, self.net = classes, net
        self.backbone, self.head, self.blocks = net.backbone, net.head, net.blocks

    def forward(self, x, targets=None):
        logits = self.net(x)
        if not self.training:
            return logits.sigmoid()
        return {"bce": nn.functional.binary_cross_entropy_with_logits(logits, multi_hot(targets, self.classes).to(logits))}
