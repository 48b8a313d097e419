"""Which layers of a backbone really run, in which order: found by tracing one forward pass.

A forward hook on a module that is never called (an ``nn.ModuleList`` holding blocks, an unused
auxiliary head) never fires, so layers are chosen from what a traced pass calls, never from the
module tree alone. Blocks (for partial fine-tuning, layer-wise learning rates and the layer
analysis) are the backbone's parameterised parts, opened up where they never run themselves or
where there would otherwise be too few to tell input-side from output-side layers, in the spirit
of timm's ``feature_info`` stage boundaries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
MIN_BLOCKS = 4
"""Fewer top-level blocks than this (a ViT's ``conv_proj`` + ``encoder``) and the largest is opened up."""


@dataclass(frozen=True)
class Trace:
    """Modules in the order their forward finished (first call each), with their output shapes."""

    order: tuple[str, ...]
    shapes: dict[str, tuple[int, ...] | None]

    def ran(self, name: str) -> bool:
        return name in self.shapes


def first_tensor(output) -> torch.Tensor | None:
    """A module's main output: the tensor itself, or the first element of a tuple/list of them."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


def trace(module: nn.Module, x: torch.Tensor) -> tuple[Trace, object]:
    """Run ``module(x)`` once in eval mode, recording every submodule that runs; return the trace and output.

    Training flags are restored and every hook removed, also when the forward pass fails.
    """
    shapes: dict[str, tuple[int, ...] | None] = {}
    order: list[str] = []

    def record(name):
        def hook(_module, _inputs, output):
            if name not in shapes:
                tensor = first_tensor(output)
                shapes[name] = tuple(tensor.shape) if tensor is not None else None
                order.append(name)
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in module.named_modules() if n]
    try:
        with evaluating(module), torch.inference_mode():
            output = module(x)
    finally:
        for h in hooks:
            h.remove()
    return Trace(tuple(order), shapes), output


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the block, then every submodule's own train/eval flag back.

    ``module.train(was_training)`` would not do: it sets one flag on every submodule, so a frozen
    BatchNorm inside a training model would come back in train mode.
    """
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags.items():
            m.training = flag


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _children(name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(f"{name}.{n}" if name else n, m) for n, m in module.named_children() if _has_params(m)]


def _size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _opens_up(module: nn.Module) -> bool:
    """A container of blocks (Sequential, ModuleList, ModuleDict), or a module holding one (a ViT's encoder).

    A leaf-like block such as a dense layer with its norm stays whole: its parts are not blocks.
    """
    return bool(_children("", module)) and (isinstance(module, CONTAINERS) or any(
        isinstance(child, CONTAINERS) and _has_params(child) for child in module.children()))


def blocks_of(backbone: nn.Module, seen: Trace) -> list[str]:
    """Parameterised blocks that run, ordered input to output (by when each finished)."""
    blocks = _children("", backbone)
    while True:
        silent = [i for i, (n, m) in enumerate(blocks) if not seen.ran(n) and _children(n, m)]
        if silent:
            i = silent[0]
        else:
            splittable = [i for i, (_, m) in enumerate(blocks) if _opens_up(m)]
            if len(blocks) >= MIN_BLOCKS or not splittable:
                break
            i = max(splittable, key=lambda k: _size(blocks[k][1]))
        blocks[i:i + 1] = _children(*blocks[i])
    position = {name: k for k, name in enumerate(seen.order)}
    return sorted((n for n, _ in blocks if n in position), key=position.__getitem__)


def check_layers(names: list[str], seen: Trace, blocks: list[str]) -> list[str]:
    """``names`` when every one is a module that runs in the traced pass; else one error listing the valid ones."""
    bad = [n for n in names if seen.shapes.get(n) is None]
    if bad:
        verb = "is not a module that runs" if len(bad) == 1 else "are not modules that run"
        raise ModelError(f"layers: {', '.join(repr(n) for n in bad)} {verb} "
                         f"in this backbone with a tensor output; its blocks are {', '.join(blocks)} (any dotted module name that runs "
                         "in the forward pass works too, e.g. a block's sub-layer)")
    return names
