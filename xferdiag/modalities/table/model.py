"""What a table model takes and is wrapped in: (N, features) rows, and the plain transfer model; the built-in
network the modality ships (``builtin:tabular-mlp``, :mod:`.mlp`), built and sized here for :mod:`xferdiag.models`."""

from __future__ import annotations

import torch
from torch import nn

from ...data.spec import InputSpec
from ...models.transfer import TransferModel
from ..kinds import TABLE
from . import mlp

NAME = TABLE
TRANSFER_MODEL = TransferModel
BUILTINS = (mlp.NAME,)
"""The ``builtin:NAME`` models this modality builds."""
model_for_data = mlp.model_for_data


def example(spec: InputSpec, n: int) -> torch.Tensor:
    return torch.zeros(n, spec.size)


def build_builtin(name: str, options: str | None, **kwargs) -> nn.Module:
    """``builtin:tabular-mlp[:OPTIONS]``: its width and hidden sizes from the options."""
    return mlp.TabularMLP(**mlp.parse_options(options), **kwargs)


def builtin_input_spec(name: str, options: str | None) -> InputSpec:
    """A table spec: as many features as the options say (0 until the table fills them in)."""
    return InputSpec(0, mlp.parse_options(options).get("features", 0), (), (), kind=TABLE)
