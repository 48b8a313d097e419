"""Classifier surgery: find a model's classifier layer, take it off, and fold a new one back in.

Most classifiers end in an ``nn.Linear``. Some do not: SqueezeNet classifies with a 1x1
convolution before its global pooling, and GoogLeNet / Inception v3 carry auxiliary heads that
return extra logits in training mode. timm models say themselves where their head is
(``reset_classifier``), so their own API is used.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ModelError

AUXILIARY_HEADS = ("aux1", "aux2", "AuxLogits")  # torchvision GoogLeNet and Inception v3


def has_auxiliary(model: nn.Module) -> bool:
    """torchvision's signature of auxiliary classifiers: an ``aux_logits`` switch beside the heads."""
    return hasattr(model, "aux_logits")


def strip_auxiliary(model: nn.Module) -> nn.Module:
    """Turn off auxiliary classifiers so the model returns one tensor in training mode too.

    A transfer run trains one head; the auxiliary ones would be left at their source classes.
    Models built by any spec get this (a user function may return torchvision's GoogLeNet).
    """
    if has_auxiliary(model):
        model.aux_logits = False
        for name in AUXILIARY_HEADS:
            if getattr(model, name, None) is not None:
                setattr(model, name, None)
    return model


def without_auxiliary(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A checkpoint without the auxiliary heads' weights (torchvision's ImageNet files keep them)
    when ``model`` is one whose auxiliary heads were stripped."""
    if not has_auxiliary(model):
        return state
    return {k: v for k, v in state.items() if k.split(".", 1)[0] not in AUXILIARY_HEADS}


def classifier_layer(model: nn.Module) -> tuple[str, nn.Module, int]:
    """(dotted name, module, input width) of the layer that maps features to class scores.

    The last ``nn.Linear``; without one, a final 1x1 ``nn.Conv2d`` (SqueezeNet), whose input
    channels are the pooled feature width once the convolution is gone.
    """
    modules = [(name, m) for name, m in model.named_modules() if name]
    linear = [(name, m) for name, m in modules if isinstance(m, nn.Linear)]
    if linear:
        name, layer = linear[-1]
        return name, layer, layer.in_features
    convs = [(name, m) for name, m in modules if isinstance(m, nn.Conv2d)]
    if convs and convs[-1][1].kernel_size == (1, 1):
        name, layer = convs[-1]
        return name, layer, layer.in_channels
    raise ModelError(f"{type(model).__name__}: found no classifier layer to replace (neither a final nn.Linear nor a "
                     "final 1x1 nn.Conv2d); wrap the model so its last layer is an nn.Linear")


def set_submodule(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def split_classifier(classifier: nn.Module) -> tuple[nn.Module, int]:
    """Backbone (a copy of ``classifier`` that outputs feature vectors) and its feature width."""
    backbone = copy.deepcopy(classifier)
    if hasattr(backbone, "reset_classifier") and hasattr(backbone, "num_features"):  # timm
        backbone.reset_classifier(0)
        # a pre-logits layer after pooling (GhostNet, MobileNetV3: 960 -> 1280) widens what the
        # classifier sees beyond num_features; timm names that width head_hidden_size
        return backbone, int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)
    name, layer, width = classifier_layer(backbone)
    set_submodule(backbone, name, nn.Identity())
    if isinstance(layer, nn.Conv2d):  # SqueezeNet: a ReLU after the class map would clip the features
        parent_name, _, own = name.rpartition(".")
        parent = backbone.get_submodule(parent_name)
        names = [n for n, _ in parent.named_children()]
        for child_name in names[names.index(own) + 1:]:
            if isinstance(parent.get_submodule(child_name), nn.ReLU):
                setattr(parent, child_name, nn.Identity())
    return backbone, width


def head_weights_for_linear(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A 1x1-convolution classifier's weights ``(C, D, 1, 1)`` as an ``nn.Linear``'s ``(C, D)``."""
    key = f"{prefix}weight"
    if key in state and state[key].ndim == 4 and state[key].shape[2:] == (1, 1):
        state = dict(state)
        state[key] = state[key].flatten(1)
    return state
