"""Text: the registry of text explainers (Integrated Gradients, SHAP, LIME) and :func:`explain_text_models`.

A text model maps ``(input_ids (N, T), attention_mask (N, T) or None)`` to logits (N, C) and has
``pad_token_id`` and ``get_input_embeddings()``. Attributions are per token, (N, T), zero at padding
and special tokens, and are shown per word (subwords summed). :func:`explain_text_models` returns
what ``index.json`` and ``maps.npz`` hold for text (docs/rundir.md, "Text").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validate import check_scalar
from ..errors import InputError
from ._common import as_indices, check_arms, check_request
from .arms import Attribution, Method, explain_arms, floats
from .budget import Budget, FittedPlan, fit_plan
from .examples import examples, pick_examples
from .faithfulness import SANITY_THRESHOLD
from .text_budget import TextPlan, measure_text_costs
from .text_checks import ERASER_FRACTIONS, text_checks, word_agreement
from .text_methods import integrated_gradients, lime_text, shap_text
from .text_words import TextBatch, forward_logits, text_batch, word_scores

KIND = "text"
"""The explanation index's ``kind`` for text, on which the report keys its text section."""
TARGETS = ("label", "prediction")
TOPK = 0.1
IG_STEPS = 50


@dataclass(frozen=True)
class TextRequest:
    """What the text explainers are asked for: each method's settings."""

    seed: int
    lime_samples: int
    shap_samples: int
    batch_size: int


def _ig(request: TextRequest) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        maps, gap = integrated_gradients(model, batch, targets, steps=IG_STEPS, batch_size=request.batch_size)
        return Attribution(maps, {("ig_completeness_gap",): floats(gap)})

    return Method("ig", explain, {"layer": "get_input_embeddings()", "n_steps": IG_STEPS,
                                  "baseline": "PAD at every non-special token, same attention mask",
                                  "explainer": "captum LayerIntegratedGradients"})


def _shap(request: TextRequest) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        maps, base = shap_text(model, batch, targets, max_evals=request.shap_samples, seed=request.seed,
                               batch_size=request.batch_size)
        return Attribution(maps, {("base_values", "shap"): floats(base)})

    return Method("shap", explain, {"max_evals": request.shap_samples, "masker": "token -> PAD, attention kept",
                                    "explainer": "PartitionExplainer (Owen values, contiguous token tree)",
                                    "output": "logit"})


def _lime(request: TextRequest) -> Method:
    def explain(arm, model, batch: TextBatch, targets) -> Attribution:
        return Attribution(lime_text(model, batch, targets, num_samples=request.lime_samples, seed=request.seed,
                                     batch_size=request.batch_size)[0])

    return Method("lime", explain, {"num_samples": request.lime_samples, "features": "words (all subwords removed)",
                                    "output": "probability"})


TEXT_EXPLAINERS: dict[str, Callable[[TextRequest], Method]] = {"ig": _ig, "shap": _shap, "lime": _lime}
"""Text explainers by name; the explanation index lists every one's ``params``, in this order."""
METHODS = tuple(TEXT_EXPLAINERS)


def explain_text_models(models: dict[str, nn.Module], input_ids, attention_mask, labels, tokenizer, *,
                        methods=METHODS, seed: int = 0, lime_samples: int = 1000, shap_samples: int = 500,
                        target: str = "label", example_ids=None, batch_size: int = 32, progress: bool = True,
                        sanity_threshold: float = SANITY_THRESHOLD, sanity_steps: int = 1,
                        checks: bool = True, budget: Budget | float | None = None,
                        sanity_examples: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Token and word attributions of every method for every arm, word-level agreement and the checks.

    ``input_ids`` (N, T) and ``attention_mask`` (N, T, or None: ``input_ids != pad_token_id`` of the
    first model) as the models take them, from ``tokenizer`` (a Hugging Face fast tokenizer, used to
    find special tokens and merge subwords into words). With ``target="label"`` every arm explains
    the true class; ``"prediction"`` each arm's own prediction. Agreement compares the first two
    arms over words (|attribution|); with ``checks`` the randomisation test runs on the first arm
    (on ``sanity_examples`` of the texts; None: all) and comprehensiveness/sufficiency on every arm.
    ``budget`` (seconds, or a :class:`~.budget.Budget`) sizes the work as for images: the passes are
    counted and timed on these models (:mod:`.text_budget`) and cut down the ladder until the
    estimate fits; None runs what is asked. Returns (index, maps): maps has "input_ids",
    "attention_mask", "word_ids" (-1 = not a word), "<method>__<arm>" (N, T) token attributions
    and "words__<method>__<arm>" (N, W) word attributions; the index lists each example's tokens and words.
    """
    arms, ids, mask, y, ids_list, methods = _check(models, input_ids, attention_mask, labels, example_ids, methods,
                                                   target)
    request = TextRequest(check_scalar(seed, "seed", int, 0), check_scalar(lime_samples, "lime_samples", int, 2),
                          check_scalar(shap_samples, "shap_samples", int, 1),
                          check_scalar(batch_size, "batch_size", int, 1))
    threshold = check_scalar(sanity_threshold, "sanity_threshold", float, 0, 1, inclusive=(True, True))
    steps = check_scalar(sanity_steps, "sanity_steps", int, 1)
    batch = text_batch(ids, mask, tokenizer, models[arms[0]].pad_token_id)
    logits = {arm: forward_logits(models[arm], ids, mask, request.batch_size) for arm in arms}
    if int(y.max()) >= min(v.shape[1] for v in logits.values()):
        raise InputError(f"labels: class {int(y.max())} is beyond the models' {min(v.shape[1] for v in logits.values())} "
                         "outputs")
    preds = {arm: v.argmax(1) for arm, v in logits.items()}
    asked = TextPlan(tuple(methods), len(arms), len(ids), request.lime_samples, request.shap_samples, IG_STEPS,
                     len(ids) if sanity_examples is None else check_scalar(sanity_examples, "sanity_examples", int, 1),
                     steps if checks else 0, int((~batch.fixed).sum(1).max()))
    fitted = _fit(models[arms[0]], batch, y if target == "label" else preds[arms[0]], asked, budget, request, progress)
    plan = fitted.plan
    keep = pick_examples(y.numpy(), {a: p.numpy() for a, p in preds.items()}, plan.n, request.seed) \
        if plan.n < len(ids) else np.arange(len(ids))
    ids, mask, y, batch = ids[keep], mask[keep], y[keep], batch.subset(keep)
    ids_list, preds = [ids_list[i] for i in keep], {a: p[keep] for a, p in preds.items()}
    request = TextRequest(request.seed, plan.lime_samples, plan.shap_samples, request.batch_size)
    targets = {arm: y if target == "label" else preds[arm] for arm in arms}
    chosen = {name: TEXT_EXPLAINERS[name](request) for name in methods}
    listed = examples(ids_list, y.numpy(), {a: p.numpy() for a, p in preds.items()})
    for i, entry in enumerate(listed):
        entry.update({"tokens": batch.tokens[i], "words": batch.words[i], "exact_words": batch.exact_words[i]})
    index = {"kind": KIND, "methods": list(methods), "arms": arms, "seed": request.seed, "examples": listed,
             "params": {"target": target, "agreement": {"topk": TOPK, "on": "absolute word attributions"},
                        "word_scores": "sum of the word's token attributions",
                        "sanity": {"test": "cascading model-parameter randomisation, over tokens",
                                   "threshold": threshold, "steps": steps, "examples": plan.sanity_examples},
                        "faithfulness": {"test": "ERASER comprehensiveness and sufficiency (AOPC), tokens deleted",
                                         "fractions": list(ERASER_FRACTIONS)},
                        **{name: chosen[name].params for name in TEXT_EXPLAINERS if name in chosen}},
             "budget": fitted.to_dict()}
    run_checks = text_checks(batch, threshold=threshold, seed=request.seed, batch_size=request.batch_size,
                             steps=steps, examples=plan.sanity_examples) if checks else None
    maps, sections = explain_arms({a: models[a] for a in arms}, batch, targets, list(chosen.values()), topk=TOPK,
                                  checks=run_checks, progress=progress, agree=word_agreement(batch, TOPK),
                                  estimate=fitted.estimate_s)
    index.update({key: sections.get(key, {}) for key in ("agreement", "sanity", "faithfulness", "ig_completeness_gap",
                                                         "base_values")})
    index["budget"]["measured_s_by_part"] = sections["seconds"]
    words = {f"words__{key}": word_scores(value, batch).astype(np.float32) for key, value in maps.items()}
    return index, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                   "word_ids": batch.word_ids.astype(np.int32), **maps, **words}


def _fit(model: nn.Module, batch, targets: torch.Tensor, asked: TextPlan, budget, request: TextRequest,
         progress: bool) -> FittedPlan:
    """The plan that fits ``budget`` on the passes timed on ``model`` (the first arm), printed when ``progress``."""
    fitted = fit_plan(asked, measure_text_costs(model, batch, targets, batch_size=request.batch_size), budget)
    if progress:
        tqdm.write(fitted.line())
    return fitted


def _check(models, input_ids, attention_mask, labels, example_ids, methods, target):
    arms = check_arms(models)
    for arm, model in models.items():
        if not isinstance(getattr(model, "pad_token_id", None), int) or not callable(
                getattr(model, "get_input_embeddings", None)):
            raise InputError(f"models[{arm!r}]: a text model needs an int pad_token_id and get_input_embeddings()")
    ids = _as_ids(input_ids, "input_ids")
    mask = (ids != models[arms[0]].pad_token_id).long() if attention_mask is None else _as_ids(attention_mask,
                                                                                                "attention_mask")
    if mask.shape != ids.shape:
        raise InputError(f"attention_mask: expected shape {tuple(ids.shape)} like input_ids, got {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise InputError("attention_mask: must hold only 0 and 1")
    y = as_indices(labels, "labels", len(ids))
    ids_list = list(range(len(ids))) if example_ids is None else as_indices(example_ids, "example_ids", len(ids)).tolist()
    return arms, ids, mask, y, ids_list, check_request(methods, METHODS, target, TARGETS)


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
