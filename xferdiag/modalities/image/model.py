"""What an image model takes and is wrapped in: (N, C, S, S) images, and the plain transfer model."""

from __future__ import annotations

import torch

from ...data.spec import InputSpec
from ...models.transfer import TransferModel
from ..kinds import IMAGE

NAME = IMAGE
TRANSFER_MODEL = TransferModel


def example(spec: InputSpec, n: int) -> torch.Tensor:
    return torch.zeros(n, spec.channels, spec.size, spec.size)
