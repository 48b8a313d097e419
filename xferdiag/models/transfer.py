"""The model every run trains: a backbone that outputs feature vectors and a new head (a modality's own
kind, such as text's, subclasses it: :mod:`xferdiag.modalities.models`)."""

from __future__ import annotations

import torch
from torch import nn

from ..data.spec import InputSpec
from .layers import Trace, blocks_of


class TransferModel(nn.Module):
    """``head(backbone(x))``, with the backbone's blocks and traced layers named for partial
    fine-tuning and layer analysis."""

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int, input_spec: InputSpec, layer_trace: Trace):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim
        self.input_spec = input_spec
        self.layer_trace = layer_trace
        self.blocks = blocks_of(backbone, layer_trace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
