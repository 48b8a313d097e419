"""What a table model takes and is wrapped in: (N, features) rows, and the plain transfer model."""

from __future__ import annotations

import torch

from ...data.spec import InputSpec
from ...models.transfer import TransferModel
from ..kinds import TABLE

NAME = TABLE
TRANSFER_MODEL = TransferModel


def example(spec: InputSpec, n: int) -> torch.Tensor:
    return torch.zeros(n, spec.size)
