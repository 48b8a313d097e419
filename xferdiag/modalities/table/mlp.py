"""An MLP for tables: ``builtin:tabular-mlp:features=F[,hidden=64-64][,dropout=0.1]``.

The model takes raw feature values. Its first layer standardises them: a BatchNorm without
learnable scale (running mean and variance only), so the statistics travel inside every
checkpoint. Pretraining fits them to the source training data; a frozen backbone keeps them
(frozen BatchNorm stays in eval mode, engine/strategies.py); full fine-tuning adapts them to the
target like any BatchNorm; the scratch arm fits them on the target training data. Hidden blocks use
LayerNorm, which does not depend on the batch, so tiny few-shot batches train as well as large ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataError, ModelError

NAME = "tabular-mlp"
DEFAULT_HIDDEN = (64, 64)
DEFAULT_DROPOUT = 0.1


class Standardize(nn.BatchNorm1d):
    """Per-feature (x - mean) / std with running statistics; a training batch of one uses them as is."""

    def __init__(self, features: int):
        super().__init__(features, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:  # BatchNorm cannot estimate a variance from one row
            return F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)
        return super().forward(x)


class DenseBlock(nn.Module):
    """Linear, LayerNorm, ReLU, Dropout: one backbone block (the unit of partial fine-tuning)."""

    def __init__(self, width_in: int, width_out: int, dropout: float):
        super().__init__()
        self.linear = nn.Linear(width_in, width_out)
        self.norm = nn.LayerNorm(width_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.relu(self.norm(self.linear(x))))


class TabularMLP(nn.Module):
    """Standardisation, ``len(hidden)`` dense blocks ``block1..blockN``, one linear classifier ``fc``."""

    def __init__(self, num_classes: int = 2, features: int | None = None, hidden: tuple[int, ...] = DEFAULT_HIDDEN,
                 dropout: float = DEFAULT_DROPOUT):
        super().__init__()
        if not features:
            raise ModelError(f"builtin:{NAME}: the number of input features is unknown; write "
                             f"builtin:{NAME}:features=N (finetune, audit and demo fill it in from the table)")
        self.standardize = Standardize(features)
        self.block_names = []
        width = features
        for i, size in enumerate(hidden, start=1):
            self.add_module(f"block{i}", DenseBlock(width, size, dropout))
            self.block_names.append(f"block{i}")
            width = size
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.fc(x)


def parse_options(options: str | None) -> dict:
    """``features=30,hidden=64-64,dropout=0.1`` to constructor arguments, with errors that name the option."""
    spec = f"builtin:{NAME}:{options or ''}"
    parsed: dict = {}
    for item in filter(None, (options or "").split(",")):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            if key == "features":
                parsed[key] = int(value)
                ok = parsed[key] > 0
            elif key == "hidden":
                parsed[key] = tuple(int(v) for v in value.split("-") if v)
                ok = bool(parsed[key]) and min(parsed[key]) > 0
            elif key == "dropout":
                parsed[key] = float(value)
                ok = 0 <= parsed[key] < 1
            else:
                raise ModelError(f"{spec}: unknown option {key!r}; options are features=N, hidden=64-64, dropout=0.1")
        except ValueError:
            ok = False
        if not ok:
            raise ModelError(f"{spec}: bad option {item!r} (features=N > 0, hidden=sizes joined by '-', dropout in [0, 1))")
    return parsed


def model_for_data(model: str, data: str) -> str:
    """``model`` with ``features=`` filled in from the table ``data`` when it is the tabular MLP without it."""
    name, _, options = model.removeprefix("builtin:").partition(":")
    if not model.startswith("builtin:") or name != NAME or "features" in parse_options(options):
        return model
    from ...data import InputSpec
    from ..descriptor import describe_modality
    from ..kinds import TABLE
    from ..loading import load_domain

    domain = load_domain(data)
    try:
        domain.check_fits(InputSpec(0, 0, (), (), kind=TABLE))  # the width is not known yet: only the kind is checked
    except DataError:
        raise ModelError(f"builtin:{NAME}: needs a table (CSV or .npz with a 2-D 'x'); {data} holds "
                         f"{describe_modality(domain.kind).takes}") from None
    return f"builtin:{NAME}:" + ",".join(filter(None, [f"features={len(domain.payload.feature_names)}", options]))
