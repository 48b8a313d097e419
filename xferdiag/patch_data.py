"""Images with a known place to point at, and tiny models that learn them: the explanation tests'
and benchmarks' ground truth.

The patch data set: 32x32 gray noise with one bright 8x8 patch at a random, known place; its
colour decides the class (red: 0, blue: 1), so a faithful explanation must point at the patch.
Class 2 has no patch: with only two classes a model may learn "red" and call everything else
blue, and then there is no evidence for blue to point at.
"""

from __future__ import annotations

import torch
from torch import nn

SIZE, PATCH = 32, 8
COLOURS = torch.tensor([[0.95, 0.15, 0.15], [0.15, 0.15, 0.95]])


def patch_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (n, 3, 32, 32) in [0, 1], labels (n,), patch masks (n, 32, 32) bool (empty for class 2)."""
    g = torch.Generator().manual_seed(seed)
    x = (0.2 + 0.4 * torch.rand(n, 1, SIZE, SIZE, generator=g)).repeat(1, 3, 1, 1)
    y = torch.arange(n) % 3
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.bool)
    corners = torch.randint(0, SIZE - PATCH + 1, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        if y[i] == 2:
            continue
        x[i, :, r:r + PATCH, c:c + PATCH] = COLOURS[y[i]][:, None, None]
        masks[i, r:r + PATCH, c:c + PATCH] = True
    return x, y, masks


def tiny_cnn(inplace: bool = False) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    )


def trained_patch_cnn(seed: int = 0, n: int = 384, epochs: int = 6) -> nn.Sequential:
    """A tiny CNN that solves the patch data set (a few seconds on two cores)."""
    torch.manual_seed(seed)
    model = tiny_cnn()
    x, y, _ = patch_data(n, seed + 100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(n).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())
