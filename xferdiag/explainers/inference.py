"""A forward-only copy of a model for explainers that classify thousands of perturbed images.

LIME and the deletion/insertion curves spend nearly all their time in the model's forward pass.
In eval mode a batch norm is a fixed affine map, so it is folded into the convolution before it;
convolutions run in channels-last layout; and where the hardware computes bfloat16 natively
(CPUs with AMX or AVX512-BF16, CUDA GPUs from Ampere on) the forward pass runs under bf16
autocast. Folding and layout change only rounding (outputs agree to about 1e-6); bf16 moves class
probabilities by about 1e-3, far below LIME's sampling noise, and ``precision="fp32"`` turns it
off. The caller's model is never touched.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from contextlib import nullcontext

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..engine.runtime import convs_channels_last
from ..errors import InputError
from ._common import device_of

PRECISIONS = ("auto", "bf16", "fp32")

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Images per forward pass. On the CPU, batches that fit in cache beat large ones (ResNet-18 at
#: 112 px runs about 20% faster in batches of 32-64 than of 256); accelerators want large
#: batches to fill the device.
CPU_BATCH = 64
ACCELERATOR_BATCH = 256


def default_batch(device: torch.device) -> int:
    return CPU_BATCH if device.type == "cpu" else ACCELERATOR_BATCH


def resolve_precision(precision: str, device: torch.device) -> str:
    """"bf16" or "fp32": ``"auto"`` picks bf16 only where ``device`` computes it natively."""
    if precision not in PRECISIONS:
        raise InputError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if _native_bf16(device) else "fp32"


def _native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":  # torch exposes the CPU feature probes only as private helpers
        probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
        return any(probe() for probe in probes if probe is not None)
    return False


class FrozenModel(nn.Module):
    """What :func:`inference_copy` returns: float32 outputs of the folded copy, computed in
    ``precision`` ("bf16" or "fp32") with image batches in the weights' layout."""

    def __init__(self, model: nn.Module, precision: str, device: torch.device):
        super().__init__()
        self.model = model
        self.precision = precision
        self.device_type = device.type
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in model.modules())
        if self.channels_last:
            convs_channels_last(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        bf16 = torch.autocast(self.device_type, dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()
        with bf16:
            return self.model(x).float()


def inference_copy(model: nn.Module, precision: str = "auto") -> FrozenModel:
    """An eval-mode copy of ``model`` with conv->batch-norm pairs folded and no gradients for its
    weights: for forward passes, and (in "fp32") for gradients with respect to the inputs. Models
    that torch.fx cannot trace are copied without folding.

    The copy is kept while ``model`` lives and its weights stay as they are (same tensors, no
    in-place change), so LIME, SHAP and deletion/insertion on one model trace and fold it once.
    """
    device = device_of(model)
    chosen = resolve_precision(precision, device)
    key = (chosen, str(device), _weights_state(model))
    cached = _COPIES.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    frozen = copy.deepcopy(model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with contextlib.suppress(Exception):  # data-dependent control flow and other untraceable forwards run as written
        frozen = _fold_batch_norms(fx.symbolic_trace(frozen))
    result = FrozenModel(frozen, chosen, device)
    _COPIES[model] = (key, result)
    return result


_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""model -> (precision, device, weights state), its latest inference copy."""


def _weights_state(model: nn.Module) -> tuple:
    """Which tensors hold the weights and how often each was changed in place (torch counts it)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def _fold_batch_norms(graph: fx.GraphModule) -> fx.GraphModule:
    """Replace each conv whose only consumer is a batch norm with one conv that does both."""
    modules = dict(graph.named_modules())
    for node in list(graph.graph.nodes):
        norm = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(norm, _BatchNorm) or not norm.track_running_stats or norm.running_mean is None:
            continue
        source = node.args[0]
        if not (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        conv = modules[source.target]
        if not isinstance(conv, _CONVS) or conv.out_channels != norm.num_features:
            continue
        parent, _, name = source.target.rpartition(".")
        setattr(graph.get_submodule(parent), name, fuse_conv_bn_eval(conv, norm))
        node.replace_all_uses_with(source)
        graph.graph.erase_node(node)
    graph.graph.lint()
    graph.delete_all_unused_submodules()
    graph.recompile()
    return graph
