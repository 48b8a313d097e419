"""Text: the registry of text explainers (Integrated Gradients, SHAP, LIME) and the :class:`TextRequest`
that :func:`~.arms.explain_arms` explains with them.

A text model maps ``(input_ids (N, T), attention_mask (N, T) or None)`` to logits (N, C) and has
``pad_token_id`` and ``get_input_embeddings()``. Attributions are per token, (N, T), zero at padding
and special tokens, and are shown per word (subwords summed). What index.json and maps.npz hold for
text is in docs/rundir.md, "Text".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..modalities.kinds import TEXT
from .arms import AgreeFn, Attribution, ChecksFn, Kind, Method, Request, floats, settle
from .budget import PassCosts
from .faithfulness import SANITY_THRESHOLD
from .text_budget import TextPlan, measure_text_costs
from .text_checks import ERASER_FRACTIONS, text_checks, word_agreement
from .text_methods import integrated_gradients, lime_text, shap_text
from .text_words import TextBatch, forward_logits, text_batch, word_scores

"""The explanation index's ``kind`` for text, on which the report keys its text section."""
TOPK = 0.1
IG_STEPS = 50


def _ig(request: TextRequest, batch: TextBatch) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        maps, gap = integrated_gradients(model, batch, targets, steps=IG_STEPS, batch_size=request.batch_size)
        return Attribution(maps, {("ig_completeness_gap",): floats(gap)})

    return Method("ig", explain, {"layer": "get_input_embeddings()", "n_steps": IG_STEPS,
                                  "baseline": "PAD at every non-special token, same attention mask",
                                  "explainer": "captum LayerIntegratedGradients"})


def _shap(request: TextRequest, batch: TextBatch) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        maps, base = shap_text(model, batch, targets, max_evals=request.shap_samples, seed=request.seed,
                               batch_size=request.batch_size)
        return Attribution(maps, {("base_values", "shap"): floats(base)})

    return Method("shap", explain, {"max_evals": request.shap_samples, "masker": "token -> PAD, attention kept",
                                    "explainer": "PartitionExplainer (Owen values, contiguous token tree)",
                                    "output": "logit"})


def _lime(request: TextRequest, batch: TextBatch) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        return Attribution(lime_text(model, batch, targets, num_samples=request.lime_samples, seed=request.seed,
                                     batch_size=request.batch_size)[0])

    return Method("lime", explain, {"num_samples": request.lime_samples, "features": "words (all subwords removed)",
                                    "output": "probability"})


TEXT_EXPLAINERS: dict[str, Callable[[TextRequest, TextBatch], Method]] = {"ig": _ig, "shap": _shap, "lime": _lime}
"""Text explainers by name; the explanation index lists every one's ``params``, in this order."""
METHODS = tuple(TEXT_EXPLAINERS)


class TextKind(Kind):
    """Token ids with their tokenizer, timed on the first arm; word-level agreement, the text
    randomisation test and ERASER; word scores beside the token maps."""

    name = TEXT
    explainers = TEXT_EXPLAINERS
    sections = ("agreement", "sanity", "faithfulness", "ig_completeness_gap", "base_values")

    def check(self, request: TextRequest) -> TextBatch:
        for arm, model in request.models.items():
            if not isinstance(getattr(model, "pad_token_id", None), int) or not callable(
                    getattr(model, "get_input_embeddings", None)):
                raise InputError(f"models[{arm!r}]: a text model needs an int pad_token_id and get_input_embeddings()")
        pad = next(iter(request.models.values())).pad_token_id
        ids = _as_ids(request.input_ids, "input_ids")
        mask = (ids != pad).long() if request.attention_mask is None else _as_ids(request.attention_mask, "attention_mask")
        if mask.shape != ids.shape:
            raise InputError(f"attention_mask: expected shape {tuple(ids.shape)} like input_ids, got {tuple(mask.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InputError("attention_mask: must hold only 0 and 1")
        return text_batch(ids, mask, request.tokenizer, pad)

    def predict(self, request: TextRequest, batch: TextBatch, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = {arm: forward_logits(model, batch.input_ids, batch.attention_mask, request.batch_size)
                  for arm, model in request.models.items()}
        outputs = min(v.shape[1] for v in logits.values())
        if int(labels.max()) >= outputs:
            raise InputError(f"labels: class {int(labels.max())} is beyond the models' {outputs} outputs")
        return {arm: v.argmax(1) for arm, v in logits.items()}

    def plan(self, request: TextRequest, batch: TextBatch, methods: list[str]) -> TextPlan:
        n = len(batch)
        return TextPlan(tuple(methods), len(request.models), n, request.lime_samples, request.shap_samples, IG_STEPS,
                        n if request.sanity_examples is None else request.sanity_examples,
                        request.sanity_steps if request.checks else 0, int((~batch.fixed).sum(1).max()))

    def measure(self, request: TextRequest, model: nn.Module, batch: TextBatch, targets: torch.Tensor,
                plan: TextPlan) -> PassCosts:
        return measure_text_costs(model, batch, targets, batch_size=request.batch_size)

    def agree(self, request: TextRequest, batch: TextBatch) -> AgreeFn:
        return word_agreement(batch, TOPK)

    def checks(self, request: TextRequest, batch: TextBatch, plan: TextPlan) -> ChecksFn | None:
        return text_checks(batch, threshold=request.sanity_threshold, seed=request.seed, batch_size=request.batch_size,
                           steps=request.sanity_steps, examples=plan.sanity_examples) if request.checks else None

    def params(self, request: TextRequest, plan: TextPlan) -> dict:
        return {"agreement": {"topk": TOPK, "on": "absolute word attributions"},
                "word_scores": "sum of the word's token attributions",
                "sanity": {"test": "cascading model-parameter randomisation, over tokens",
                           "threshold": request.sanity_threshold, "steps": request.sanity_steps,
                           "examples": plan.sanity_examples},
                "faithfulness": {"test": "ERASER comprehensiveness and sufficiency (AOPC), tokens deleted",
                                 "fractions": list(ERASER_FRACTIONS)}}

    def example_entries(self, batch: TextBatch) -> list[dict]:
        return [{"tokens": tokens, "words": words, "exact_words": exact}
                for tokens, words, exact in zip(batch.tokens, batch.words, batch.exact_words, strict=True)]

    def maps(self, batch: TextBatch, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        words = {f"words__{key}": word_scores(value, batch).astype(np.float32) for key, value in maps.items()}
        return {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy(),
                "word_ids": batch.word_ids.astype(np.int32), **maps, **words}


@dataclass(frozen=True, kw_only=True)
class TextRequest(Request):
    """Texts to explain per token and word, with word-level agreement and the checks.

    ``input_ids`` (N, T) and ``attention_mask`` (N, T, or None: ``input_ids != pad_token_id`` of the
    first model) as the models take them, from ``tokenizer`` (a Hugging Face fast tokenizer, used to
    find special tokens and merge subwords into words). Agreement compares the first two arms over
    words (|attribution|); with ``checks`` the randomisation test runs on the first arm (in
    ``sanity_steps`` steps, on ``sanity_examples`` of the texts; None: all) and
    comprehensiveness/sufficiency on every arm. The budget's passes are counted and timed as in
    :mod:`.text_budget`. maps.npz holds "input_ids", "attention_mask", "word_ids" (-1 = not a word),
    "<method>__<arm>" (N, T) token attributions and "words__<method>__<arm>" (N, W) word attributions;
    index.json lists each example's tokens and words.
    """

    kind: ClassVar[Kind] = TextKind()
    input_ids: object
    attention_mask: object = None
    tokenizer: object
    methods: tuple[str, ...] | list[str] | str = METHODS
    shap_samples: int = 500
    batch_size: int = 32
    sanity_threshold: float = SANITY_THRESHOLD
    sanity_steps: int = 1
    checks: bool = True
    sanity_examples: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("batch_size", "sanity_steps", "sanity_examples"):
            settle(self, name, int, 1)
        settle(self, "sanity_threshold", float, 0, 1, inclusive=(True, True))


def _as_ids(x, name: str) -> torch.Tensor:
    """A non-empty (N, T) integer tensor on the CPU."""
    try:
        t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except Exception as exc:  # ragged lists, objects
        raise InputError(f"{name}: cannot be read as an array ({exc})") from None
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise InputError(f"{name}: expected integer token ids, got dtype {t.dtype}")
    if t.ndim != 2 or 0 in t.shape:
        raise InputError(f"{name}: expected a non-empty 2-D batch (N, T), got shape {tuple(t.shape)}")
    if name == "input_ids" and bool((t < 0).any()):
        raise InputError(f"{name}: token ids must be >= 0")
    return t.long()
