"""Texts: token-id rows as the arms take them, explained per token by Integrated Gradients, SHAP and LIME
(``xferdiag.explainers.text``), and the words that separate two corpora as the per-input shift."""

from __future__ import annotations

import importlib.util

import numpy as np

from ..analyzers.text_shift import separating_words
from ..data import Domain
from ..errors import InputError
from .base import ExplainJob, own_methods

KIND = "text"
EXPLAINERS = "xferdiag.explainers.text"


class TextModality:
    name = KIND
    methods = ("ig", "shap", "lime")
    input_shift_key = "separating_words"

    def handles(self, domain: Domain) -> bool:
        return domain.texts is not None

    def can_explain(self) -> bool:
        """Whether this build has the text explainers (a separate module; without it a text run has no explanations)."""
        return importlib.util.find_spec(EXPLAINERS) is not None

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """The test texts as the arms take them (token ids and their attention mask), with the tokenizer,
        sized to fit ``budget`` as images are (:mod:`xferdiag.explainers.text_budget`)."""
        if not self.can_explain():
            raise InputError(f"explain: text explanations need {EXPLAINERS}, which this build of xferdiag lacks")
        from ..explainers.arms import explain_arms
        from ..explainers.text import TextRequest

        chosen = own_methods(methods, self.methods, "texts")  # Grad-CAM needs images: skipped here
        dataset = job.domain.dataset(job.rows, job.spec)
        input_ids = dataset.tensors[0]
        pad = job.spec.tokenizer.pad_token_id
        models = {arm: model.to(job.device).eval() for arm, model in job.arms.items()}
        return explain_arms(TextRequest(models=models, input_ids=input_ids, attention_mask=(input_ids != pad).long(),
                                        tokenizer=job.spec.tokenizer, labels=job.labels, methods=chosen,
                                        example_ids=job.example_ids, seed=seed, lime_samples=lime_samples,
                                        shap_samples=shap_samples, budget=budget), progress=progress)

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> list[dict] | None:
        """The words a linear domain classifier on TF-IDF leans on most, toward either corpus."""
        if source.texts is None:
            return None
        return separating_words([source.texts[i] for i in source_rows], [target.texts[i] for i in target_rows])
