"""Images: the registry of image explainers (Grad-CAM, SHAP, LIME) and the :class:`ImageRequest` that
:func:`~.arms.explain_arms` explains with them.

What index.json and maps.npz hold for images is in docs/rundir.md; the maps are "images" and
"<method>__<arm>" float32 arrays, (N, H, W).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..modalities.kinds import IMAGE
from ._common import as_unit_images, device_of, predict_logits
from .arms import AgreeFn, Attribution, Checks, Kind, Method, Request, agreement, floats, settle
from .budget import ExplainPlan, PassCosts, measure_costs
from .faithfulness import SANITY_THRESHOLD
from .gradcam import find_target_layer, grad_cam
from .inference import resolve_precision
from .lime import lime_images
from .shap import shap_images


def _gradcam(request: ImageRequest, images: torch.Tensor) -> Method:
    layers = {arm: find_target_layer(model, images[:1]) for arm, model in request.models.items()}
    return Method("gradcam", lambda arm, m, xs, ts: Attribution(grad_cam(m, xs, layers[arm], ts, request.batch_size)),
                  {"layer": layers})


def _shap(request: ImageRequest, images: torch.Tensor) -> Method:
    def explain(arm, model, images, targets) -> Attribution:
        result = shap_images(model, images, request.background, targets, request.shap_samples, request.seed)
        return Attribution(result.maps, {("shap_additivity_gap",): floats(result.additivity_gap)})

    return Method("shap", explain, {"nsamples": request.shap_samples, "n_background": len(request.background),
                                    "explainer": "expected gradients, stratified samples"})


def _lime(request: ImageRequest, images: torch.Tensor) -> Method:
    def explain(arm, model, images, targets) -> Attribution:
        return Attribution(lime_images(model, images, targets, request.lime_samples, request.segmentation,
                                       request.seed).maps)

    return Method("lime", explain, {"num_samples": request.lime_samples, "segmentation": request.segmentation,
                                    "precision": request.precision})


IMAGE_EXPLAINERS: dict[str, Callable[[ImageRequest, torch.Tensor], Method]] = {"gradcam": _gradcam, "shap": _shap,
                                                                               "lime": _lime}
"""Image explainers by name, in the order the explanation index lists their ``params``."""
METHODS = tuple(IMAGE_EXPLAINERS)


class ImageKind(Kind):
    """Unit-range images, timed on the first arm; pixel sanity and deletion/insertion checks."""

    name = IMAGE
    explainers = IMAGE_EXPLAINERS
    sections = ("agreement", "sanity", "faithfulness", "shap_additivity_gap")

    def choose(self, request: ImageRequest) -> list[str]:
        methods = super().choose(request)
        if "shap" in methods and request.background is None:
            raise InputError("background: SHAP needs background images from the training split (or drop 'shap')")
        return methods

    def check(self, request: ImageRequest) -> torch.Tensor:
        return as_unit_images(request.images)

    def predict(self, request: ImageRequest, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {arm: predict_logits(model, images, request.batch_size).argmax(1) for arm, model in request.models.items()}

    def plan(self, request: ImageRequest, images: torch.Tensor, methods: list[str]) -> ExplainPlan:
        n = len(images)
        return ExplainPlan(tuple(methods), len(request.models), n, request.lime_samples, request.shap_samples,
                           request.deletion_steps, n if request.sanity_examples is None else request.sanity_examples,
                           len(request.background) if "shap" in methods else 0)

    def measure(self, request: ImageRequest, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                plan: ExplainPlan) -> PassCosts:
        return measure_costs(model, images, batch_size=request.batch_size, precision=request.precision,
                             segmentation=request.segmentation if "lime" in plan.methods else None)

    def agree(self, request: ImageRequest, images: torch.Tensor) -> AgreeFn:
        return agreement(request.topk)

    def checks(self, request: ImageRequest, images: torch.Tensor, plan: ExplainPlan) -> Checks:
        return Checks(request.sanity_threshold, plan.deletion_steps, request.baseline, request.seed, plan.sanity_examples)

    def params(self, request: ImageRequest, plan: ExplainPlan) -> dict:
        return {"sanity": {"test": "cascading model-parameter randomisation (full)", "threshold": request.sanity_threshold,
                           "examples": plan.sanity_examples},
                "faithfulness": {"steps": plan.deletion_steps, "baseline": request.baseline, "precision": request.precision},
                "agreement": {"topk": request.topk}}

    def maps(self, images: torch.Tensor, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"images": images.numpy().astype(np.float32), **maps}


@dataclass(frozen=True, kw_only=True)
class ImageRequest(Request):
    """Images to explain with Grad-CAM, SHAP and LIME, with the sanity and faithfulness checks.

    ``images`` (N, C, H, W) in [0, 1], as the models take them (put normalisation inside the model).
    ``background`` (training images) is needed for SHAP. The randomisation test runs on the first arm
    (full randomisation, on ``sanity_examples`` of the examples; None: all) and deletion/insertion
    (``deletion_steps``, masked with ``baseline``) for every method and arm; agreement compares the
    first two arms' top ``topk``. The budget's ladder cuts the sanity examples, the curve steps, the
    samples and then the examples.
    """

    kind: ClassVar[Kind] = ImageKind()
    images: object
    background: object = None
    methods: tuple[str, ...] | list[str] | str = METHODS
    segmentation: str = "quickshift"
    sanity_threshold: float = SANITY_THRESHOLD
    deletion_steps: int = 20
    baseline: str = "mean"
    topk: float = 0.1
    batch_size: int = 64
    sanity_examples: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("deletion_steps", "batch_size", "sanity_examples"):
            settle(self, name, int, 1)

    @property
    def precision(self) -> str:
        """What LIME and deletion/insertion run in on the first arm's device."""
        return resolve_precision("auto", device_of(next(iter(self.models.values()))))
