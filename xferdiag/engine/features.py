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


def _pool(output) -> torch.Tensor:
    """Global-average-pool a block's output to one vector per example (conv maps, token sequences)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    if output.ndim == 3:
        return output.mean(dim=1)
    return output.flatten(1)


@torch.inference_mode()
def extract_layer_features(backbone: nn.Module, dataset: Dataset, layers: list[str], *, batch_size: int = 256,
                           device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Pooled outputs of the named backbone blocks plus ``"penultimate"`` (the backbone's output), one pass."""
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in [*layers, "penultimate"]}
    hooks = [
        backbone.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: captured[name].append(_pool(o).float().cpu()))
        for name in layers
    ]
    was_training = backbone.training
    backbone.eval()
    try:
        for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            captured["penultimate"].append(_pool(backbone(x.to(device))).float().cpu())
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    return {name: torch.cat(chunks) for name, chunks in captured.items()}
