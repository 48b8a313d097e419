"""The training loop for one (arm, seed): phases, early stopping, best checkpoint, exact resume.

After every epoch the whole state (model, optimiser, scheduler, torch RNG, best weights, early
stopping counter, history) is written atomically to ``checkpoint.pt`` in the seed folder. Data
order comes from a generator seeded by (seed, epoch), so a run killed at any moment and resumed
replays exactly the epochs it lost and ends with the same metrics as an uninterrupted run (CPU).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset

from .. import rundir
from ..errors import TrainingDivergedError
from ..models import TransferModel
from .features import extract_features
from .metrics import Evaluation, evaluate_logits
from .strategies import (
    Phase,
    apply_freezing,
    l2sp_penalty,
    make_optimizer,
    make_scheduler,
    parameter_groups,
    set_train_mode,
)

HISTORY_COLUMNS = ["epoch", "phase", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]


@dataclass
class ArmPlan:
    """How one arm trains: its phases and optimisation settings (shared by every seed of the arm)."""

    name: str
    phases: list[Phase]
    lr: float
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    backbone_lr_mult: float = 1.0
    layer_decay: float = 1.0
    l2sp: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1
    patience: int | None = None
    batch_size: int = 64


@dataclass
class SplitData:
    """The datasets one arm needs: augmented train, plain train (for the feature cache), val, test."""

    train: Dataset
    train_plain: Dataset
    val: Dataset
    test: Dataset
    num_classes: int


@dataclass
class Runtime:
    """Where and how to compute: device, mixed precision, loader workers, progress display."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    workers: int = 0
    channels_last: bool = False
    progress: bool = True

    def autocast(self):
        if not self.amp or self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        fp16 = self.amp and self.device.type == "cuda" and not torch.cuda.is_bf16_supported()
        return torch.amp.GradScaler("cuda", enabled=fp16)

    def loader(self, dataset: Dataset, batch_size: int, generator: torch.Generator | None = None) -> DataLoader:
        sampler = RandomSampler(dataset, generator=generator) if generator is not None else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


class _FeatureCache:
    """Backbone outputs for train/val/test, computed once per linear-probe phase."""

    def __init__(self, model: TransferModel, data: SplitData, runtime: Runtime):
        device = runtime.device
        self.train = TensorDataset(*extract_features(model.backbone, data.train_plain, device=device, workers=runtime.workers))
        self.val = TensorDataset(*extract_features(model.backbone, data.val, device=device, workers=runtime.workers))
        self.test = TensorDataset(*extract_features(model.backbone, data.test, device=device, workers=runtime.workers))


def _predict(module: nn.Module, dataset: Dataset, runtime: Runtime, num_classes: int, batch_size: int) -> Evaluation:
    was_training = module.training
    module.eval()
    logits, labels = [], []
    with torch.inference_mode(), runtime.autocast():
        for x, y in runtime.loader(dataset, max(batch_size, 256)):
            logits.append(module(runtime.to_device(x)).float().cpu())
            labels.append(y)
    module.train(was_training)
    return evaluate_logits(torch.cat(logits), torch.cat(labels), num_classes)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


class ArmTrainer:
    """Trains one model for one seed under an :class:`ArmPlan`, writing into ``seed_dir``."""

    def __init__(self, plan: ArmPlan, runtime: Runtime, seed_dir: Path, seed: int):
        self.plan = plan
        self.runtime = runtime
        self.seed_dir = Path(seed_dir)
        self.seed = seed
        self.checkpoint_path = self.seed_dir / "checkpoint.pt"

    # --- public -------------------------------------------------------------------------------
    def fit(self, model: TransferModel, data: SplitData, reference: dict[str, torch.Tensor] | None = None) -> dict:
        """Train (resuming from ``checkpoint.pt`` when present), evaluate the best weights, write results."""
        model.to(self.runtime.device)
        if self.runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        state = self._load_checkpoint()
        history: list[dict] = state["history"] if state else []
        best = state["best"] if state else {"val_loss": math.inf, "epoch": 0, "state": None}
        bad_epochs = state["bad_epochs"] if state else 0
        done = state["epoch"] if state else 0
        if state:
            model.load_state_dict(state["model"])
        total = sum(p.epochs for p in self.plan.phases)
        started = time.perf_counter() - (state["seconds"] if state else 0.0)
        bar = self._progress_bar(total, done)

        phase_start = 0
        stopped = False
        cache = None
        for phase_index, phase in enumerate(self.plan.phases):
            phase_end = phase_start + phase.epochs
            if done >= phase_end or stopped or phase.epochs == 0:
                phase_start = phase_end
                continue
            apply_freezing(model, phase)
            optimizer = make_optimizer(self.plan.optimizer, self._groups(model, phase, reference), self.plan.lr, self.plan.momentum)
            scheduler = make_scheduler(optimizer, self.plan.schedule, phase.epochs, self.plan.warmup_epochs, self.plan.step_size, self.plan.gamma)
            if state and state["phase_index"] == phase_index:
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
            if state:
                _restore_rng(state["rng"], self.runtime.device)
                state = None
            cache = _FeatureCache(model, data, self.runtime) if phase.uses_feature_cache else None
            scaler = self.runtime.grad_scaler()
            for epoch in range(done, phase_end):
                tick = time.perf_counter()
                train_loss = self._train_epoch(model, phase, data, cache, optimizer, scaler, reference, epoch)
                if not math.isfinite(train_loss):
                    bar.close()
                    raise TrainingDivergedError(
                        f"{self.plan.name} seed {self.seed}: training loss became {train_loss} at epoch {epoch + 1}; "
                        f"lower --lr (now {self.plan.lr:g}); the last good checkpoint is kept in {self.seed_dir}"
                    )
                val = self._evaluate(model, data.val if cache is None else cache.val, head_only=cache is not None)
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                history.append({
                    "epoch": epoch + 1, "phase": phase.strategy, "train_loss": train_loss, "val_loss": val.loss,
                    "val_accuracy": val.accuracy, "lr": lr, "seconds": time.perf_counter() - tick,
                })
                if val.loss < best["val_loss"] - 1e-6:
                    best = {"val_loss": val.loss, "epoch": epoch + 1, "state": copy.deepcopy(model.state_dict())}
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                done = epoch + 1
                stopped = self.plan.patience is not None and bad_epochs >= self.plan.patience
                self._save_checkpoint(model, optimizer, scheduler, phase_index, done, best, bad_epochs, history, time.perf_counter() - started)
                bar.update(1)
                bar.set_postfix(val_acc=f"{val.accuracy:.3f}", val_loss=f"{val.loss:.3f}")
                if stopped:
                    break
            phase_start = phase_end
        bar.close()
        return self._finish(model, data, cache, best, history, done, time.perf_counter() - started)

    # --- training -----------------------------------------------------------------------------
    def _groups(self, model, phase, reference):
        p = self.plan
        return parameter_groups(model, phase, p.lr, p.backbone_lr_mult, p.layer_decay, p.weight_decay, l2sp=p.l2sp > 0 and reference is not None)

    def _train_epoch(self, model, phase, data, cache, optimizer, scaler, reference, epoch) -> float:
        rt = self.runtime
        set_train_mode(model, phase)
        module = model.head if cache is not None else model
        dataset = cache.train if cache is not None else data.train
        total, count = 0.0, 0
        for x, y in rt.loader(dataset, self.plan.batch_size, _epoch_generator(self.seed, epoch)):
            x, y = rt.to_device(x), y.to(rt.device, non_blocking=True)
            with rt.autocast():
                loss = nn.functional.cross_entropy(module(x).float(), y)
                if self.plan.l2sp > 0 and reference is not None:
                    loss = loss + l2sp_penalty(model, reference, self.plan.l2sp)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * len(y)
            count += len(y)
        return total / max(count, 1)

    def _evaluate(self, model, dataset, head_only: bool) -> Evaluation:
        module = model.head if head_only else model
        return _predict(module, dataset, self.runtime, self._num_classes(model), self.plan.batch_size)

    @staticmethod
    def _num_classes(model: TransferModel) -> int:
        return [m for m in model.head.modules() if isinstance(m, nn.Linear)][-1].out_features

    # --- persistence --------------------------------------------------------------------------
    def _progress_bar(self, total: int, done: int):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=done, desc=f"{self.plan.name} seed {self.seed}", unit="epoch", disable=not self.runtime.progress, leave=False)

    def _save_checkpoint(self, model, optimizer, scheduler, phase_index, epoch, best, bad_epochs, history, seconds) -> None:
        state = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "phase_index": phase_index, "epoch": epoch, "best": best, "bad_epochs": bad_epochs,
            "history": history, "rng": _rng_state(self.runtime.device), "seconds": seconds,
        }
        with rundir.atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.is_file():
            return None
        from ..errors import CheckpointError

        try:
            return torch.load(self.checkpoint_path, map_location=self.runtime.device, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{self.checkpoint_path}: cannot resume from this checkpoint ({type(exc).__name__}); delete it to start the seed over") from None

    def _finish(self, model, data, cache, best, history, epochs_run, seconds) -> dict:
        """Evaluate the best weights; a linear probe reuses its cached features (the backbone is frozen)."""
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        test = self._evaluate(model, data.test if cache is None else cache.test, head_only=cache is not None)
        val = self._evaluate(model, data.val if cache is None else cache.val, head_only=cache is not None)
        metrics = {
            "test": test.summary(), "val": val.summary(), "epochs_run": epochs_run,
            "best_epoch": best["epoch"], "train_seconds": seconds,
        }
        d = self.seed_dir
        with rundir.atomic_path(d / "model.pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        rundir.write_csv(d / "history.csv", HISTORY_COLUMNS, [[row[c] for c in HISTORY_COLUMNS] for row in history])
        rundir.write_npz(d / "predictions.npz", labels=test.labels, predictions=test.predictions, probabilities=test.probabilities)
        rundir.write_json(d / "metrics.json", metrics)  # written last: its presence marks the seed as done
        self.checkpoint_path.unlink(missing_ok=True)
        return metrics


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
