"""What a modality plug-in supplies, and the job it is given: the orchestration stays in one place.

A modality (image, table, text) knows how to turn rows of its data into the batch its
models take (its input adapter), which explainers it has (a registry by name, in
:mod:`xferdiag.explainers`) and under which name its explanations are stored for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..data import Domain, InputSpec
from ..errors import InputError


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
    """A kind of data the pipeline explains: its name, its explainers, its input adapter."""

    name: str
    """What the report keys its sections on (the explanation index's ``kind`` for tables)."""
    methods: tuple[str, ...]
    """Names of its registered explainers."""
    input_shift_key: str
    """The key under which the shift results store :meth:`input_shift`'s rows ("per_feature" for tables, "separating_words" for text)."""

    def handles(self, domain: Domain) -> bool:
        """Whether ``domain`` is data of this modality."""

    def can_explain(self) -> bool:
        """Whether this build has the modality's explainers (text's live in a module of their own)."""

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """index.json's content and maps.npz's arrays for ``job``, sized to fit ``budget`` seconds
        where the modality's explanations cost enough to need one (None: as asked)."""

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> list[dict] | None:
        """Shift per raw input feature (shift.json's ``per_feature``), where the inputs have named
        features, or the words that separate two corpora (``separating_words``); None where there is
        nothing to name (pixels)."""


def own_methods(methods: list[str], available: tuple[str, ...], what: str) -> list[str]:
    """The requested methods a modality has (the others need another kind of data and are skipped); at least one."""
    chosen = [m for m in methods if m in available]
    if not chosen:
        raise InputError(f"methods: {', '.join(methods)} cannot explain {what}; choose from {', '.join(available)}")
    return chosen
