"""The toy's model side: (N, L) sequences, a zero batch for the builder's trace, the plain transfer model, and the
tiny 1-D convolution a run names as ``tests.toy_modalities.sequence.model:sequence_net``."""

from __future__ import annotations

import torch
from torch import nn

from xferdiag.data import InputSpec
from xferdiag.models.transfer import TransferModel

from .descriptor import SEQUENCE

NAME = SEQUENCE
TRANSFER_MODEL = TransferModel


def example(spec: InputSpec, n: int) -> torch.Tensor:
    return torch.zeros(n, spec.size)


class Channel(nn.Module):
    """(N, L) -> (N, 1, L): one input channel for the convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)


def sequence_net(num_classes: int = 2, width: int = 8) -> nn.Module:
    """A 1-D convolution, pooled to four positions, and a linear classifier."""
    features = nn.Sequential(Channel(), nn.Conv1d(1, width, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(4), nn.Flatten())
    return nn.Sequential(features, nn.Linear(4 * width, num_classes))
