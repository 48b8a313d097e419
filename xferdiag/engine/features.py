"""Feature extraction, batched and gradient-free: the backbone runs once per example."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@torch.inference_mode()
def extract_features(backbone: nn.Module, dataset: Dataset, *, batch_size: int = 256, device: torch.device | str = "cpu", workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (features (N, D) float32 on CPU, labels (N,)) with ``backbone`` in eval mode."""
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    try:
        for x, y in loader:
            feats.append(backbone(x.to(device, non_blocking=True)).float().flatten(1).cpu())
            labels.append(y)
    finally:
        backbone.train(was_training)
    return torch.cat(feats), torch.cat(labels)
