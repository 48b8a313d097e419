"""Tables: raw feature rows as the models take them, explained per feature by Kernel SHAP and LIME."""

from __future__ import annotations

import numpy as np

from ...analyzers.shift import feature_shift
from ...data import Domain
from ...errors import DataError
from ...explainers.arms import explain_arms
from ...explainers.table import METHODS, TableRequest
from ..base import ExplainJob, Plain
from ..descriptor import describe_modality
from ..kinds import TABLE


class TableModality(Plain):
    name = TABLE
    descriptor = describe_modality(TABLE)
    methods = METHODS
    input_shift_key = "per_feature"

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """The test rows and the training rows (LIME's statistics, SHAP's background), with the feature names.

        Tables are explained as asked whatever the ``budget``: a small MLP answers thousands of rows
        in milliseconds, so Kernel SHAP and LIME on a few rows take seconds."""
        table = job.domain.payload
        request = TableRequest(models=job.arms, rows=table.rows[job.rows], labels=job.labels, training=table.rows[job.train_rows],
                               feature_names=table.feature_names, methods=methods, example_ids=job.example_ids,
                               seed=seed, lime_samples=lime_samples, shap_samples=shap_samples)
        return explain_arms(request, progress=False)

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> list[dict]:
        """A KS test per column (Benjamini-Hochberg) with its standardised mean difference; both domains are
        tables (the model takes them both), with the same columns."""
        if source.payload.feature_names != target.payload.feature_names:
            raise DataError(f"{source.spec} and {target.spec}: the tables have different feature columns; "
                            "give both the same columns in the same order")
        rows = feature_shift(source.payload.rows[source_rows], target.payload.rows[target_rows], target.payload.feature_names)
        return rows.to_dict()["per_feature"]
