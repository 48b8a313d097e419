"""Grad-CAM (Selvaraju et al. 2017) through captum, batched, with the target layer found for you.

Captum computes the gradient of the chosen logit with respect to the target layer only, so the
backward pass stops there instead of running down to the input and every weight. Maps come back
as a numpy array (N, H, W), the shape every image explainer returns (as in pytorch-grad-cam).
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from .._validate import check_scalar
from ..errors import InputError
from ..models.layers import trace
from ._common import (
    as_images,
    check_model,
    device_of,
    explaining,
    normalise,
    resolve_targets,
)


def grad_cam(model: nn.Module, images, target_layer: str | None = None, targets=None,
             batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps, float32 (N, H, W) in [0, 1] at the input resolution, one per image.

    ``target_layer`` is a dotted module name (``"layer4"``, ``"features.7"``); by default the
    deepest block that contains a convolution and still has a spatial output
    (:func:`find_target_layer`). ``targets`` gives the class to explain per image (default: the
    predicted class). Maps are ReLU(sum_k w_k A_k) upsampled bilinearly, then min-max scaled per
    image; a map with no positive evidence is all zeros.
    """
    model = check_model(model)
    x = as_images(images)
    batch_size = check_scalar(batch_size, "batch_size", int, 1)
    name = find_target_layer(model, x[:1]) if target_layer is None else target_layer
    layer = _module_named(model, name)
    t = None if targets is None else resolve_targets(model, x, targets)
    device = device_of(model)
    cam = LayerGradCam(_selected_logit(model), layer)
    out = []
    with explaining(model), torch.enable_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            extra = None if t is None else (t[i:i + batch_size].to(device),)
            attr = cam.attribute(xb, additional_forward_args=extra, relu_attributions=True)
            if attr.ndim != 4:
                raise InputError(f"target_layer: {name!r} has output shape {tuple(attr.shape)}; "
                                 "Grad-CAM needs a spatial (N, C, h, w) output")
            up = LayerAttribution.interpolate(attr.detach(), tuple(x.shape[2:]), interpolate_mode="bilinear")
            out.append(normalise(up[:, 0]).cpu())
    return torch.cat(out).numpy()


def find_target_layer(model: nn.Module, example) -> str:
    """Name of the deepest convolutional block, taken after the activation or normalisation that
    directly follows it: ``layer4`` for a torchvision ResNet, the last ReLU of a plain conv stack.

    One traced forward pass (:func:`xferdiag.models.layers.trace`, first call of each module)
    decides it: the last module to finish that contains an nn.Conv2d and outputs a 4-D tensor,
    extended over the activation, normalisation and dropout layers that finish right after it
    with the same output shape. Rectified activations are what Grad-CAM weighs; a raw conv output
    can be negative, and negative activations times negative weights light up the background.
    """
    model = check_model(model)
    x = as_images(example, "example")[:1]
    conv = set(_conv_containing(model))
    if not conv:
        raise InputError(f"model: {type(model).__name__} has no nn.Conv2d layer, so Grad-CAM has no "
                         "spatial layer to explain; use SHAP or LIME for this model")
    seen, _ = trace(model, x.to(device_of(model)))
    modules = dict(model.named_modules())
    order = list(seen.order)
    shapes = [seen.shapes[n] for n in order]
    spatial = [k for k, n in enumerate(order) if n in conv and shapes[k] is not None and len(shapes[k]) == 4]
    if not spatial:
        raise InputError("model: no module containing a Conv2d produced a 4-D output; pass target_layer=")
    k = spatial[-1]
    while k + 1 < len(order) and _elementwise(modules[order[k + 1]]) and shapes[k + 1] == shapes[k]:
        k += 1
    return order[k]


def _elementwise(module: nn.Module) -> bool:
    """Activations, normalisation and dropout: shape-preserving layers that belong to a conv block."""
    return type(module).__module__ in _ELEMENTWISE_MODULES


_ELEMENTWISE_MODULES = {"torch.nn.modules.activation", "torch.nn.modules.batchnorm", "torch.nn.modules.instancenorm",
                        "torch.nn.modules.normalization", "torch.nn.modules.dropout"}


def _conv_containing(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules()
            if n and any(isinstance(s, nn.Conv2d) for s in m.modules())]


def _module_named(model: nn.Module, name) -> nn.Module:
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        valid = _conv_containing(model)[-6:] or [n for n in modules if n][-6:]
        raise InputError(f"target_layer: no module named {name!r} in the model; valid names include "
                         f"{', '.join(valid)}")
    return modules[name]


def _selected_logit(model: nn.Module):
    """Forward function returning one logit per image: the given target, else the prediction.

    Choosing the predicted class inside the forward pass saves a separate prediction pass.
    """

    def forward(x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        out = model(x)
        if out.ndim != 2:
            raise InputError(f"model: expected outputs of shape (N, n_classes), got {tuple(out.shape)}")
        index = out.argmax(1) if t is None else t
        return out.gather(1, index[:, None])[:, 0]

    return forward
