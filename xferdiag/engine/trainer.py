"""The training loop for one (arm, seed): phases, early stopping, best checkpoint, exact resume.

After every epoch but the last the whole state (model, optimiser, scheduler, torch RNG, best
weights, early stopping counter, history) is written atomically to ``checkpoint.pt`` in the seed
folder, on a background thread while the next epoch trains. Data order comes from a generator
seeded by (seed, epoch), so a run killed at any moment and resumed replays exactly the epochs it
lost and ends with the same metrics as an uninterrupted run (CPU).

Under torchrun the same loop runs on every rank (see :mod:`.distributed`): the trained module is
wrapped in DistributedDataParallel, each rank takes its slice of every global batch, evaluation
is sharded and gathered back in order, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .. import rundir
from ..config import DEFAULT_CHECKPOINT_EVERY_S
from ..errors import TrainingDivergedError
from ..models import TransferModel
from . import distributed
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

    @property
    def epochs(self) -> int:
        return sum(p.epochs for p in self.phases)


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

    def loader(self, dataset: Dataset, batch_size: int = 1, batch_sampler: distributed.RankBatches | None = None) -> DataLoader:
        """Training batches from ``batch_sampler``; otherwise in order, ``batch_size`` at a time (evaluation).

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

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _my_shard(dataset: Dataset) -> Dataset:
    """This rank's contiguous slice (the whole dataset in a single process)."""
    return dataset if distributed.world_size() == 1 else Subset(dataset, distributed.shard(len(dataset)))


class _FeatureCache:
    """Backbone outputs for train/val/test, computed once per linear-probe phase.

    Under torchrun each rank extracts its slice and every rank gets the whole cache back: the
    backbone still runs once per example, and the head trains on the same cache everywhere.
    """

    def __init__(self, model: TransferModel, data: SplitData, runtime: Runtime):
        self.train, self.val, self.test = (self._extract(model, split, runtime) for split in (data.train_plain, data.val, data.test))

    @staticmethod
    def _extract(model: TransferModel, dataset: Dataset, runtime: Runtime) -> TensorDataset:
        features, labels = extract_features(model.backbone, _my_shard(dataset), device=runtime.device, workers=runtime.workers)
        return TensorDataset(distributed.gather_rows(features), distributed.gather_rows(labels))


def _predict(module: nn.Module, dataset: Dataset, runtime: Runtime, num_classes: int, batch_size: int) -> Evaluation:
    """Evaluate ``dataset`` in order; under torchrun each rank runs its slice and all get every row back."""
    was_training = module.training
    module.eval()
    logits, labels = [], []
    with torch.inference_mode(), runtime.autocast():
        for x, y in runtime.loader(_my_shard(dataset), max(batch_size, 256)):
            logits.append(module(runtime.to_device(x)).float().cpu())
            labels.append(y)
    module.train(was_training)
    return evaluate_logits(distributed.gather_rows(torch.cat(logits)), distributed.gather_rows(torch.cat(labels)), num_classes)


def _rng_states(device: torch.device) -> list[dict]:
    """Every rank's generators (augmentation and dropout draw from them), in rank order."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return distributed.gather_objects(state)


def _restore_rng(states: list[dict] | dict, device: torch.device) -> None:
    """This rank's generators; a resume with more ranks than saved falls back to rank 0's (order still exact)."""
    states = states if isinstance(states, list) else [states]
    state = states[distributed.rank()] if distributed.rank() < len(states) else states[0]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _all_finite(tensors) -> bool:
    """Whether every floating-point tensor is free of NaN and infinity, read with one device sync.

    ``abs().amax()`` carries a NaN or an infinity through (a sum could overflow on finite values),
    and one reduction per tensor costs a sixth of ``isfinite().all()`` on the CPU.
    """
    peaks = [t.detach().abs().amax() for t in tensors if t.is_floating_point() and t.numel()]
    return not peaks or bool(torch.stack([p.float() for p in peaks]).isfinite().all())


def _cpu_copy(obj):
    """A CPU copy of every tensor in ``obj`` (nested dicts and lists): a snapshot later steps cannot change."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


class _CheckpointWriter:
    """Writes checkpoints on a background thread, so the next epoch trains while the disk works.

    It is handed snapshots (CPU copies), so each file holds exactly the epoch it names. At most one
    write is in flight, and :meth:`ArmTrainer.fit` joins it before the checkpoint is replaced or
    deleted and before any exception leaves, so "the last good checkpoint" is always on disk.
    """

    def __init__(self, path: Path):
        self.path = path
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, state: dict) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(state,), name="xferdiag-checkpoint")
        self._thread.start()

    def _write(self, state: dict) -> None:
        try:
            with rundir.atomic_path(self.path) as tmp:
                torch.save(state, tmp)
        except BaseException as exc:  # handed to the training thread by wait()
            self._error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wait(self) -> None:
        """Join, and raise what the write raised (a full disk must not go unnoticed)."""
        self.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


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
        self._writer = _CheckpointWriter(self.checkpoint_path)
        try:
            return self._fit(model, data, reference)
        finally:
            self._writer.join()

    def _fit(self, model: TransferModel, data: SplitData, reference: dict[str, torch.Tensor] | None) -> dict:
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
        total = self.plan.epochs
        started = time.perf_counter() - (state["seconds"] if state else 0.0)
        bar = self._progress_bar(total, done)
        last_checkpoint = time.perf_counter()

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
            module = self.runtime.train_module(model.head if cache is not None else model)
            scaler = self.runtime.grad_scaler()
            for epoch in range(done, phase_end):
                tick = time.perf_counter()
                train_loss = self._train_epoch(model, module, phase, data, cache, optimizer, scaler, reference, epoch)
                val = self._evaluate(model, data, cache, "val")
                finite_weights = _all_finite(model.state_dict().values())
                if not (math.isfinite(train_loss) and math.isfinite(val.loss) and finite_weights):  # before saving: keep the last good checkpoint
                    bar.close()
                    what = (f"training loss became {train_loss}" if not math.isfinite(train_loss) else
                            f"validation loss became {val.loss}" if not math.isfinite(val.loss) else "weights became NaN or infinite")
                    kept = f"the last good checkpoint (epoch {done}) is kept in {self.seed_dir}" if done else "no checkpoint was kept"
                    raise TrainingDivergedError(
                        f"{self.plan.name} seed {self.seed}: {what} at epoch {epoch + 1}; {kept}; "
                        f"start a new run with a lower --lr (now {self.plan.lr:g})"
                    )
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                history.append({
                    "epoch": epoch + 1, "phase": phase.strategy, "train_loss": train_loss, "val_loss": val.loss,
                    "val_accuracy": val.accuracy, "lr": lr, "seconds": time.perf_counter() - tick,
                })
                done = epoch + 1
                weights = None  # a snapshot of this epoch's weights, shared by best and the checkpoint
                if val.loss < best["val_loss"] - 1e-6:
                    weights = None if done == total else _cpu_copy(model.state_dict())  # after the last epoch the model itself is the best
                    best = {"val_loss": val.loss, "epoch": done, "state": weights, "val": val.summary()}
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                stopped = self.plan.patience is not None and bad_epochs >= self.plan.patience
                if not (stopped or done == total) and self._checkpoint_due(last_checkpoint):  # the last epoch's results come next
                    weights = weights if weights is not None else _cpu_copy(model.state_dict())
                    self._save_checkpoint(weights, optimizer, scheduler, phase_index, done, best, bad_epochs, history, time.perf_counter() - started)
                    last_checkpoint = time.perf_counter()
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

    def _train_epoch(self, model, module, phase, data, cache, optimizer, scaler, reference, epoch) -> float:
        """One epoch over the global batches; returns the mean training loss over every rank's examples.

        The loss total stays on the device (float64, the same arithmetic as summing Python floats)
        and is read once per epoch, so the GPU never waits for the host inside the loop.
        """
        rt = self.runtime
        set_train_mode(model, phase)
        dataset = cache.train if cache is not None else data.train
        batches = distributed.RankBatches(len(dataset), self.plan.batch_size, _epoch_generator(self.seed, epoch))
        total, count = torch.zeros((), dtype=torch.float64, device=rt.device), 0
        for (x, y), weight in zip(rt.loader(dataset, batch_sampler=batches), batches.weights):
            x, y = rt.to_device(x), y.to(rt.device, non_blocking=True)
            with rt.autocast():
                loss = nn.functional.cross_entropy(module(x).float(), y)
                if self.plan.l2sp > 0 and reference is not None:
                    loss = loss + l2sp_penalty(model, reference, self.plan.l2sp)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss if weight == 1 else loss * weight).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().double() * len(y)
            count += len(y)
        total, count = distributed.all_sum([total, count])
        return total / max(count, 1)

    def _evaluate(self, model, data: SplitData, cache: _FeatureCache | None, split: str) -> Evaluation:
        """The ``split`` ("val" or "test") through the whole model, or through the head alone on a
        linear probe's cached features."""
        module, splits = (model, data) if cache is None else (model.head, cache)
        return _predict(module, getattr(splits, split), self.runtime, self._num_classes(model), self.plan.batch_size)

    @staticmethod
    def _num_classes(model: TransferModel) -> int:
        return [m for m in model.head.modules() if isinstance(m, nn.Linear)][-1].out_features

    # --- persistence --------------------------------------------------------------------------
    def _progress_bar(self, total: int, done: int):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=done, desc=f"{self.plan.name} seed {self.seed}", unit="epoch",
                    disable=not (self.runtime.progress and distributed.is_main()), leave=False)

    def _checkpoint_due(self, last: float) -> bool:
        """Whether ``checkpoint_every`` seconds have passed; every rank follows rank 0's clock,
        because saving is a collective."""
        return distributed.on_main(lambda: time.perf_counter() - last >= self.runtime.checkpoint_every)

    def _save_checkpoint(self, weights, optimizer, scheduler, phase_index, epoch, best, bad_epochs, history, seconds) -> None:
        """Hand a snapshot to the writer thread (weights shared with ``best`` are stored once)."""
        rng = _rng_states(self.runtime.device)  # a collective: every rank takes part, rank 0 writes
        if not distributed.is_main():
            return
        self._writer.submit({
            "model": weights, "optimizer": _cpu_copy(optimizer.state_dict()), "scheduler": _cpu_copy(scheduler.state_dict()),
            "phase_index": phase_index, "epoch": epoch, "best": dict(best), "bad_epochs": bad_epochs,
            "history": list(history), "rng": rng, "seconds": seconds,
        })

    def _load_checkpoint(self) -> dict | None:
        """Rank 0 reads the checkpoint (onto the CPU: RNG states must stay there) and every rank gets it."""
        return distributed.on_main(self._read_checkpoint)

    def _read_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.is_file():
            return None
        from ..errors import CheckpointError

        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{self.checkpoint_path}: cannot resume from this checkpoint ({type(exc).__name__}); delete it to start the seed over") from None

    def _finish(self, model, data, cache, best, history, epochs_run, seconds) -> dict:
        """Evaluate the best weights on the test split; a linear probe reuses its cached features (the
        backbone is frozen). Validation metrics come from the best epoch itself, measured on the
        same weights (re-measured only for a checkpoint written before best epochs kept them)."""
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        test = self._evaluate(model, data, cache, "test")
        val = best.get("val") or self._evaluate(model, data, cache, "val").summary()
        metrics = {
            "test": test.summary(), "val": val, "epochs_run": epochs_run,
            "best_epoch": best["epoch"], "train_seconds": seconds,
            "budget": {"epochs": self.plan.epochs, "lr": self.plan.lr},  # what the verdict compares
        }
        if not distributed.is_main():
            return metrics
        self._writer.wait()  # the last checkpoint lands before it is deleted below
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
