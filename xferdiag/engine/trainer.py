"""The training loop for one (arm, seed): phases, early stopping, the best epoch's weights, exact resume.

:meth:`ArmTrainer.fit` trains and returns a :class:`TrainResult` (best weights, history, test
predictions, metrics); the caller saves it. Given a checkpoint file by its caller, after every
epoch but the last (at most every ``checkpoint_every`` seconds) it writes the whole state there
atomically, on a background thread while the next epoch trains (see :mod:`.checkpoint`). Data
order comes from a generator seeded by (seed, epoch), so a run killed at any moment and resumed
replays exactly the epochs it lost and ends with the same metrics as an uninterrupted run (CPU).

Under torchrun the same loop runs on every rank (see :mod:`.distributed`): the trained module is
wrapped in DistributedDataParallel, each rank takes its slice of every global batch, evaluation
is sharded and gathered back in order, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from ..config import RunConfig
from ..errors import TrainingDivergedError
from ..models import TransferModel
from ..tasks.base import Task, TaskEvaluation
from . import distributed
from .checkpoint import (
    Best,
    Checkpoint,
    CheckpointWriter,
    TrainingState,
    cpu_copy,
    load_checkpoint,
    restore_rng,
    rng_states,
)
from .features import extract_features
from .runtime import Runtime, convs_channels_last
from .strategies import (
    Phase,
    apply_freezing,
    kept_frozen,
    l2sp_penalty,
    make_optimizer,
    make_scheduler,
    parameter_groups,
    set_train_mode,
)

__all__ = ["ArmPlan", "ArmTrainer", "Runtime", "SplitData", "TrainResult", "evaluate_model", "seed_everything"]


_RUN_DEFAULTS = RunConfig()
"""The optimisation defaults have one owner, the run's configuration."""


def token_lengths(dataset, model) -> torch.Tensor | None:
    """Tokens per text of a dataset of token-id rows (None for anything else: images, tables, cached features)."""
    pad = getattr(model, "pad_token_id", None)
    ids = getattr(dataset, "tensors", (None,))[0]
    if pad is None or ids is None or ids.dtype != torch.long or ids.ndim != 2:
        return None
    return (ids != pad).sum(1)


@dataclass
class ArmPlan:
    """How one arm trains: its phases and optimisation settings (shared by every seed of the arm)."""

    name: str
    phases: list[Phase]
    lr: float
    optimizer: str = _RUN_DEFAULTS.optimizer
    momentum: float = _RUN_DEFAULTS.momentum
    weight_decay: float = _RUN_DEFAULTS.weight_decay
    backbone_lr_mult: float = _RUN_DEFAULTS.backbone_lr_mult
    layer_decay: float = _RUN_DEFAULTS.layer_decay
    l2sp: float = _RUN_DEFAULTS.l2sp
    schedule: str = _RUN_DEFAULTS.schedule
    warmup_epochs: int = _RUN_DEFAULTS.warmup_epochs
    step_size: int = _RUN_DEFAULTS.step_size
    gamma: float = _RUN_DEFAULTS.gamma
    patience: int | None = _RUN_DEFAULTS.patience
    batch_size: int = _RUN_DEFAULTS.batch_size
    group_by_length: bool = _RUN_DEFAULTS.group_by_length
    freeze_embeddings: bool = False  # a text model's embeddings stay frozen in every phase (the transfer arm's option)
    task: Task = field(kw_only=True)  # what is predicted: the step's loss, scoring, the best epoch (a plug-in of xferdiag.tasks)

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


@dataclass(frozen=True)
class TrainResult:
    """What training one (arm, seed) produced, for its caller to save.

    ``state_dict`` holds the best epoch's weights (the trained model holds them too), ``history``
    one row per epoch, ``test`` the best weights' predictions on the test split, and ``metrics``
    the seed's summary (test and validation scores, epochs run, best epoch, seconds, budget).
    """

    state_dict: dict[str, torch.Tensor]
    history: list[dict]
    test: TaskEvaluation
    metrics: dict


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

    def __init__(self, model: TransferModel, data: SplitData, runtime: Runtime, store: dict | None = None):
        weights = _fingerprint(model.backbone) if store is not None else None
        self.train, self.val, self.test = (self._extract(model, split, runtime, store, weights)
                                           for split in (data.train_plain, data.val, data.test))

    @staticmethod
    def _extract(model: TransferModel, dataset: Dataset, runtime: Runtime, store: dict | None, weights) -> TensorDataset:
        """The backbone's features of ``dataset``; from ``store`` when the same dataset object was
        extracted with the same backbone weights before (the seeds of a frozen-backbone arm)."""
        if store is not None and id(dataset) in store and store[id(dataset)][0] is dataset and store[id(dataset)][1] == weights:
            return store[id(dataset)][2]
        features, labels = extract_features(model.backbone, _my_shard(dataset), device=runtime.device, workers=runtime.workers)
        result = TensorDataset(distributed.gather_rows(features), distributed.gather_rows(labels))
        if store is not None:
            store[id(dataset)] = (dataset, weights, result)
        return result


def _fingerprint(module: nn.Module) -> tuple:
    """Every tensor's name, shape, sum and sum of squares (float64): equal for equal weights, and for
    different pretrained or trained weights different in practice."""
    with torch.no_grad():
        return tuple((name, tuple(t.shape), float(t.double().sum()), float(t.double().square().sum()))
                     for name, t in module.state_dict().items() if t.is_floating_point())


def _predict(module: nn.Module, dataset: Dataset, runtime: Runtime, task: Task, num_classes: int, batch_size: int) -> TaskEvaluation:
    """Score ``dataset`` in order; under torchrun each rank runs its slice and the task gathers every row back."""
    was_training = module.training
    module.eval()
    outputs, targets = [], []
    with torch.inference_mode(), runtime.autocast():
        for x, y in runtime.loader(_my_shard(dataset), max(batch_size, task.eval_batch_floor), collate_fn=task.collate):
            outputs.append(task.predict_batch(module, runtime.to_device(x)))
            targets.append(y)
    module.train(was_training)
    return task.evaluate(outputs, targets, num_classes)


def evaluate_model(module: nn.Module, data: SplitData, runtime: Runtime, task: Task, batch_size: int) -> dict[str, TaskEvaluation]:
    """The validation and test splits scored as a trained arm's are: a model trained elsewhere (``audit``)."""
    return {split: _predict(module, getattr(data, split), runtime, task, data.num_classes, batch_size) for split in ("val", "test")}


def _all_finite(tensors) -> bool:
    """Whether every floating-point tensor is free of NaN and infinity, read with one device sync.

    ``abs().amax()`` carries a NaN or an infinity through (a sum could overflow on finite values),
    and one reduction per tensor costs a sixth of ``isfinite().all()`` on the CPU.
    """
    peaks = [t.detach().abs().amax() for t in tensors if t.is_floating_point() and t.numel()]
    return not peaks or bool(torch.stack([p.float() for p in peaks]).isfinite().all())


class ArmTrainer:
    """Trains one model for one seed under an :class:`ArmPlan`; resumes from and writes mid-training
    state to ``checkpoint`` when its caller names one (None: no checkpoints, e.g. a short search).
    A ``feature_store`` dict shared by the seeds of an arm lets a linear probe reuse the frozen
    backbone's features of the same datasets instead of running the backbone again."""

    def __init__(self, plan: ArmPlan, runtime: Runtime, seed: int, *, checkpoint: Path | None = None,
                 feature_store: dict | None = None):
        self.feature_store = feature_store
        self.plan = plan
        self.runtime = runtime
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None

    # --- public -------------------------------------------------------------------------------
    def fit(self, model: TransferModel, data: SplitData, reference: dict[str, torch.Tensor] | None = None) -> TrainResult:
        """Train (resuming from the checkpoint when there is one), evaluate the best weights on the test split.

        The model is left holding the best weights. The caller saves the result (then deletes the checkpoint).
        """
        self._writer = CheckpointWriter(self.checkpoint)
        try:
            return self._fit(model, data, reference)
        finally:
            self._writer.join()

    def _fit(self, model: TransferModel, data: SplitData, reference: dict[str, torch.Tensor] | None) -> TrainResult:
        model.to(self.runtime.device)
        if self.runtime.channels_last:
            convs_channels_last(model)
        saved = load_checkpoint(self.checkpoint)
        state = saved.state if saved else TrainingState()
        if saved:
            model.load_state_dict(saved.model)
        self._started = time.perf_counter() - (saved.seconds if saved else 0.0)
        self._bar = self._progress_bar(state.epoch)
        self._last_checkpoint = time.perf_counter()
        cache, phase_end = None, 0
        for phase_index, phase in enumerate(self.plan.phases):
            phase_end += phase.epochs
            if state.epoch >= phase_end or state.stopped or phase.epochs == 0:
                continue
            cache = self._run_phase(model, data, reference, phase_index, phase_end, state, saved)
            saved = None  # resumed: later phases start fresh
        self._bar.close()
        self._writer.wait()  # the last checkpoint has landed (or its error is raised) before the caller saves
        return self._finish(model, data, cache, state, time.perf_counter() - self._started)

    def _run_phase(self, model, data: SplitData, reference, phase_index: int, phase_end: int, state: TrainingState,
                   saved: Checkpoint | None) -> _FeatureCache | None:
        """Train phase ``phase_index`` from ``state.epoch`` to epoch ``phase_end`` or the early stop, continuing
        ``saved`` when resuming; return the phase's feature cache (a linear probe's), for the test evaluation."""
        plan = self.plan
        phase = plan.phases[phase_index]
        apply_freezing(model, phase, kept_frozen(model, plan.freeze_embeddings))
        optimizer = make_optimizer(plan.optimizer, self._groups(model, phase, reference), plan.lr, plan.momentum)
        scheduler = make_scheduler(optimizer, plan.schedule, phase.epochs, plan.warmup_epochs, plan.step_size, plan.gamma)
        if saved is not None:
            if saved.phase_index == phase_index:
                optimizer.load_state_dict(saved.optimizer)
                scheduler.load_state_dict(saved.scheduler)
            restore_rng(saved.rng, self.runtime.device)
        cached = phase.uses_feature_cache and plan.task.caches_features
        cache = _FeatureCache(model, data, self.runtime, self.feature_store) if cached else None
        module = self.runtime.train_module(model.head if cache is not None else model)
        scaler = self.runtime.grad_scaler()
        for epoch in range(state.epoch, phase_end):
            tick = time.perf_counter()
            train_loss = self._train_epoch(model, module, phase, data, cache, optimizer, scaler, reference, epoch)
            val = self._evaluate(model, data, cache, "val")
            self._check_finite(model, train_loss, val, epoch, state.epoch)  # before saving: keep the last good checkpoint
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            state.history.append({"epoch": epoch + 1, "phase": phase.strategy, "train_loss": train_loss, **val.history(),
                                  "lr": lr, "seconds": time.perf_counter() - tick})
            state.epoch = epoch + 1
            weights = self._keep_if_best(model, state, val)
            if not (state.stopped or state.epoch == self.plan.epochs) and self._checkpoint_due():  # the last epoch's results come next
                current = weights if weights is not None else cpu_copy(model.state_dict())
                self._save_checkpoint(state, current, optimizer, scheduler, phase_index)
            self._bar.update(1)
            self._bar.set_postfix(val.postfix())
            if state.stopped:
                break
        return cache

    # --- training -----------------------------------------------------------------------------
    def _groups(self, model, phase, reference):
        p = self.plan
        l2sp = p.l2sp > 0 and reference is not None
        return parameter_groups(model, phase, p.lr, p.backbone_lr_mult, p.layer_decay, p.weight_decay, l2sp=l2sp)

    def _train_epoch(self, model, module, phase, data, cache, optimizer, scaler, reference, epoch) -> float:
        """One epoch over the global batches; returns the mean training loss over every rank's examples.

        The loss total stays on the device (float64, the same arithmetic as summing Python floats)
        and is read once per epoch, so the GPU never waits for the host inside the loop.
        """
        rt = self.runtime
        set_train_mode(model, phase, kept_frozen(model, self.plan.freeze_embeddings))
        dataset = cache.train if cache is not None else data.train
        if hasattr(dataset, "set_epoch"):  # a dataset whose augmentation draws from (seed, epoch), as a detection set's
            dataset.set_epoch(self.seed, epoch)
        lengths = token_lengths(dataset, model) if self.plan.group_by_length else None
        batches = distributed.RankBatches(len(dataset), self.plan.batch_size, _epoch_generator(self.seed, epoch), lengths=lengths)
        task = self.plan.task
        total, count = torch.zeros((), dtype=torch.float64, device=rt.device), 0
        for (x, y), weight in zip(rt.loader(dataset, batch_sampler=batches, collate_fn=task.collate), batches.weights):
            x, y = rt.to_device(x), task.targets_to(y, rt.device)
            with rt.autocast():
                loss = task.train_loss(module, x, y)
                if self.plan.l2sp > 0 and reference is not None:
                    loss = loss + l2sp_penalty(model, reference, self.plan.l2sp)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss if weight == 1 else loss * weight).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().double() * len(y)
            count += len(y)
        distributed.share_buffers(model)
        total, count = distributed.all_sum([total, count])
        return total / max(count, 1)

    def _check_finite(self, model: TransferModel, train_loss: float, val: TaskEvaluation, epoch: int, done: int) -> None:
        """Stop with a clear error when the losses or the weights stop being finite numbers."""
        if math.isfinite(train_loss) and math.isfinite(val.selection) and _all_finite(model.state_dict().values()):
            return
        self._bar.close()
        what = (f"training loss became {train_loss}" if not math.isfinite(train_loss) else
                f"{val.selection_name} became {val.selection}" if not math.isfinite(val.selection) else "weights became NaN or infinite")
        kept = (f"the last good checkpoint (epoch {done}) is kept in {self.checkpoint.parent}"
                if done and self.checkpoint is not None else "no checkpoint was kept")
        raise TrainingDivergedError(
            f"{self.plan.name} seed {self.seed}: {what} at epoch {epoch + 1}; {kept}; "
            f"start a new run with a lower --lr (now {self.plan.lr:g})"
        )

    def _keep_if_best(self, model: TransferModel, state: TrainingState, val: TaskEvaluation) -> dict | None:
        """Update the best epoch and early stopping after ``state.epoch``; return the snapshot of this
        epoch's weights when one was taken (shared with the checkpoint, so it is stored once)."""
        weights = None
        if val.selection < state.best.selection - 1e-6:
            # after the last epoch the model itself is the best
            weights = None if state.epoch == self.plan.epochs else cpu_copy(model.state_dict())
            state.best = Best(val.selection, state.epoch, weights, val.summary())
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        state.stopped = self.plan.patience is not None and state.bad_epochs >= self.plan.patience
        return weights

    def _evaluate(self, model, data: SplitData, cache: _FeatureCache | None, split: str) -> TaskEvaluation:
        """The ``split`` ("val" or "test") through the whole model, or through the head alone on a
        linear probe's cached features."""
        module, splits = (model, data) if cache is None else (model.head, cache)
        return _predict(module, getattr(splits, split), self.runtime, self.plan.task, data.num_classes, self.plan.batch_size)

    # --- progress and checkpoints -------------------------------------------------------------
    def _progress_bar(self, done: int):
        from tqdm.auto import tqdm

        return tqdm(total=self.plan.epochs, initial=done, desc=f"{self.plan.name} seed {self.seed}", unit="epoch",
                    disable=not (self.runtime.progress and distributed.is_main()), leave=False)

    def _checkpoint_due(self) -> bool:
        """Whether a checkpoint file was named and ``checkpoint_every`` seconds have passed; every rank
        follows rank 0's clock, because saving is a collective."""
        if self.checkpoint is None:
            return False
        return distributed.on_main(lambda: time.perf_counter() - self._last_checkpoint >= self.runtime.checkpoint_every)

    def _save_checkpoint(self, state: TrainingState, weights: dict, optimizer, scheduler, phase_index: int) -> None:
        """Hand a snapshot to the writer thread (``weights`` shared with the best epoch's are stored once)."""
        seconds = time.perf_counter() - self._started
        rng = rng_states(self.runtime.device)  # a collective: every rank takes part, rank 0 writes
        if distributed.is_main():
            self._writer.submit(Checkpoint(state, weights, cpu_copy(optimizer.state_dict()), cpu_copy(scheduler.state_dict()),
                                           phase_index, rng, seconds))
        self._last_checkpoint = time.perf_counter()

    def _finish(self, model, data, cache, state: TrainingState, seconds: float) -> TrainResult:
        """Evaluate the best weights on the test split; a linear probe reuses its cached features (the
        backbone is frozen). Validation metrics come from the best epoch itself, measured on the
        same weights (re-measured only for a checkpoint written before best epochs kept them)."""
        best = state.best
        if best.state is not None:
            model.load_state_dict(best.state)
        test = self._evaluate(model, data, cache, "test")
        val = best.val or self._evaluate(model, data, cache, "val").summary()
        metrics = {
            "test": test.summary(), "val": val, "epochs_run": state.epoch,
            "best_epoch": best.epoch, "train_seconds": seconds,
            "budget": {"epochs": self.plan.epochs, "lr": self.plan.lr},  # what the verdict compares
        }
        return TrainResult(model.state_dict(), state.history, test, metrics)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
