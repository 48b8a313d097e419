"""What a modality plug-in supplies, and the job it is given: the orchestration stays in one place.

A modality (image, table, text) knows its rule for over-long inputs, what to record of its splits, its
extra baselines, how to turn rows of its data into the batch its explainers take, which explainers it has
(a registry by name, in :mod:`xferdiag.explainers`) and its per-input shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..data import Domain, InputSpec, TargetSplits
from ..errors import InputError
from .descriptor import ModalityDescriptor


@dataclass(frozen=True)
class ExplainJob:
    """The examples to explain and the arms to explain them with.

    ``rows`` index ``domain`` (the examples), ``example_ids`` are their positions in the test split,
    ``train_rows`` index the training split (backgrounds and statistics). ``arms`` are the
    fine-tuned models in eval mode on ``device``, taking inputs as ``spec`` describes.
    """

    domain: Domain
    rows: np.ndarray
    labels: np.ndarray
    example_ids: np.ndarray
    train_rows: np.ndarray
    arms: dict[str, nn.Module]
    spec: InputSpec
    device: torch.device


class Modality(Protocol):
    """A kind of data: the one owner of what differs between images, tables and texts once they are loaded
    (the loaders of :mod:`xferdiag.data` build a domain's payload; the payload makes the dataset a model trains
    on, describes the data and checks them against a model's input, :class:`~xferdiag.data.Payload`)."""

    name: str
    """One of :data:`~xferdiag.modalities.kinds.KINDS` (or a registered plug-in's kind): what the run directory's records
    name the kind of data with."""
    descriptor: ModalityDescriptor
    """What the report and the command line read without torch (:mod:`xferdiag.modalities.descriptor`)."""
    methods: tuple[str, ...]
    """Names of its registered explainers."""
    input_shift_key: str
    """The key under which the shift results store :meth:`input_shift`'s rows ("per_feature" for tables, "separating_words" for text)."""

    def fits_whole(self, domain: Domain, spec: InputSpec) -> np.ndarray | None:
        """Which examples a model taking ``spec`` reads whole, for runs that leave longer ones out rather than cut
        them (truncation off); None where no example is too long for a model (an error where none fits)."""

    def describe_splits(self, splits: TargetSplits, spec: InputSpec) -> dict:
        """What data.json records of the splits beside their sizes, as the model sees them (a text's token statistics)."""

    def baselines(self, domain: Domain, indices: dict[str, np.ndarray], seeds: list[int]) -> dict | None:
        """baselines.json's content: the non-neural baselines of this kind of data (None: none)."""

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """index.json's content and maps.npz's arrays for ``job``, sized to fit ``budget`` seconds
        where the modality's explanations cost enough to need one (None: as asked)."""

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> list[dict] | None:
        """Shift per raw input feature (shift.json's ``per_feature``), where the inputs have named
        features, or the words that separate two corpora (``separating_words``); None where there is
        nothing to name (pixels)."""


class Plain:
    """The answers of a modality with no rule for long inputs, nothing to record of its splits and no extra baseline."""

    def fits_whole(self, domain: Domain, spec: InputSpec) -> None:
        return None

    def describe_splits(self, splits: TargetSplits, spec: InputSpec) -> dict:
        return {}

    def baselines(self, domain: Domain, indices: dict[str, np.ndarray], seeds: list[int]) -> None:
        return None


def own_methods(methods: list[str], available: tuple[str, ...], what: str) -> list[str]:
    """The requested methods a modality has (the others need another kind of data and are skipped); at least one."""
    chosen = [m for m in methods if m in available]
    if not chosen:
        raise InputError(f"methods: {', '.join(methods)} cannot explain {what}; choose from {', '.join(available)}")
    return chosen
