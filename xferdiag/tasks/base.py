"""What a task plug-in supplies to the training loop: the loss of a step, how predictions are
batched and scored, and which number picks the best epoch.

The trainer (:mod:`xferdiag.engine.trainer`) is written once over this protocol; classification is
the first plug-in (:mod:`.classification`). A task whose model returns a dict of losses in train
mode and a list of predictions in eval mode (torchvision's detection contract) fits it as well as a
classifier's logits do: targets may be a list of per-example records of varying length (the task's
``collate``), and the score need not be a mean over examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..negative import Verdict
from .descriptor import TaskDescriptor


@dataclass(frozen=True)
class Judged:
    """A task's judgement of two arms over their paired seeds, for the shared verdict command.

    ``verdict`` is the headline metric's interval and call (:mod:`xferdiag.negative`), ``metric`` its name;
    ``per_seed`` one row per seed; ``extra`` the metrics shown beside it (verdict.json keys); ``warnings``
    the learning checks' findings; ``components`` the gap's variance components (seeds, each seed's own
    test noise, shared test noise) from which an inconclusive verdict's plan is made, None where one seed
    or one example cannot show them; ``note`` what the reader must know about the interval.
    """

    verdict: Verdict
    metric: str
    per_seed: list[dict]
    extra: dict
    warnings: list[dict]
    components: tuple[float, float, float] | None
    note: str | None


@dataclass(frozen=True)
class RunInputs:
    """What a task's own ``explain`` reads of a finished run, gathered by the command so the task opens no run file:
    the run's configuration, each arm's (seed, model file) of its first finished seed, those seeds' test records by
    name, the run-level records (a detection run's ``test_ground_truth``) and the device."""

    config: Any
    models: dict[str, tuple[int, Path]]
    records: dict[str, dict]
    run_records: dict
    device: torch.device


class TaskEvaluation(Protocol):
    """One split scored by a task: what the trainer keeps, logs and hands back to its caller."""

    selection: float
    """The number the best epoch minimises (a classifier's validation loss; one minus a detector's mAP)."""
    selection_name: str
    """How a message names it ("validation loss")."""

    def summary(self) -> dict[str, float]:
        """The split's metrics for metrics.json (plain numbers)."""

    def history(self) -> dict[str, float]:
        """The task's columns of one history row, for the validation split (``val_loss``, ``val_accuracy``, ...)."""

    def postfix(self) -> dict[str, str]:
        """What the progress bar shows after an epoch."""

    def record(self) -> dict:
        """What a finished seed keeps of its test split, by the record names the run directory knows
        (``predictions``: per-example arrays; ``detections``: COCO results)."""


class Task(Protocol):
    """What is predicted: the training step's loss, batching of targets, and scoring of a split.

    Optional, outside the protocol: ``analyze(config, *, layers, max_samples, n_permutations, seed, device) -> dict``,
    a task's own ``xferdiag analyze`` (shift.json's content; detection's box statistics, image- and instance-level shift); a
    task without it whose descriptor lists "analyze" gets the classification analysis of :mod:`xferdiag.commands.analyze`;
    ``explain(inputs: RunInputs, *, n, seed, budget, progress) -> (index, maps)``, a task's own ``xferdiag explain``
    (index.json's content and maps.npz's arrays; detection's D-RISE and EigenCAM per box); a task without it whose
    descriptor lists "explain" gets the data's modality's explainers.
    With it, ``transferability(config, *, max_samples, seed, device) -> dict`` (optional) gives transferability.json's
    content (detection's: the run's pretrained backbone scored on its boxes, beside random weights).

    Optional too: ``rank_candidates(config, candidates, *, shots, quiet) -> {"rows": [...], "meta": {...}}`` with
    ``rank_scores`` (the score names, LogME first), a task's own ``xferdiag rank``: ``candidates`` are (spec, arch,
    checkpoint) triples, each row has ``candidate``, ``pretrained``, every score (None where it does not apply, with the
    reason under ``not_applicable``) and ``seconds``; ``meta`` joins ranking.json (detection's: backbones under a
    detector family, scored on their boxes). A task without it whose descriptor lists "rank" is ranked as a
    classification target (:mod:`xferdiag.commands.rank`). ``candidate_config(config, candidate, arch, checkpoint)``,
    optional with it, gives ``rank --then-finetune``'s settings for one candidate (by default the candidate is the model)."""

    name: str
    descriptor: TaskDescriptor
    """What the task supports and how the report speaks of it (torch-free; :mod:`.descriptor`)."""
    caches_features: bool
    """Whether a frozen-backbone phase may train the head on cached backbone outputs (targets must be a tensor)."""
    collate: Callable[[list], Any] | None
    """How a batch of (input, target) pairs is stacked; None: torch's default (tensors of equal shape)."""
    eval_batch_floor: int
    """An evaluation scores max(training batch, this) inputs at once: large where a prediction holds little memory
    (a classifier's logits), 1 where it holds much (a detector's RoI heads keep every proposal's features)."""

    def claims(self, data: str) -> bool:
        """Whether ``--data`` names data of this task (asked in the registry's order; the last takes anything)."""

    def targets_to(self, targets, device: torch.device):
        """The batch's targets on ``device``."""

    def train_loss(self, module: nn.Module, inputs, targets) -> torch.Tensor:
        """The scalar loss of one training step (the module is in train mode)."""

    def predict_batch(self, module: nn.Module, inputs) -> Any:
        """The module's eval-mode predictions of one batch, on the CPU, in a form :meth:`evaluate` takes."""

    def rank_key(self, summary: dict[str, float]) -> tuple[float, ...]:
        """How trainings with different settings compare by a split's :meth:`TaskEvaluation.summary`, smaller
        first (the scratch arm's learning-rate search)."""

    def headline(self, summary: dict[str, float]) -> str:
        """A split's main score in words, for a line on the terminal ("accuracy 61.0%")."""

    def learned(self, summary: dict[str, float], record: dict) -> bool | None:
        """Whether a validation :meth:`TaskEvaluation.summary` shows that the model learned anything (the scratch
        lr search asks it of every rate), given the training size's data record (data.json's content); None
        where the task cannot tell from these (a split too small to judge, a baseline the summary lacks)."""

    def prepare(self, config, *, source_domain=None, resumed: bool = False, recorded_input=None, quiet: bool = False):
        """Everything a run of this task trains on, checked before any file is written (:class:`..prepared.Prepared`)."""

    def prepare_audit(self, config, checkpoint, *, quiet: bool = False):
        """A run of ``config`` (one training size, one seed) made ready for ``audit``, with the model fine-tuned
        elsewhere read from ``checkpoint`` (:class:`..prepared.Audited`); only for a task whose descriptor lists
        the stage "audit"."""

    def judge(self, a: list[dict], b: list[dict], *, arms: tuple[str, str], seeds: list[int], data: dict, run_records: dict,
              alpha: float) -> Judged:
        """Two arms' seeds (``{"name", "metrics", "history", "records"}`` each, paired by position) judged
        at ``alpha``, with data.json's content and the run-level records."""

    def evaluate(self, outputs: Sequence, targets: Sequence, num_classes: int) -> TaskEvaluation:
        """Score a split from this process's batches of predictions and targets, in dataset order; under
        torchrun the task gathers every rank's rows first, so every rank gets the whole split's score."""
