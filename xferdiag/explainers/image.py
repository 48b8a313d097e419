"""Images: the registry of image explainers (Grad-CAM, SHAP, LIME) and :func:`explain_models`.

:func:`explain_models` returns exactly what ``explanations/index.json`` and ``maps.npz`` hold for
images (docs/rundir.md); writing them is the caller's job.
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
from ._common import as_indices, as_unit_images, check_arms, check_request, device_of, predict_logits
from .arms import Attribution, Checks, Method, explain_arms, floats
from .budget import Budget, ExplainPlan, fit_plan, measure_costs
from .examples import examples, pick_examples
from .faithfulness import SANITY_THRESHOLD
from .gradcam import find_target_layer, grad_cam
from .inference import resolve_precision
from .lime import lime_images
from .shap import shap_images

TARGETS = ("label", "prediction")


@dataclass(frozen=True)
class ImageRequest:
    """What the image explainers are asked for: the arms, the images and each method's settings."""

    models: dict[str, nn.Module]
    images: torch.Tensor
    background: torch.Tensor | None
    seed: int
    lime_samples: int
    shap_samples: int
    segmentation: str
    batch_size: int
    precision: str


def _gradcam(request: ImageRequest) -> Method:
    layers = {arm: find_target_layer(model, request.images[:1]) for arm, model in request.models.items()}
    return Method("gradcam", lambda arm, m, xs, ts: Attribution(grad_cam(m, xs, layers[arm], ts, request.batch_size)),
                  {"layer": layers})


def _shap(request: ImageRequest) -> Method:
    def explain(arm, model, images, targets) -> Attribution:
        result = shap_images(model, images, request.background, targets, request.shap_samples, request.seed)
        return Attribution(result.maps, {("shap_additivity_gap",): floats(result.additivity_gap)})

    return Method("shap", explain, {"nsamples": request.shap_samples, "n_background": len(request.background),
                                    "explainer": "expected gradients, stratified samples"})


def _lime(request: ImageRequest) -> Method:
    def explain(arm, model, images, targets) -> Attribution:
        return Attribution(lime_images(model, images, targets, request.lime_samples, request.segmentation,
                                       request.seed).maps)

    return Method("lime", explain, {"num_samples": request.lime_samples, "segmentation": request.segmentation,
                                    "precision": request.precision})


IMAGE_EXPLAINERS: dict[str, Callable[[ImageRequest], Method]] = {"gradcam": _gradcam, "shap": _shap, "lime": _lime}
"""Image explainers by name, in the order the explanation index lists their ``params``."""
METHODS = tuple(IMAGE_EXPLAINERS)


def explain_models(models: dict[str, nn.Module], images, labels, background=None, methods=METHODS, seed: int = 0,
                   lime_samples: int = 1000, shap_samples: int = 200, progress: bool = True, *, example_ids=None,
                   target: str = "label", segmentation: str = "quickshift", sanity_threshold: float = SANITY_THRESHOLD,
                   deletion_steps: int = 20, baseline: str = "mean", topk: float = 0.1,
                   batch_size: int = 64, budget: Budget | float | None = None,
                   sanity_examples: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
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

    ``budget`` (seconds, or a :class:`~.budget.Budget`) sizes the work to fit: the passes each part needs are counted and timed
    on these models (:mod:`.budget`), and sizes come down a fixed ladder (sanity examples, curve
    steps, samples, then examples) until the estimate fits. What was cut is in index.json's
    ``budget.reductions``; ``None`` runs exactly what is asked. ``sanity_examples``: how many
    examples the randomisation check re-explains (default: all).
    """
    arms, x, y, ids, methods = _check(models, images, labels, example_ids, methods, target)
    if "shap" in methods and background is None:
        raise InputError("background: SHAP needs background images from the training split (or drop 'shap')")
    precision = resolve_precision("auto", device_of(models[arms[0]]))
    preds = {arm: predict_logits(models[arm], x, batch_size).argmax(1) for arm in arms}
    asked = ExplainPlan(tuple(methods), len(arms), len(x), check_scalar(lime_samples, "lime_samples", int, 2),
                        check_scalar(shap_samples, "shap_samples", int, 1), check_scalar(deletion_steps, "deletion_steps", int, 1),
                        len(x) if sanity_examples is None else check_scalar(sanity_examples, "sanity_examples", int, 1),
                        len(background) if "shap" in methods else 0)
    costs = measure_costs(models[arms[0]], x, batch_size=batch_size, precision=precision,
                          segmentation=segmentation if "lime" in methods else None)
    fitted = fit_plan(asked, costs, budget)
    plan = fitted.plan
    if progress:
        tqdm.write(fitted.line())
    if plan.n < len(x):
        keep = pick_examples(y, preds, plan.n, seed)
        x, y, ids = x[keep], y[keep], [ids[i] for i in keep]
        preds = {arm: p[keep] for arm, p in preds.items()}
    request = ImageRequest(models, x, background, seed, plan.lime_samples, plan.shap_samples, segmentation, batch_size,
                           precision)
    targets = {arm: y if target == "label" else preds[arm] for arm in arms}
    chosen = {name: IMAGE_EXPLAINERS[name](request) for name in methods}
    params = {"target": target,
              "sanity": {"test": "cascading model-parameter randomisation (full)", "threshold": sanity_threshold,
                         "examples": plan.sanity_examples},
              "faithfulness": {"steps": plan.deletion_steps, "baseline": baseline, "precision": request.precision},
              "agreement": {"topk": topk},
              **{name: chosen[name].params for name in IMAGE_EXPLAINERS if name in chosen}}
    index = {"methods": list(methods), "arms": arms, "seed": seed, "params": params, "examples": examples(ids, y, preds),
             "budget": fitted.to_dict()}
    maps, sections = explain_arms(models, x, targets, list(chosen.values()), topk=topk, progress=progress,
                                  checks=Checks(sanity_threshold, plan.deletion_steps, baseline, seed, plan.sanity_examples),
                                  estimate=fitted.estimate_s)
    index.update({key: sections.get(key, {}) for key in ("agreement", "sanity", "faithfulness", "shap_additivity_gap")})
    index["budget"]["measured_s_by_part"] = sections["seconds"]
    return index, {"images": x.numpy().astype(np.float32), **maps}


def _check(models, images, labels, example_ids, methods, target):
    arms = check_arms(models)
    x = as_unit_images(images)
    y = as_indices(labels, "labels", len(x))
    ids = list(range(len(x))) if example_ids is None else as_indices(example_ids, "example_ids", len(x)).tolist()
    return arms, x, y, ids, check_request(methods, METHODS, target, TARGETS)
