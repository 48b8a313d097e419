"""What explaining will cost, and the largest plan that fits a time budget.

Explanations are forward passes: for images LIME classifies ``lime_samples`` perturbed images per
example and arm, SHAP (expected gradients) runs ``shap_samples`` forward-and-backward passes, the
randomisation check repeats every method on a randomised model, and deletion/insertion classify
``2 (steps + 1)`` masked images per example, method and arm. :func:`measure_costs` times one batch
of each kind on the real model and device; :class:`ExplainPlan` counts the passes; :func:`fit_plan`
walks down a fixed ladder of cheaper plans until one fits, and says what each step gave up. Text
(:mod:`.text_budget`) counts its own passes in a plan of its own and shares the rest.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial

import numpy as np
import torch
from torch import nn

from .._validate import check_scalar
from ..config import Budget
from ..errors import InputError
from ._common import device_of, explaining
from .inference import inference_copy
from .lime import segmenter
from .shap import SHAP_BATCH

CALIBRATION_BATCH = 16
"""Images in the timed forward batch: big enough that per-image time settles, small enough that
timing a 224 px model (twice: warm-up and timed) costs seconds, not tens of seconds."""
CHEAP_S = 1.0
"""A calibration batch faster than this is timed again at the batch size the explainers use:
small images share fixed costs over a batch, and at 64 px a batch of 16 overstated LIME's and
SHAP's per-image time by about half (plan 88 s, parts 57 s)."""


def as_budget(budget) -> Budget | None:
    """``None`` (no budget), a :class:`Budget`, or seconds (a strict budget)."""
    if budget is None or isinstance(budget, Budget):
        return budget
    return Budget(float(check_scalar(budget, "budget", float, 0.0)))

FLOORS = {"lime_samples": 256, "shap_samples": 32, "deletion_steps": 5, "sanity_examples": 1, "n": 1}
"""The least of each size an image plan goes down to. Measured (benchmarks/bench_explain_quality.py,
reports/benchmarks.md) against maps of 2000 LIME and 2000 SHAP samples on a trained CNN: LIME at
256 samples keeps Spearman rho 0.90 and the whole top 10% (rho 0.78 at 128); SHAP at 32 keeps 84% of
the top 10% and rho 0.80 (69% and 0.45 at 8); neither changes the pointing game or the sanity verdict. Below these a
budget explains fewer examples rather than worse ones."""


@dataclass(frozen=True)
class PassCosts:
    """Measured seconds per image (or text): one forward pass, one forward-and-backward pass, one LIME
    segmentation (images only)."""

    forward_s: float
    backward_s: float
    segment_s: float = 0.0

    def to_dict(self) -> dict:
        return {key: round(value, 6) for key, value in asdict(self).items()}


class Plan:
    """What every plan shares: a total, a dict for the explanation index and the hooks of the ladder (:func:`_ladder`).

    A plan is a frozen dataclass with ``methods``, ``arms``, ``n``, ``lime_samples``, ``shap_samples``
    and ``sanity_examples``, a ``seconds(costs)`` by part and a ``describe()``; ``FLOORS`` are its
    least sizes, ``EARLY_CUTS`` and ``LATE_CUTS`` its own (size, value, sentence) steps, taken before
    the samples are cut and after the examples are."""

    FLOORS: dict[str, int]
    UNIT: str
    """What one pass's cost is per (the explanation index's ``per_<unit>``: ``per_image``, ``per_text``)."""
    EARLY_CUTS: tuple[tuple[str, int, str], ...] = ()
    LATE_CUTS: tuple[tuple[str, int, str], ...] = ()

    def total_s(self, costs: PassCosts) -> float:
        return float(sum(self.seconds(costs).values()))

    def to_dict(self) -> dict:
        return {**asdict(self), "methods": list(self.methods)}


@dataclass(frozen=True)
class ExplainPlan(Plan):
    """The sizes of one image explanation run: ``n`` examples, ``arms`` models, the ``methods``, each method's
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

    FLOORS = FLOORS
    UNIT = "image"
    EARLY_CUTS = (("deletion_steps", 10, "deletion/insertion curves take 10 steps"),)
    LATE_CUTS = (("deletion_steps", FLOORS["deletion_steps"],
                  f"deletion/insertion curves take {FLOORS['deletion_steps']} steps"),)

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

    def describe(self) -> str:
        sizes = [f"{self.n} example{'s' if self.n != 1 else ''} x {len(self.methods)} methods x {self.arms} arms",
                 f"sanity check on {min(self.sanity_examples, self.n)}",
                 f"deletion/insertion {self.deletion_steps} steps"]
        sizes += [f"LIME {self.lime_samples} samples"] if "lime" in self.methods else []
        sizes += [f"SHAP {self.shap_samples} samples"] if "shap" in self.methods else []
        return ", ".join(sizes)


def about_seconds(seconds: float) -> str:
    """An estimate as the plan line gives it: whole seconds, and "under 1 s" where rounding would say "~ 0 s"."""
    return "under 1 s" if seconds < 1 else f"~ {seconds:.0f} s"


@dataclass(frozen=True)
class FittedPlan:
    """The plan that runs, the one asked for, the estimate and what the budget cut (plain sentences)."""

    plan: Plan
    requested: Plan
    budget_s: float | None
    costs: PassCosts
    reductions: list[str]

    @property
    def estimate_s(self) -> dict[str, float]:
        return self.plan.seconds(self.costs)

    def line(self) -> str:
        """The plan as the commands print it before starting (images and text alike)."""
        return (f"explain plan: {self.plan.describe()} {about_seconds(sum(self.estimate_s.values()))}"
                + (f" (budget {self.budget_s:g} s)" if self.budget_s is not None else ""))

    def to_dict(self) -> dict:
        return {"budget_s": self.budget_s, "estimated_s": round(sum(self.estimate_s.values()), 1),
                "estimated_s_by_part": {k: round(v, 2) for k, v in self.estimate_s.items()},
                f"per_{self.plan.UNIT}": self.costs.to_dict(), "chosen": self.plan.to_dict(),
                "requested": self.requested.to_dict(), "reductions": self.reductions}


def measure_costs(model: nn.Module, images: torch.Tensor, *, batch_size: int, precision: str,
                  segmentation: str | None) -> PassCosts:
    """Time a forward batch (the inference copy LIME and deletion use: 16 images, or ``batch_size`` where
    that is cheap), a forward-and-backward pass (Grad-CAM, SHAP: on 2 images, then 16 and SHAP's batch
    while each is cheap: at 64 px a pair's fixed costs made a gradient look 6x dearer than SHAP's
    batches of 50 paid) and one ``segmentation`` (None: LIME is not asked for), each after an untimed warm-up."""
    device = device_of(model)
    frozen = inference_copy(model, precision)
    size = min(batch_size, CALIBRATION_BATCH)
    forward_batch = _repeated(images, size).to(device)
    forward_s = per_input(lambda: frozen(forward_batch), len(forward_batch), device, inference=True)
    if forward_s * batch_size < CHEAP_S and batch_size > size:  # cheap: time LIME's own batch size
        lime_batch = _repeated(images, batch_size).to(device)
        forward_s = per_input(lambda: frozen(lime_batch), batch_size, device, inference=True)
    gradients = frozen if precision == "fp32" else inference_copy(model, "fp32")  # what SHAP differentiates
    backward_s = 0.0
    with explaining(gradients):
        for size in (2, CALIBRATION_BATCH, SHAP_BATCH):  # up to SHAP's own batch while each step stays cheap
            if backward_s * size >= CHEAP_S:
                break
            batch = _repeated(images, size).to(device)
            backward_s = per_input(partial(_gradient, gradients, batch), size, device, inference=False)
    segment_s = 0.0
    if segmentation is not None:
        picture = np.ascontiguousarray(images[0].permute(1, 2, 0).expand(-1, -1, 3).numpy())
        segment_s = per_input(lambda: segmenter(segmentation, 0)(picture), 1, device, inference=False, warm=False)
    return PassCosts(forward_s, backward_s, segment_s)


def _repeated(images: torch.Tensor, size: int) -> torch.Tensor:
    return images.repeat(-(-size // len(images)), 1, 1, 1)[:size]


def _gradient(model: nn.Module, x: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    model(x).max(1).values.sum().backward()


def per_input(run, n: int, device: torch.device, *, inference: bool, warm: bool = True, repeats: int = 2) -> float:
    """Seconds per input of ``run`` (``n`` inputs): the fastest of ``repeats`` timed calls, after an
    untimed one unless ``warm`` is False. One call alone misjudged an EfficientNet gradient batch at
    64 px by up to 6x (40 ms per image against the 6 ms the explainer then took): the fastest of a
    few is what the explainers' thousands of calls run at."""
    context = torch.inference_mode if inference else torch.enable_grad
    fastest = math.inf
    with context():
        if warm:
            run()
        for _ in range(repeats):
            _synchronise(device)
            start = time.perf_counter()
            run()
            _synchronise(device)
            fastest = min(fastest, time.perf_counter() - start)
    return fastest / n


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_plan(requested: Plan, costs: PassCosts, budget: Budget | float | None) -> FittedPlan:
    """The first plan on the ladder (:func:`_ladder`) whose estimate fits the ``budget``.

    ``None`` means no budget: the request runs as asked. A strict budget below the cheapest plan
    (one example, the plan's ``FLOORS``) is an error that says the minimum; a default one
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
        reductions.append(f"even the smallest plan needs about {minimum:.0f} s, more than the {budget_s:g} s budget")
        return FittedPlan(plan, requested, budget_s, costs, reductions)
    raise InputError(f"budget: {budget_s:g} s is less than the {minimum:.0f} s the smallest explanation needs on "
                     f"this model and device ({plan.describe()}); give at least --budget {np.ceil(minimum):.0f}, "
                     "or fewer --methods")


def _ladder(plan: Plan):
    """Plans from the request down to the floors, each with the sentence that says what it gave up.

    The order keeps what the report shows longest: first the sanity check runs on fewer examples,
    then the plan's early cuts (coarser image curves), then LIME and SHAP draw fewer samples, and
    only then are fewer examples explained (and, last, the plan's late cuts).
    """
    floors = plan.FLOORS
    yield plan, ""
    while plan.sanity_examples > 2 and plan.sanity_examples > floors["sanity_examples"]:
        plan = replace(plan, sanity_examples=max(2, plan.sanity_examples // 2))
        yield plan, f"the randomisation check re-explains {plan.sanity_examples} of the examples"
    for step in _cuts(plan, plan.EARLY_CUTS):
        plan = step[0]
        yield step
    sampled = [size for method, size in (("lime", "lime_samples"), ("shap", "shap_samples")) if method in plan.methods]
    while any(getattr(plan, size) > floors[size] for size in sampled):
        plan = replace(plan, **{size: _halved(getattr(plan, size), floors[size]) for size in sampled})
        yield plan, " and ".join(f"{_NAMES[size]} draws {getattr(plan, size)} samples" for size in sampled) + " per example"
    while plan.n > floors["n"]:  # a quarter fewer each time (8, 6, 4, 3, 2, 1): halving left budgets unspent
        n = max(floors["n"], min(plan.n - 1, plan.n * 3 // 4))
        plan = replace(plan, n=n, sanity_examples=min(plan.sanity_examples, n))
        yield plan, f"{plan.n} example{'s are' if plan.n != 1 else ' is'} explained"
    yield from _cuts(plan, (("sanity_examples", floors["sanity_examples"], "the randomisation check re-explains 1 example"),
                            *plan.LATE_CUTS))


def _cuts(plan: Plan, cuts):
    """Each (size, value, sentence) that lowers ``plan``, applied in turn."""
    for size, value, reason in cuts:
        if getattr(plan, size) > value:
            plan = replace(plan, **{size: value})
            yield plan, reason


_NAMES = {"lime_samples": "LIME", "shap_samples": "SHAP"}


def _halved(size: int, floor: int) -> int:
    return max(floor, size // 2) if size > floor else size
