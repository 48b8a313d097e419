"""Fine-tuning strategies as data: which blocks train, in which mode, at which learning rate.

A strategy never touches the training loop; it only answers three questions for the loop:
which parameters get gradients, which modules stay in eval mode (a frozen backbone's BatchNorm
must not update its running statistics while the head trains), and the optimiser's parameter
groups (layer-wise learning-rate decay, a multiplier for pretrained layers, L2-SP).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ModelError
from ..models import TransferModel


@dataclass(frozen=True)
class Phase:
    """One stretch of training under one strategy: ``strategy`` for ``epochs`` epochs."""

    strategy: str
    epochs: int
    trainable_blocks: int | None = None  # for 'partial': the last N backbone blocks

    @property
    def uses_feature_cache(self) -> bool:
        return self.strategy == "linear-probe"


def phases_for(strategy: str, epochs: int, lp_epochs: int | None, partial_blocks: int) -> list[Phase]:
    """``lp-ft`` is a linear probe followed by full fine-tuning (Kumar et al. 2022); the rest are one phase."""
    if strategy == "lp-ft":
        lp = lp_epochs if lp_epochs is not None else max(1, epochs // 2)
        return [Phase("linear-probe", lp), Phase("full", epochs - lp)]
    return [Phase(strategy, epochs, partial_blocks if strategy == "partial" else None)]


def trainable_block_names(model: TransferModel, phase: Phase) -> list[str]:
    if phase.strategy == "full":
        return list(model.blocks)
    if phase.strategy == "partial":
        return list(model.blocks[-phase.trainable_blocks :]) if phase.trainable_blocks else []
    return []


def kept_frozen(model: TransferModel, freeze_embeddings: bool) -> tuple[str, ...]:
    """Backbone modules that stay frozen in every phase whatever the strategy: with ``freeze_embeddings``,
    a text model's embeddings (:attr:`~xferdiag.modalities.text.model.TextClassifier.embeddings_block`)."""
    if not freeze_embeddings:
        return ()
    block = getattr(model, "embeddings_block", None)
    if block is None:
        raise ModelError("freeze_embeddings: only a text model has embeddings to freeze; this model takes images or table rows")
    return (block,)


def _inside(name: str, blocks) -> bool:
    return any(name == b or name.startswith(b + ".") for b in blocks)


def apply_freezing(model: TransferModel, phase: Phase, keep_frozen: tuple[str, ...] = ()) -> None:
    """Set ``requires_grad``: the head always trains; backbone blocks only where the phase says, never
    those in ``keep_frozen`` (see :func:`kept_frozen`)."""
    trainable = set(trainable_block_names(model, phase))
    full = phase.strategy == "full"
    for name, param in model.backbone.named_parameters():
        param.requires_grad = (full or _inside(name, trainable)) and not _inside(name, keep_frozen)
    for param in model.head.parameters():
        param.requires_grad = True


def set_train_mode(model: TransferModel, phase: Phase, keep_frozen: tuple[str, ...] = ()) -> None:
    """Train mode for what trains; eval mode for every frozen module so BatchNorm and Dropout stay put.

    Blocks may be nested (``_blocks.3``, ``encoder.layers.encoder_layer_11``): a module is frozen
    unless it lies inside a trainable block or contains one. ``keep_frozen`` modules are frozen in every phase.
    """
    model.train()
    for name in keep_frozen:
        model.backbone.get_submodule(name).eval()
    if phase.strategy == "full":
        return
    trainable = trainable_block_names(model, phase)
    for name, module in model.backbone.named_modules():
        inside = _inside(name, trainable)
        holds = any(b.startswith(name + ".") for b in trainable) if name else bool(trainable)
        if not (inside or holds):
            module.eval()


def parameter_groups(
    model: TransferModel, phase: Phase, lr: float, backbone_lr_mult: float, layer_decay: float, weight_decay: float, l2sp: bool
) -> list[dict]:
    """Head at ``lr``; backbone block i of B at ``lr * backbone_lr_mult * layer_decay**(B - i)``.

    With L2-SP the penalty toward the pretrained weights replaces weight decay on the backbone.
    """
    groups = [{"name": "head", "params": [p for p in model.head.parameters()], "lr": lr, "weight_decay": weight_decay}]
    if phase.strategy in ("linear-probe", "freeze"):
        return groups
    blocks = model.blocks
    assigned: set[int] = set()
    for i, block in enumerate(blocks):
        params = [p for p in model.backbone.get_submodule(block).parameters() if p.requires_grad and id(p) not in assigned]
        assigned.update(id(p) for p in params)
        if params:
            scale = backbone_lr_mult * layer_decay ** (len(blocks) - i)
            groups.append({"name": block, "params": params, "lr": lr * scale, "weight_decay": 0.0 if l2sp else weight_decay})
    rest = [p for p in model.backbone.parameters() if p.requires_grad and id(p) not in assigned]
    if rest:
        scale = backbone_lr_mult * layer_decay ** (len(blocks) + 1)
        groups.append({"name": "backbone-other", "params": rest, "lr": lr * scale, "weight_decay": 0.0 if l2sp else weight_decay})
    return groups


def l2sp_penalty(model: TransferModel, reference: dict[str, torch.Tensor], strength: float) -> torch.Tensor:
    """L2-SP (Li et al. 2018): ``strength/2 * ||w - w0||^2`` over the trainable pretrained weights."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for name, param in model.backbone.named_parameters():
        if param.requires_grad and name in reference:
            total = total + (param - reference[name]).pow(2).sum()
    return 0.5 * strength * total


FUSED_DEVICES = ("cpu", "cuda")  # where PyTorch ships fused SGD/Adam/AdamW kernels


def fused_optimizer(device: torch.device) -> bool:
    """Whether the optimiser step runs as one fused kernel over all parameters.

    PyTorch's default on the CPU is a Python loop over tensors: for a ResNet-18 the AdamW step
    then takes about as long as the backward pass (69 ms against 16 ms fused, one thread).
    """
    return device.type in FUSED_DEVICES


def make_optimizer(name: str, groups: list[dict], lr: float, momentum: float) -> torch.optim.Optimizer:
    """The named optimiser over ``groups``, fused where the parameters' device has the kernels."""
    fused = fused_optimizer(groups[0]["params"][0].device)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0, fused=fused)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, fused=fused)
    return torch.optim.AdamW(groups, lr=lr, fused=fused)


def make_scheduler(optimizer, schedule: str, epochs: int, warmup: int, step_size: int, gamma: float):
    """Per-epoch LambdaLR: linear warm-up, then cosine to zero, step decay, or constant."""
    import math

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        if schedule == "cosine":
            span = max(1, epochs - warmup)
            return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / span))
        if schedule == "step":
            return gamma ** ((epoch - warmup) // step_size)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

