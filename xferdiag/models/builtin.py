"""A small CNN for the built-in digit domains: fast on two CPU cores, with BatchNorm like real backbones."""

from __future__ import annotations

from torch import nn


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class DigitsCNN(nn.Module):
    """Four conv blocks (16x16 gray in), global average pooling, one linear classifier ``fc``."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.stem = _block(1, width, pool=False)
        self.block1 = _block(width, width, pool=True)
        self.block2 = _block(width, 2 * width, pool=True)
        self.block3 = _block(2 * width, 4 * width, pool=False)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.block3(self.block2(self.block1(self.stem(x))))))


BUILTINS = {"digits-cnn": DigitsCNN}
