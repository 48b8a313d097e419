"""Texts: token-id rows as the arms take them; texts too long for ``max_length`` left out where truncation is
off; their token statistics in data.json; TF-IDF + logistic regression as an extra baseline; explained per
token by Integrated Gradients, SHAP and LIME (``xferdiag.explainers.text``); the words that separate two
corpora as the per-input shift."""

from __future__ import annotations

import numpy as np

from ...analyzers.text_shift import separating_words
from ...data import Domain, InputSpec, TargetSplits
from ...engine.baselines import TFIDF, tfidf_logreg
from ...errors import InputError
from ..base import ExplainJob, own_methods
from ..descriptor import describe_modality
from ..kinds import TEXT
from .load import token_stats, within_length


class TextModality:
    name = TEXT
    descriptor = describe_modality(TEXT)
    methods = ("ig", "shap", "lime")
    input_shift_key = "separating_words"

    def fits_whole(self, domain: Domain, spec: InputSpec) -> np.ndarray:
        """The texts that fit in ``spec.size`` tokens of the model's tokenizer (special tokens included)."""
        return within_length(domain.payload.texts, spec.tokenizer, spec.size)

    def describe_splits(self, splits: TargetSplits, spec: InputSpec) -> dict:
        """Per split, how the model's tokenizer sees the texts (:class:`~xferdiag.modalities.text.load.TokenStats`)."""
        texts = splits.domain.payload.texts
        return {"tokens": {split: token_stats([texts[i] for i in idx], spec.tokenizer, spec.size,
                                              splits.left_out.get(split, 0)).to_dict()
                           for split, idx in splits.indices.items() if len(idx)}}

    def baselines(self, domain: Domain, indices: dict[str, np.ndarray], seeds: list[int]) -> dict:
        """TF-IDF + logistic regression on the arms' splits: deterministic, so fitted once and recorded per seed."""
        texts = domain.payload.texts
        parts = {split: ([texts[i] for i in idx], domain.labels[idx]) for split, idx in indices.items()}
        score = tfidf_logreg(parts["train"], parts["val"], parts["test"]).to_dict()
        per_seed = [{"seed": seed, **score} for seed in seeds]
        return {TFIDF: {"per_seed": per_seed, "accuracy": float(np.mean([s["accuracy"] for s in per_seed])),
                        "macro_f1": float(np.mean([s["macro_f1"] for s in per_seed]))}}

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """The test texts as the arms take them (token ids and their attention mask), with the tokenizer,
        sized to fit ``budget`` as images are (:mod:`xferdiag.explainers.text_budget`)."""
        if not self.descriptor.can_explain():
            raise InputError(f"explain: text explanations need {self.descriptor.explainers}, which this build of xferdiag lacks")
        from ...explainers.arms import explain_arms
        from ...explainers.text import TextRequest

        chosen = own_methods(methods, self.methods, "texts")  # Grad-CAM needs images: skipped here
        input_ids = job.domain.dataset(job.rows, job.spec).tensors[0]
        pad = job.spec.tokenizer.pad_token_id
        models = {arm: model.to(job.device).eval() for arm, model in job.arms.items()}
        return explain_arms(TextRequest(models=models, input_ids=input_ids, attention_mask=(input_ids != pad).long(),
                                        tokenizer=job.spec.tokenizer, labels=job.labels, methods=chosen,
                                        example_ids=job.example_ids, seed=seed, lime_samples=lime_samples,
                                        shap_samples=shap_samples, budget=budget), progress=progress)

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> list[dict]:
        """The words a linear domain classifier on TF-IDF leans on most, toward either corpus."""
        return separating_words([source.payload.texts[i] for i in source_rows], [target.payload.texts[i] for i in target_rows])
