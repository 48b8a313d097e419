"""Where and how one training computes: device, mixed precision, loaders, DDP and compilation."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import DEFAULT_CHECKPOINT_EVERY_S
from . import distributed


@dataclass
class Runtime:
    """Where and how to compute: device, mixed precision, loader workers, progress display,
    compilation, and how often to checkpoint (seconds of training; 0 = after every epoch)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    workers: int = 0
    channels_last: bool = False
    progress: bool = True
    compile: bool = False
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY_S

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """bfloat16 where the GPU has it (no loss scaling needed), else float16 with a GradScaler."""
        if not self.amp or self.device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def autocast(self):
        dtype = self.amp_dtype
        return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def loader(self, dataset: Dataset, batch_size: int = 1, batch_sampler: distributed.RankBatches | None = None,
               collate_fn=None) -> DataLoader:
        """Training batches from ``batch_sampler``; otherwise in order, ``batch_size`` at a time (evaluation).
        ``collate_fn`` is the task's (None: torch's default stacking).

        An evaluation that fits in one batch skips the workers: starting them costs more than they save.
        """
        one_batch = batch_sampler is None and len(dataset) <= batch_size
        return DataLoader(
            dataset,
            batch_size=1 if batch_sampler is not None else batch_size,
            batch_sampler=batch_sampler,
            shuffle=False,
            num_workers=0 if one_batch else self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            collate_fn=collate_fn,
        )

    def train_module(self, module: nn.Module) -> nn.Module:
        """What the training step calls: DDP around ``module`` under torchrun, compiled with ``compile``.

        Built per phase, after freezing, because DDP registers exactly the parameters that train.
        Evaluation, checkpoints and state dicts use ``module`` itself (no wrapper prefixes).
        """
        if distributed.world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return torch.compile(module) if self.compile else module

    def to_device(self, x):
        """A batch of inputs on the device: a tensor, or a list of them (a detector's images of varying size)."""
        if isinstance(x, (list, tuple)):
            return [self.to_device(t) for t in x]
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def convs_channels_last(model: nn.Module) -> nn.Module:
    """The convolutions' weights in channels-last layout, in place; ``model`` back.

    ``model.to(memory_format=...)`` converts every 4- and 5-D tensor and fails on a 5-D one
    ("required rank 4 tensor"): torch.fx turns timm Swin's attention masks into 5-D constants.
    Only 2-D convolutions gain from the layout, so only their weights are converted.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return model
