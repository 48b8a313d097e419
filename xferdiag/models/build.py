"""Build models: torchvision architectures by name, ``package.module:function``, or built-ins.

Every model becomes a :class:`TransferModel`: the original classifier's last ``nn.Linear`` is
split off, what remains is the backbone (it outputs feature vectors), and a new head is attached
for the target classes. The pretrained classifier itself is kept available for scores that need
the source model's class outputs (LEEP, NCE).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
from dataclasses import dataclass

import torch
from torch import nn

from ..data.images import InputSpec
from ..errors import ModelError
from .builtin import BUILTINS, build_builtin, builtin_input_spec
from .checkpoint import load_into, load_state_dict

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``arch`` (name), ``kind`` (torchvision/builtin/callable), ``weights``,
    and a built-in's ``options`` (``builtin:NAME:OPTIONS``)."""

    arch: str
    kind: str
    weights: str | None = None
    options: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "ModelSource":
        if spec.startswith("builtin:"):
            name, _, options = spec.split(":", 1)[1].partition(":")
            if name not in BUILTINS:
                raise ModelError(f"model {spec!r}: unknown built-in; choose one of {', '.join('builtin:' + b for b in BUILTINS)}")
            return cls(name, "builtin", options=options or None)
        if ":" in spec and "." in spec.split(":", 1)[0]:
            return cls(spec, "callable")
        name, _, weights = spec.partition(":")
        import torchvision.models as tvm

        if name not in tvm.list_models():
            raise ModelError(
                f"model {name!r}: not a torchvision architecture, 'builtin:digits-cnn' or 'package.module:function' "
                f"(torchvision has e.g. resnet18, resnet50, mobilenet_v3_small, efficientnet_b0, vit_b_16)"
            )
        return cls(name, "torchvision", weights or None)

    def input_spec(self, image_size: int | None) -> InputSpec:
        if self.kind == "builtin":
            return builtin_input_spec(self.arch, self.options, image_size)
        return InputSpec(3, image_size or 224, *IMAGENET)

    def build_classifier(self, num_classes: int | None = None) -> nn.Module:
        """The original architecture with random weights (``num_classes`` outputs when given)."""
        kwargs = {} if num_classes is None else {"num_classes": num_classes}
        if self.kind == "builtin":
            return build_builtin(self.arch, self.options, **kwargs)
        if self.kind == "callable":
            module_name, _, func_name = self.arch.partition(":")
            try:
                func = getattr(importlib.import_module(module_name), func_name)
            except (ImportError, AttributeError) as exc:
                raise ModelError(f"model {self.arch!r}: cannot import ({exc})") from None
            model = func(**kwargs) if kwargs else func()
            if not isinstance(model, nn.Module):
                raise ModelError(f"model {self.arch!r}: the function returned {type(model).__name__}, not a torch.nn.Module")
            return model
        import torchvision.models as tvm

        return tvm.get_model(self.arch, weights=None, **kwargs)

    def download_weights(self) -> nn.Module:
        """The torchvision classifier with its named weights (needs the network or a cached file)."""
        import torchvision.models as tvm

        try:
            weights = tvm.get_model_weights(self.arch)[self.weights]
        except KeyError:
            options = ", ".join(w.name for w in tvm.get_model_weights(self.arch))
            raise ModelError(f"weights {self.weights!r} do not exist for {self.arch}; choose one of {options}") from None
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's "Downloading ..." line
                return tvm.get_model(self.arch, weights=weights)
        except Exception as exc:  # URLError, socket errors, HTTP errors
            raise ModelError(
                f"{self.arch}:{self.weights} needs a download that failed ({type(exc).__name__}); "
                "offline, pass a local state_dict with --pretrained-checkpoint FILE"
            ) from None


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ModelError(f"{type(model).__name__}: no nn.Linear classifier to replace")
    return found[-1]


def _set_submodule(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def _blocks(backbone: nn.Module) -> list[str]:
    """Parameterised top-level children (a lone Sequential is opened up), ordered input to output."""
    names = [n for n, m in backbone.named_children() if any(True for _ in m.parameters())]
    expanded: list[str] = []
    for name in names:
        child = backbone.get_submodule(name)
        if len(names) < 4 and isinstance(child, nn.Sequential):
            expanded += [f"{name}.{n}" for n, m in child.named_children() if any(True for _ in m.parameters())]
        else:
            expanded.append(name)
    return expanded


def make_head(in_features: int, num_classes: int, hidden: list[int], dropout: float) -> nn.Module:
    """A linear head, or an MLP (Linear-ReLU-Dropout per hidden size) for 'add new layers'."""
    if not hidden:
        return nn.Linear(in_features, num_classes)
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class TransferModel(nn.Module):
    """``head(backbone(x))`` with the backbone's blocks named for partial fine-tuning."""

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int, input_spec: InputSpec):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim
        self.input_spec = input_spec
        self.blocks = _blocks(backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


class WithNormalization(nn.Module):
    """``model(normalize(x))``: lets explainers work on images in [0, 1] and still feed the model what it expects."""

    def __init__(self, model: nn.Module, spec: InputSpec):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def split_classifier(classifier: nn.Module) -> tuple[nn.Module, int]:
    """Backbone (a copy of ``classifier`` whose last Linear is an Identity) and its feature width."""
    backbone = copy.deepcopy(classifier)
    name, linear = _last_linear(backbone)
    _set_submodule(backbone, name, nn.Identity())
    return backbone, linear.in_features


def load_pretrained_classifier(source: ModelSource, checkpoint: str | None) -> nn.Module | None:
    """The source model with its pretrained weights, or None when the run starts from random weights."""
    if checkpoint:
        state = load_state_dict(checkpoint)
        num_classes = None
        for key, value in state.items():
            if key.endswith("weight") and value.ndim == 2:
                num_classes = value.shape[0]  # the last 2-D weight is the classifier
        try:
            model = source.build_classifier(num_classes)
        except TypeError:
            model = source.build_classifier()
        load_into(model, state, checkpoint)
        return model
    if source.weights:
        return source.download_weights()
    return None


def build_transfer_model(
    source: ModelSource,
    num_classes: int,
    *,
    pretrained: nn.Module | None,
    head_hidden: list[int] = (),
    head_dropout: float = 0.0,
    image_size: int | None = None,
) -> TransferModel:
    """A target model: pretrained backbone (or a random one when ``pretrained`` is None) plus a new head."""
    classifier = pretrained if pretrained is not None else source.build_classifier()
    backbone, width = split_classifier(classifier)
    head = make_head(width, num_classes, list(head_hidden), head_dropout)
    return TransferModel(backbone, head, width, source.input_spec(image_size))


def classifier_state(model: TransferModel, source: ModelSource) -> dict[str, torch.Tensor]:
    """Fold a trained TransferModel with a linear head back into the original architecture's state_dict.

    This is what a pretrained checkpoint looks like to every other tool, so the demo's source model
    is saved in that form and loaded back through the same path as a user's checkpoint.
    """
    if not isinstance(model.head, nn.Linear):
        raise ModelError("only a model with a single linear head can be saved as a plain classifier")
    template = source.build_classifier(model.head.out_features)
    name, _ = _last_linear(template)
    state = {k.removeprefix("backbone."): v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    state.update({f"{name}.{k}": v for k, v in model.head.state_dict().items()})
    return {k: v.detach().cpu().clone() for k, v in state.items()}
