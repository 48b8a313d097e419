"""Explain several arms (transfer, scratch, ...) on the same images and check the explanations.

:func:`explain_models` returns exactly what ``explanations/index.json`` and ``maps.npz`` hold
(docs/rundir.md); writing them is the caller's job.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validate import positive_int
from ..errors import InputError
from ._common import as_unit_images, check_model, device_of, predict_logits
from .agreement import spearman_agreement, topk_overlap
from .faithfulness import SANITY_THRESHOLD, deletion_insertion, randomisation_test
from .gradcam import find_target_layer, grad_cam
from .inference import resolve_precision
from .lime import lime_images
from .shap import shap_images

METHODS = ("gradcam", "shap", "lime")
TARGETS = ("label", "prediction")


def explain_models(models: dict[str, nn.Module], images, labels, background=None, methods=METHODS, seed: int = 0,
                   lime_samples: int = 1000, shap_samples: int = 200, progress: bool = True, *, example_ids=None,
                   target: str = "label", segmentation: str = "quickshift", sanity_threshold: float = SANITY_THRESHOLD,
                   deletion_steps: int = 20, baseline: str = "mean", topk: float = 0.1,
                   batch_size: int = 64) -> tuple[dict, dict[str, np.ndarray]]:
    """Maps of every method for every arm, plus agreement, sanity and faithfulness checks.

    ``images`` (N, C, H, W) in [0, 1], as the models take them (put normalisation inside the
    model). ``labels`` are the true classes; ``example_ids`` their rows in the test split
    (default 0..N-1). ``background`` (training images) is needed for SHAP. With
    ``target="label"`` every arm explains the true class, so the arms' maps answer the same
    question and a misclassified example shows what the model failed to see; ``"prediction"``
    explains each arm's own prediction.

    Agreement compares the first two arms (transfer vs scratch); the randomisation test runs on
    the first arm (full randomisation only, which is what index.json reports); deletion and
    insertion AUCs run for every method and arm. Returns (index, maps) where maps has "images"
    and "<method>__<arm>" float32 arrays.
    """
    arms, x, y, ids, methods = _check(models, images, labels, example_ids, methods, target)
    if "shap" in methods and background is None:
        raise InputError("background: SHAP needs background images from the training split (or drop 'shap')")
    lime_samples = positive_int(lime_samples, "lime_samples", minimum=2)
    shap_samples = positive_int(shap_samples, "shap_samples")
    preds = {arm: predict_logits(models[arm], x, batch_size).argmax(1) for arm in arms}
    targets = {arm: y if target == "label" else preds[arm] for arm in arms}
    layers = {arm: find_target_layer(models[arm], x[:1]) for arm in arms} if "gradcam" in methods else {}

    def explainer(method: str, arm: str):
        if method == "gradcam":
            return lambda m, xs, ts: grad_cam(m, xs, layers[arm], ts, batch_size)
        if method == "shap":
            return lambda m, xs, ts: shap_images(m, xs, background, ts, shap_samples, seed).maps
        return lambda m, xs, ts: lime_images(m, xs, ts, lime_samples, segmentation, seed).maps

    maps: dict[str, np.ndarray] = {"images": x.numpy().astype(np.float32)}
    index = {"methods": list(methods), "arms": arms, "seed": seed,
             "params": _params(methods, layers, target, lime_samples, shap_samples, segmentation, background,
                               sanity_threshold, deletion_steps, baseline, topk,
                               resolve_precision("auto", device_of(models[arms[0]]))),
             "examples": [{"index": ids[i], "label": int(y[i]),
                           "pred": {arm: int(preds[arm][i]) for arm in arms},
                           "correct": {arm: bool(preds[arm][i] == y[i]) for arm in arms}} for i in range(len(x))],
             "agreement": {}, "sanity": {}, "faithfulness": {}, "shap_additivity_gap": {}}
    bar = tqdm(total=len(methods) * (2 * len(arms) + 1), desc="explain", disable=None if progress else True)
    with bar:
        for method in methods:
            for arm in arms:
                bar.set_postfix_str(f"{method} {arm}")
                if method == "shap":
                    result = shap_images(models[arm], x, background, targets[arm], shap_samples, seed)
                    maps[f"shap__{arm}"] = result.maps.astype(np.float32)
                    index["shap_additivity_gap"][arm] = _floats(result.additivity_gap)
                else:
                    maps[f"{method}__{arm}"] = np.asarray(explainer(method, arm)(models[arm], x, targets[arm]),
                                                          dtype=np.float32)
                bar.update()
            if len(arms) >= 2:
                a, b = (maps[f"{method}__{arm}"] for arm in arms[:2])
                index["agreement"][method] = {"spearman": _floats(spearman_agreement(a, b)),
                                              "topk_overlap": _floats(topk_overlap(a, b, topk))}
            bar.set_postfix_str(f"{method} sanity")
            sanity = randomisation_test(models[arms[0]], x, targets[arms[0]], explainer(method, arms[0]),
                                        threshold=sanity_threshold, n_steps=1, seed=seed)
            index["sanity"][method] = {"similarity_after_randomisation": sanity.similarity_after_randomisation,
                                       "flagged": bool(sanity.flagged)}
            bar.update()
            index["faithfulness"][method] = {}
            for arm in arms:
                bar.set_postfix_str(f"{method} faithfulness {arm}")
                curves = deletion_insertion(models[arm], x, maps[f"{method}__{arm}"], targets[arm],
                                            steps=deletion_steps, baseline=baseline, seed=seed)
                index["faithfulness"][method][arm] = {"deletion_auc": float(curves.deletion_auc.mean()),
                                                      "insertion_auc": float(curves.insertion_auc.mean())}
                bar.update()
    return index, maps


def _check(models, images, labels, example_ids, methods, target):
    if not isinstance(models, dict) or not models:
        raise InputError("models: expected a non-empty dict {arm name: model}")
    arms = list(models)
    for arm in arms:
        if not isinstance(arm, str) or not arm or "__" in arm:
            raise InputError(f"models: arm names must be non-empty strings without '__', got {arm!r}")
        check_model(models[arm], f"models[{arm!r}]")
    x = as_unit_images(images)
    y = _indices(labels, "labels", len(x))
    ids = list(range(len(x))) if example_ids is None else _indices(example_ids, "example_ids", len(x)).tolist()
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise InputError(f"methods: choose distinct names among {', '.join(METHODS)}, got {methods!r}")
    if target not in TARGETS:
        raise InputError(f"target: must be one of {', '.join(TARGETS)}, got {target!r}")
    return arms, x, y, ids, methods


def _indices(values, name: str, n: int) -> torch.Tensor:
    arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if arr.shape != (n,):
        raise InputError(f"{name}: expected one entry per image ({n}), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) or (n and arr.min() < 0):
        raise InputError(f"{name}: expected non-negative integers, got dtype {arr.dtype}")
    return torch.from_numpy(arr.astype(np.int64))


def _floats(values) -> list[float | None]:
    """Plain floats for JSON, with None where a value is undefined (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _params(methods, layers, target, lime_samples, shap_samples, segmentation, background, sanity_threshold,
            deletion_steps, baseline, topk, forward_precision) -> dict:
    params = {"target": target,
              "sanity": {"test": "cascading model-parameter randomisation (full)", "threshold": sanity_threshold},
              "faithfulness": {"steps": deletion_steps, "baseline": baseline, "precision": forward_precision},
              "agreement": {"topk": topk}}
    if "gradcam" in methods:
        params["gradcam"] = {"layer": layers}
    if "shap" in methods:
        params["shap"] = {"nsamples": shap_samples, "n_background": int(len(background)),
                          "explainer": "GradientExplainer (expected gradients)"}
    if "lime" in methods:
        params["lime"] = {"num_samples": lime_samples, "segmentation": segmentation, "precision": forward_precision}
    return params


def pick_examples(labels, predictions_by_arm: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` test indices (sorted), spread over the classes, with misclassified examples included.

    Up to half the picks (at least one) go to examples that some arm gets wrong, the rest to the
    others; each pick goes to the class picked least so far (ties in seeded random order), with a
    seeded random example of it.
    """
    y = _indices(labels, "labels", len(np.asarray(labels))).numpy()
    n = positive_int(n, "n")
    if not isinstance(predictions_by_arm, dict):
        raise InputError("predictions_by_arm: expected a dict {arm: predictions}")
    wrong = np.zeros(len(y), dtype=bool)
    for arm, pred in predictions_by_arm.items():
        wrong |= _indices(pred, f"predictions_by_arm[{arm!r}]", len(y)).numpy() != y
    rng = np.random.default_rng(seed)
    n = min(n, len(y))
    counts = np.zeros(y.max() + 1 if len(y) else 0, dtype=int)
    picked = _balanced(np.flatnonzero(wrong), y, min(int(wrong.sum()), max(1, n // 2)), rng, counts)
    picked += _balanced(np.flatnonzero(~wrong), y, n - len(picked), rng, counts)
    if len(picked) < n:  # too few correct examples: fill up with more misclassified ones
        picked += _balanced(np.setdiff1d(np.flatnonzero(wrong), picked), y, n - len(picked), rng, counts)
    return np.sort(np.array(picked, dtype=np.int64))


def _balanced(pool: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator, counts: np.ndarray) -> list[int]:
    """Up to ``n`` items of ``pool``, each from the class with the fewest ``counts`` (updated)."""
    classes = rng.permutation(np.unique(y[pool]))
    queues = {c: list(rng.permutation(pool[y[pool] == c])) for c in classes}
    picked: list[int] = []
    while len(picked) < n and any(queues[c] for c in classes):
        c = min((c for c in classes if queues[c]), key=lambda c: counts[c])
        picked.append(int(queues[c].pop()))
        counts[c] += 1
    return picked
