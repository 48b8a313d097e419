"""A feature pyramid on any classification backbone: the body's stages at increasing strides, an FPN on top.

The stages are found from one traced forward pass (:mod:`xferdiag.models.layers`), not from a table of
architectures, so a timm model, a lukemelas EfficientNet or a user's own CNN gets a pyramid the same way
as a torchvision one. Their outputs are taken with forward hooks and the body stops after the last stage
(modules after it, a classifier's pooled head convolution, are removed so every weight left gets a gradient).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ...errors import ModelError
from ...models import split_classifier
from ...models.layers import Trace, blocks_of, trace
from ...models.surgery import set_submodule

TRACE_SIZE = 256
"""Side of the zero image traced to measure strides (a multiple of 64, so strides come out exact)."""
MAX_STRIDE = 64
"""Coarser outputs (a pooled 1x1 map) are past the body's last spatial stage."""


class _Stop(Exception):
    """Raised by the last stage's hook: the rest of the classifier's forward is not needed."""


def _stride(seen: Trace, name: str, size: int) -> int | None:
    shape = seen.shapes.get(name)
    if shape is None or len(shape) != 4 or shape[-1] == 0:
        return None
    stride = round(size / shape[-1])
    return stride if stride <= MAX_STRIDE else None


def _children_that_ran(body: nn.Module, name: str, seen: Trace) -> list[str]:
    position = {n: k for k, n in enumerate(seen.order)}
    names = [f"{name}.{n}" for n, m in body.get_submodule(name).named_children() if any(True for _ in m.parameters())]
    return sorted((n for n in names if n in position), key=position.__getitem__)


def _fine_blocks(body: nn.Module, seen: Trace, blocks: list[str], size: int, before: int = 1) -> list[str]:
    """``blocks`` with every block that spans more than one stride step (timm's ``blocks``, all stages
    in one Sequential) opened up into the blocks inside it."""
    out = []
    for name in blocks:
        stride = _stride(seen, name, size)
        inner = _children_that_ran(body, name, seen)
        if stride is not None and stride > 2 * before and inner:
            out += _fine_blocks(body, seen, inner, size, before)
        else:
            out.append(name)
        before = stride or before
    return out


def find_stages(body: nn.Module, seen: Trace, count: int, size: int = TRACE_SIZE) -> list[tuple[str, int]]:
    """(block name, stride) of the last ``count`` strides the body reaches, the last block at each."""
    last: dict[int, str] = {}
    for name in _fine_blocks(body, seen, blocks_of(body, seen), size):
        stride = _stride(seen, name, size)
        if stride is not None and (not last or stride >= max(last)):
            last[stride] = name
    strides = sorted(last)[-count:]
    if len(strides) < count:
        raise ModelError(f"backbone: found {len(strides)} feature-map stride(s) ({', '.join(map(str, strides)) or 'none'}), "
                         f"a feature pyramid needs {count}; give a convolutional backbone that downsamples in stages")
    return [(last[s], s) for s in strides]


def _drop_tail(body: nn.Module, seen: Trace, last_stage: str) -> None:
    """Replace the parameterised modules that run after the last stage (and do not hold it) with Identity."""
    after = seen.order[seen.order.index(last_stage) + 1:]
    dropped: list[str] = []
    for name in after:
        holds = last_stage.startswith(name + ".")
        inside_dropped = any(name.startswith(d + ".") for d in dropped)
        if holds or inside_dropped or not any(True for _ in body.get_submodule(name).parameters()):
            continue
        set_submodule(body, name, nn.Identity())
        dropped.append(name)


class PyramidBackbone(nn.Module):
    """``fpn(stages of body(x))``: the contract torchvision's detectors take from a backbone (an ordered
    dict of feature maps, and ``out_channels``). ``body`` is the classifier without its classifier layer."""

    def __init__(self, body: nn.Module, stages: list[tuple[str, int]], channels: list[int], out_channels: int):
        super().__init__()
        self.body = body
        self.stage_names = [name for name, _ in stages]
        self.strides = [stride for _, stride in stages]
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def stage_features(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """The stages' outputs; the body's forward stops once the last one is taken."""
        taken: dict[str, torch.Tensor] = {}
        last = self.stage_names[-1]

        def keep(name):
            def hook(_module, _inputs, output):
                taken[name] = output
                if name == last:
                    raise _Stop
            return hook

        hooks = [self.body.get_submodule(n).register_forward_hook(keep(n)) for n in self.stage_names]
        try:
            self.body(x)
        except _Stop:
            pass
        finally:
            for h in hooks:
                h.remove()
        return OrderedDict((str(i), taken[n]) for i, n in enumerate(self.stage_names))

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(self.stage_features(x))


def pyramid_backbone(classifier: nn.Module, name: str, stages: int = 3, out_channels: int = 256,
                     channels: int = 3) -> PyramidBackbone:
    """The pyramid on ``classifier``'s body: its classifier layer split off, ``stages`` stages found by tracing."""
    body, _ = split_classifier(classifier)
    x = torch.zeros(1, channels, TRACE_SIZE, TRACE_SIZE)
    try:
        seen, _ = trace(body, x)
    except (RuntimeError, ValueError, TypeError, AssertionError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(f"backbone {name!r} does not take a {tuple(x.shape[1:])} image ({type(exc).__name__}: {reason})") from None
    found = find_stages(body, seen, stages)
    _drop_tail(body, seen, found[-1][0])
    widths = [seen.shapes[n][1] for n, _ in found]
    return PyramidBackbone(body, found, widths, out_channels)


def anchor_sizes(strides: list[int]) -> tuple[tuple[int, ...], ...]:
    """RetinaNet's anchors (Lin et al. 2017): base 4x the level's stride, octave scales 2^0, 2^1/3, 2^2/3;
    the max-pooled level above the last stage has twice its stride."""
    levels = [*strides, 2 * strides[-1]]
    return tuple(tuple(int(round(4 * s * 2 ** (k / 3))) for k in range(3)) for s in levels)
