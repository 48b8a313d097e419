"""What a task makes ready before ``finetune`` trains: the same shape for every task, so the command that
trains the arms, writes the run directory and asks for the verdict is written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..config import RunConfig
from ..data import InputSpec
from ..engine.trainer import SplitData
from .base import Task


def _no_baselines(seeds: list[int]) -> None:
    return None


@dataclass(frozen=True)
class PreparedPoint:
    """One training size (``--shots``): its datasets and what the run directory records about them.

    ``new_model(pretrained, seed)`` is a fresh model with every random stream seeded (the pretrained
    weights, or random ones for the scratch arm); ``baselines(seeds)`` scores the task's cheap reference
    models (TF-IDF for text) or gives None; ``run_records`` are the run-level files the task keeps
    (by the name :mod:`xferdiag.rundir` knows them), e.g. a detection test split's COCO ground truth.
    """

    shots: int | str
    data: SplitData
    record: dict
    sizes: dict[str, int]
    new_model: Callable[[bool, int], nn.Module]
    baselines: Callable[[list[int]], dict | None] = _no_baselines
    run_records: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """Everything checked, nothing written: the task, the run's final config, the input the model takes
    (run.json's ``input``), its points (largest training size last) and the source data's size where
    there is one; ``model_record`` what run.json says of the model beyond its config (a detector's architecture,
    settings and which transfer level its checkpoint gave). ``announce()`` prints what a user should read before
    training starts (the input size, ...)."""

    task: Task
    config: RunConfig
    spec: InputSpec
    points: list[PreparedPoint]
    announce: Callable[[], None]
    source_size: int | None = None
    model_record: dict | None = None


@dataclass(frozen=True)
class Audited:
    """What a task makes ready for ``audit``: the run as ``finetune`` would prepare it (one training size, one
    seed), the model fine-tuned elsewhere loaded into the architecture the transfer arm has (on the CPU), and
    the form its checkpoint came in (run.json's ``audit.checkpoint_form``)."""

    prepared: Prepared
    model: nn.Module
    form: str

    @property
    def point(self) -> PreparedPoint:
        return self.prepared.points[-1]
