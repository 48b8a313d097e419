"""The toy's plug-in: no rule for long inputs, nothing more to record, no extra baseline (:class:`Plain`); no
explainers yet (its descriptor does not list explain, so the command stops before asking) and no per-input shift
(the shift is measured in the models' features, as for images)."""

from __future__ import annotations

import numpy as np

from xferdiag.data import Domain
from xferdiag.errors import InputError
from xferdiag.modalities.base import ExplainJob, Plain

from .descriptor import DESCRIPTOR, SEQUENCE


class SequenceModality(Plain):
    name = SEQUENCE
    descriptor = DESCRIPTOR
    methods = ()
    input_shift_key = "per_feature"

    def explain(self, job: ExplainJob, **settings) -> tuple[dict, dict[str, np.ndarray]]:
        raise InputError(f"explanations are {DESCRIPTOR.not_yet()}")

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> None:
        return None
