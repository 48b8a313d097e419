"""What explaining images will cost, and the largest plan that fits a time budget.

Image explanations are forward passes: LIME classifies ``lime_samples`` perturbed images per example
and arm, SHAP (expected gradients) runs ``shap_samples`` forward-and-backward passes, the
randomisation check repeats every method on a randomised model, and deletion/insertion classify
``2 (steps + 1)`` masked images per example, method and arm. :func:`measure_costs` times one batch
of each kind on the real model and device; :class:`ExplainPlan` counts the passes; :func:`fit_plan`
walks down a fixed ladder of cheaper plans until one fits, and says what each step gave up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from .._validate import check_scalar
from ..errors import InputError
from ._common import device_of, explaining
from .inference import inference_copy
from .lime import segmenter

CALIBRATION_BATCH = 16
"""Images in the timed forward batch: big enough that per-image time settles, small enough that
timing a 224 px model (twice: warm-up and timed) costs seconds, not tens of seconds."""

@dataclass(frozen=True)
class Budget:
    """Seconds for the explanations. A ``strict`` budget (one a user gave) below what one example
    needs is an error; a default one runs the smallest plan and says it took longer."""

    seconds: float
    strict: bool = True


DEFAULT_BUDGET = Budget(90.0, strict=False)
"""What the commands give image explanations unless told otherwise (``--budget``)."""


def as_budget(budget) -> Budget | None:
    """``None`` (no budget), a :class:`Budget`, or seconds (a strict budget)."""
    if budget is None or isinstance(budget, Budget):
        return budget
    return Budget(float(check_scalar(budget, "budget", float, 0.0)))

FLOORS = {"lime_samples": 256, "shap_samples": 32, "deletion_steps": 5, "sanity_examples": 1, "n": 1}
"""The least of each size a plan goes down to. Measured (benchmarks/bench_explain_quality.py,
reports/benchmarks.md) against maps of 2000 LIME and 400 SHAP samples on a trained CNN: LIME at
256 samples keeps Spearman rho 0.90 and the whole top 10% (rho 0.78 at 128); SHAP at 32 keeps 81% of
the top 10% (74% at 8); neither changes the pointing game or the sanity verdict. Below these a
budget explains fewer examples rather than worse ones."""


@dataclass(frozen=True)
class PassCosts:
    """Measured seconds per image: one forward pass, one forward-and-backward pass, one LIME segmentation."""

    forward_s: float
    backward_s: float
    segment_s: float

    def to_dict(self) -> dict:
        return {key: round(value, 6) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ExplainPlan:
    """The sizes of one explanation run: ``n`` examples, ``arms`` models, the ``methods``, each method's
    samples, the deletion/insertion ``deletion_steps``, the examples the sanity check re-explains and
    SHAP's ``background`` images (classified once per model SHAP explains)."""

    methods: tuple[str, ...]
    arms: int
    n: int
    lime_samples: int
    shap_samples: int
    deletion_steps: int
    sanity_examples: int
    background: int = 0

    def seconds(self, costs: PassCosts) -> dict[str, float]:
        """Estimated seconds per part, in the keys of :func:`~.arms.explain_arms`' ``seconds``: each
        method's maps for every arm (``"<method>"``) and its checks (``"<method> checks"``: the sanity
        re-run on the first arm, and deletion/insertion for every arm)."""
        per_example = {"gradcam": costs.backward_s,
                       "shap": self.shap_samples * costs.backward_s,
                       "lime": self.lime_samples * costs.forward_s + costs.segment_s}
        resanity = min(self.sanity_examples, self.n)
        curves = self.arms * self.n * 2 * (self.deletion_steps + 1) * costs.forward_s
        shap_background = self.background * costs.forward_s  # once per model SHAP explains
        parts = {}
        for m in self.methods:
            parts[m] = self.arms * (self.n * per_example[m] + (shap_background if m == "shap" else 0))
            parts[f"{m} checks"] = resanity * per_example[m] + (shap_background if m == "shap" else 0) + curves
        return parts

    def total_s(self, costs: PassCosts) -> float:
        return float(sum(self.seconds(costs).values()))

    def describe(self) -> str:
        sizes = [f"{self.n} example{'s' if self.n != 1 else ''} x {len(self.methods)} methods x {self.arms} arms",
                 f"sanity check on {min(self.sanity_examples, self.n)}",
                 f"deletion/insertion {self.deletion_steps} steps"]
        sizes += [f"LIME {self.lime_samples} samples"] if "lime" in self.methods else []
        sizes += [f"SHAP {self.shap_samples} samples"] if "shap" in self.methods else []
        return ", ".join(sizes)

    def to_dict(self) -> dict:
        return {**asdict(self), "methods": list(self.methods)}


@dataclass(frozen=True)
class FittedPlan:
    """The plan that runs, the one asked for, the estimate and what the budget cut (plain sentences)."""

    plan: ExplainPlan
    requested: ExplainPlan
    budget_s: float | None
    costs: PassCosts
    reductions: list[str]

    @property
    def estimate_s(self) -> dict[str, float]:
        return self.plan.seconds(self.costs)

    def to_dict(self) -> dict:
        return {"budget_s": self.budget_s, "estimated_s": round(sum(self.estimate_s.values()), 1),
                "estimated_s_by_part": {k: round(v, 2) for k, v in self.estimate_s.items()},
                "per_image": self.costs.to_dict(), "chosen": self.plan.to_dict(),
                "requested": self.requested.to_dict(), "reductions": self.reductions}


def measure_costs(model: nn.Module, images: torch.Tensor, *, batch_size: int, precision: str,
                  segmentation: str | None) -> PassCosts:
    """Time a forward batch (the inference copy LIME and deletion use), a forward-and-backward pass
    (Grad-CAM, SHAP: on two images, or on the forward batch where that takes under a second) and one
    ``segmentation`` (None: LIME is not asked for), each after an untimed warm-up."""
    device = device_of(model)
    frozen = inference_copy(model, precision)
    size = min(batch_size, CALIBRATION_BATCH)
    forward_batch = images.repeat(-(-size // len(images)), 1, 1, 1)[:size].to(device)
    forward_s = _per_image(lambda: frozen(forward_batch), len(forward_batch), device, inference=True)
    gradients = frozen if precision == "fp32" else inference_copy(model, "fp32")  # what SHAP differentiates
    with explaining(gradients):
        pair = images[:min(len(images), 2)].to(device)
        backward_s = _per_image(lambda: _gradient(gradients, pair), len(pair), device, inference=False)
        if backward_s * len(forward_batch) < 1.0:  # cheap: time a batch like SHAP's, where fixed costs are shared
            backward_s = _per_image(lambda: _gradient(gradients, forward_batch), len(forward_batch), device,
                                    inference=False, warm=False)
    segment_s = 0.0
    if segmentation is not None:
        picture = np.ascontiguousarray(images[0].permute(1, 2, 0).expand(-1, -1, 3).numpy())
        segment_s = _per_image(lambda: segmenter(segmentation, 0)(picture), 1, device, inference=False, warm=False)
    return PassCosts(forward_s, backward_s, segment_s)


def _gradient(model: nn.Module, x: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    model(x).max(1).values.sum().backward()


def _per_image(run, n: int, device: torch.device, *, inference: bool, warm: bool = True) -> float:
    context = torch.inference_mode if inference else torch.enable_grad
    with context():
        if warm:
            run()
        _synchronise(device)
        start = time.perf_counter()
        run()
        _synchronise(device)
    return (time.perf_counter() - start) / n


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_plan(requested: ExplainPlan, costs: PassCosts, budget: Budget | float | None) -> FittedPlan:
    """The first plan on the ladder (:func:`_ladder`) whose estimate fits the ``budget``.

    ``None`` means no budget: the request runs as asked. A strict budget below the cheapest plan
    (one example, the floors of :data:`FLOORS`) is an error that says the minimum; a default one
    runs that cheapest plan.
    """
    budget = as_budget(budget)
    if budget is None:
        return FittedPlan(requested, requested, None, costs, [])
    budget_s = budget.seconds
    reductions: list[str] = []
    for plan, reason in _ladder(requested):
        if reason:
            reductions.append(reason)
        if plan.total_s(costs) <= budget_s:
            return FittedPlan(plan, requested, budget_s, costs, reductions)
    minimum = plan.total_s(costs)
    if not budget.strict:
        reductions.append(f"even the smallest plan needs about {minimum:.0f} s, more than the default {budget_s:g} s")
        return FittedPlan(plan, requested, budget_s, costs, reductions)
    raise InputError(f"budget: {budget_s:g} s is less than the {minimum:.0f} s the smallest explanation needs on "
                     f"this model and device ({plan.describe()}); give at least --budget {np.ceil(minimum):.0f}, "
                     "or fewer --methods")


def _ladder(plan: ExplainPlan):
    """Plans from the request down to the floors, each with the sentence that says what it gave up.

    The order keeps what the report shows longest: first the sanity check runs on fewer examples,
    then deletion/insertion takes coarser steps, then LIME and SHAP draw fewer samples, and only
    then are fewer examples explained (and, last, the curves get coarser still).
    """
    yield plan, ""
    while plan.sanity_examples > 2 and plan.sanity_examples > FLOORS["sanity_examples"]:
        plan = replace(plan, sanity_examples=max(2, plan.sanity_examples // 2))
        yield plan, f"the randomisation check re-explains {plan.sanity_examples} of the examples"
    if plan.deletion_steps > 10:
        plan = replace(plan, deletion_steps=10)
        yield plan, "deletion/insertion curves take 10 steps"
    sampled = [size for method, size in (("lime", "lime_samples"), ("shap", "shap_samples")) if method in plan.methods]
    while any(_can_halve(plan, size) for size in sampled):
        plan = replace(plan, **{size: _halved(plan, size) for size in sampled})
        yield plan, " and ".join(f"{_NAMES[size]} draws {getattr(plan, size)} samples" for size in sampled) + " per example"
    while plan.n > FLOORS["n"]:
        plan = replace(plan, n=max(FLOORS["n"], plan.n // 2), sanity_examples=min(plan.sanity_examples, plan.n // 2))
        yield plan, f"{plan.n} examples are explained"
    while plan.sanity_examples > FLOORS["sanity_examples"]:
        plan = replace(plan, sanity_examples=FLOORS["sanity_examples"])
        yield plan, "the randomisation check re-explains 1 example"
    if plan.deletion_steps > FLOORS["deletion_steps"]:
        plan = replace(plan, deletion_steps=FLOORS["deletion_steps"])
        yield plan, f"deletion/insertion curves take {FLOORS['deletion_steps']} steps"


_NAMES = {"lime_samples": "LIME", "shap_samples": "SHAP"}


def _can_halve(plan: ExplainPlan, size: str) -> bool:
    return getattr(plan, size) > FLOORS[size]


def _halved(plan: ExplainPlan, size: str) -> int:
    return max(FLOORS[size], getattr(plan, size) // 2) if getattr(plan, size) > FLOORS[size] else getattr(plan, size)
