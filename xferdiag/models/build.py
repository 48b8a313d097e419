"""Build a target model: a pretrained (or random) backbone plus a new head for the target classes.

Every model becomes a :class:`TransferModel`: the source classifier's classifier layer is split off
(:mod:`.surgery`), what remains is the backbone (it outputs feature vectors), and a new head is
attached. One traced forward pass on the resolved input (:mod:`.layers`) checks that the model takes
that input before anything trains, and names the blocks that really run. The pretrained classifier
itself is kept available for scores that need the source model's class outputs (LEEP, NCE).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.spec import InputSpec
from ..errors import ModelError
from .checkpoint import load_into, load_state_dict
from .inputs import resolve_input_spec
from .layers import Trace, trace
from .source import ModelSource
from .surgery import classifier_layer, split_classifier, without_auxiliary
from .transfer import TransferModel


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


class WithNormalization(nn.Module):
    """``model(normalize(x))``: lets explainers work on images in [0, 1] and still feed the model what it expects."""

    def __init__(self, model: nn.Module, spec: InputSpec):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def load_pretrained_classifier(source: ModelSource, checkpoint: str | None) -> nn.Module | None:
    """The source model with its pretrained weights, or None when the run starts from random weights.

    Without a checkpoint the weights are those the spec names: a text model's directory, torchvision's
    NAME:WEIGHTS, or a built-in's shipped file (``builtin:efficientnet-lite0``, the same in every command).
    The checkpoint's classifier layer says how many source classes to build; torchvision's
    auxiliary heads (GoogLeNet, Inception v3) are dropped from the file as from the model.
    """
    if not checkpoint and source.ships_weights:
        checkpoint = source.shipped_checkpoint()
    if not checkpoint:
        return source.pretrained_model()
    model = source.build_classifier()
    state = without_auxiliary(load_state_dict(checkpoint), model)
    name, layer, _ = classifier_layer(model)
    outputs = state.get(f"{name}.weight")
    if outputs is not None and outputs.shape[0] != getattr(layer, "out_features", getattr(layer, "out_channels", None)):
        model = source.build_classifier(int(outputs.shape[0]))
    load_into(model, state, checkpoint)
    return model


def _traced_backbone(backbone: nn.Module, width: int, spec: InputSpec, arch: str) -> Trace:
    """Trace one forward pass and check it ends in (N, width) feature vectors; one clear error otherwise."""
    from ..modalities.models import input_example  # the modality's own dummy input (imported here: it builds on this layer)

    x = input_example(spec)
    try:
        seen, features = trace(backbone, x)
    except (RuntimeError, ValueError, TypeError, AssertionError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"model {arch!r} does not take a {tuple(x.shape[1:])} input ({type(exc).__name__}: {reason}); "
                         "say what it takes with --channels, --image-size (and --mean/--std)") from None
    if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[1] != width:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ModelError(f"model {arch!r}: without its classifier layer it outputs {shape}, not (N, {width}) feature "
                         "vectors; end the model in its classifier (a final nn.Linear) after pooling")
    return seen


def build_transfer_model(
    source: ModelSource,
    num_classes: int,
    *,
    pretrained: nn.Module | None,
    input_spec: InputSpec | None = None,
    head_hidden: list[int] = (),
    head_dropout: float = 0.0,
) -> TransferModel:
    """A target model: pretrained backbone (or a random one when ``pretrained`` is None) plus a new head.

    ``input_spec`` None takes what the model itself says (:func:`.inputs.resolve_input_spec`).
    """
    classifier = pretrained if pretrained is not None else source.build_classifier()
    if input_spec is None:
        input_spec = resolve_input_spec(source, classifier)
    backbone, width = split_classifier(classifier)
    seen = _traced_backbone(backbone, width, input_spec, source.canonical)
    head = make_head(width, num_classes, list(head_hidden), head_dropout)
    from ..modalities.models import transfer_model_class

    return transfer_model_class(input_spec)(backbone, head, width, input_spec, seen)


def classifier_state(model: TransferModel, source: ModelSource) -> dict[str, torch.Tensor]:
    """Fold a trained TransferModel with a linear head back into the original architecture's state_dict.

    This is what a pretrained checkpoint looks like to every other tool, so the demo's source model
    is saved in that form and loaded back through the same path as a user's checkpoint.
    """
    if not isinstance(model.head, nn.Linear):
        raise ModelError("only a model with a single linear head can be saved as a plain classifier")
    template = source.build_classifier(model.head.out_features)
    name, layer, _ = classifier_layer(template)
    state = {k.removeprefix("backbone."): v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    head = model.head.state_dict()
    if isinstance(layer, nn.Conv2d):
        head["weight"] = head["weight"][:, :, None, None]
    state.update({f"{name}.{k}": v for k, v in head.items()})
    return {k: v.detach().cpu().clone() for k, v in state.items()}
