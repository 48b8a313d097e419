"""The one orchestrator: every arm (transfer, scratch, ...) explained by every method, then compared.

:func:`explain_arms` takes a modality's :class:`Request` and runs what every modality shares: it
checks the request, predicts with every arm, measures the costs and fits the plan to the budget,
picks the examples, builds the methods from the modality's registry, computes each arm's maps once
per method, the agreement between the first two arms and the checks, and assembles what
``explanations/index.json`` and ``maps.npz`` hold. What differs between modalities is a :class:`Kind`
registered on its request type (:mod:`.image`, :mod:`.table`, :mod:`.text`): its input checks,
predictions, plan and cost measurement, agreement, checks and extra maps. The checks: for pixels the
randomisation sanity test and deletion/insertion faithfulness, for other inputs the modality's own.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validate import check_scalar
from ._common import as_indices, check_arms, check_request
from .agreement import spearman_agreement, topk_overlap
from .budget import Budget, FittedPlan, PassCosts, Plan, fit_plan
from .examples import examples as index_examples, pick_examples
from .faithfulness import deletion_insertion, randomisation_test


@dataclass(frozen=True)
class Attribution:
    """One arm's explanation by one method: ``maps`` float32, (N, H, W) for images and (N, F) for
    tables; ``entries`` are extra results for index.json, keyed by where they go (the arm is appended).
    """

    maps: np.ndarray
    entries: dict[tuple[str, ...], object] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A registered explainer, configured for one request: ``explain(arm, model, inputs, targets)``."""

    name: str
    explain: Callable[[str, nn.Module, object, object], Attribution]
    params: dict


@dataclass(frozen=True)
class Checks:
    """Settings of the sanity (full model randomisation) and faithfulness (deletion/insertion) checks."""

    threshold: float
    steps: int
    baseline: str
    seed: int
    sanity_examples: int | None = None
    """How many examples (spread over the batch) the randomised model re-explains; None: all."""

    def sanity_rows(self, n: int) -> np.ndarray:
        return spread_rows(n, self.sanity_examples)


def spread_rows(n: int, k: int | None) -> np.ndarray:
    """Positions of ``k`` of ``n`` examples spread evenly over them (all when ``k`` is None or >= n):
    the examples a sanity check re-explains."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


ChecksFn = Callable[[Method, dict[str, nn.Module], object, dict, dict[str, np.ndarray]], tuple[dict, dict[str, dict]]]
"""A modality's own checks of one method: ``(method, models, inputs, targets, maps) -> (sanity entry,
{arm: faithfulness entry})``, for inputs that are not pixels (text)."""
AgreeFn = Callable[[np.ndarray, np.ndarray], dict]
"""The agreement of two arms' maps: :func:`agreement`, or a modality's own, e.g. over words rather than tokens."""


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every modality is asked for; a modality's request (:class:`~.image.ImageRequest`,
    :class:`~.text.TextRequest`, :class:`~.table.TableRequest`) adds its inputs and options and
    registers its :class:`Kind`.

    ``models`` are the arms ({name: model}); their maps are stored as ``"<method>__<arm>"``.
    ``labels`` are the examples' true classes and ``example_ids`` their rows in the test split
    (default 0..N-1). With ``target="label"`` every arm explains the true class, so the arms' maps
    answer the same question and a misclassified example shows what the model failed to see;
    ``"prediction"`` explains each arm's own prediction. ``budget`` (seconds, or a
    :class:`~.budget.Budget`) sizes the work to fit where the kind has a plan: the passes each part
    needs are counted and timed on these models, and sizes come down a fixed ladder until the
    estimate fits (what was cut is in index.json's ``budget.reductions``); None runs what is asked.
    """

    kind: ClassVar[Kind]
    models: dict[str, nn.Module]
    labels: object
    methods: tuple[str, ...] | list[str] | str = ()
    example_ids: object = None
    seed: int = 0
    lime_samples: int = 1000
    shap_samples: int = 200
    target: str = "label"
    budget: Budget | float | None = None

    def __post_init__(self) -> None:
        """The sizes checked once, as numbers of their type, naming the parameter."""
        for name, low in (("seed", 0), ("lime_samples", 2), ("shap_samples", 1)):
            settle(self, name, int, low)


def settle(request: Request, name: str, number: type, low: float, high: float | None = None, **bounds) -> None:
    """Check ``request.<name>`` (:func:`~xferdiag._validate.check_scalar`; None passes) and keep it as a ``number``
    (``int`` or ``float``): the one place a frozen request is written to, while it is being made."""
    value = getattr(request, name)
    if value is not None:
        object.__setattr__(request, name, check_scalar(value, name, number, low, high, **bounds))


class Kind(ABC):
    """What one modality supplies to :func:`explain_arms`: only what differs between modalities.

    Its checked inputs are indexable by example rows (``inputs[rows]``) and have a length.
    """

    name: str
    """The explanation index's ``kind`` (one of :data:`~xferdiag.modalities.kinds.KINDS`), on which the report keys its sections."""
    explainers: dict[str, Callable[[Request, object], Method]]
    """The registry: each method by name, configured for a request and its checked inputs; the
    explanation index lists their ``params`` in this order."""
    targets: tuple[str, ...] = ("label", "prediction")
    sections: tuple[str, ...] = ("agreement", "sanity", "faithfulness")
    """The sections the explanation index takes from the run (and the methods' own entries), in this order."""

    def choose(self, request: Request) -> list[str]:
        """The methods to run, checked."""
        return check_request(request.methods, tuple(self.explainers), request.target, self.targets)

    @abstractmethod
    def check(self, request: Request):
        """The examples as the methods take them, checked."""

    @abstractmethod
    def predict(self, request: Request, inputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every arm's predicted class per example."""

    def plan(self, request: Request, inputs, methods: list[str]) -> Plan | None:
        """The sizes asked for, counted as the budget's ladder needs; None: explained as asked."""
        return None

    def measure(self, request: Request, model: nn.Module, inputs, targets: torch.Tensor, plan: Plan) -> PassCosts:
        """The cost of one pass per example on the first arm, for kinds with a :meth:`plan`."""
        raise NotImplementedError(f"{type(self).__name__} has a plan and must measure its costs")

    @abstractmethod
    def agree(self, request: Request, inputs) -> AgreeFn:
        """How the first two arms' maps are compared."""

    def checks(self, request: Request, inputs, plan: Plan | None) -> Checks | ChecksFn | None:
        """The sanity and faithfulness checks that run (None: none)."""
        return None

    def params(self, request: Request, plan: Plan | None) -> dict:
        """index.json's ``params`` besides the target and each method's own."""
        return {}

    def header(self, request: Request) -> dict:
        """index.json's entries of this kind alone, listed after the seed."""
        return {}

    def example_entries(self, inputs) -> list[dict]:
        """This kind's entries of index.json's ``examples``, one dict per explained example."""
        return [{} for _ in range(len(inputs))]

    @abstractmethod
    def maps(self, inputs, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """maps.npz's arrays: the explained inputs, the methods' ``maps`` and what derives from them."""


class Explanation(NamedTuple):
    """index.json's content and maps.npz's arrays (docs/rundir.md); writing them is the caller's job."""

    index: dict
    maps: dict[str, np.ndarray]


@dataclass(frozen=True)
class Examples:
    """The examples being explained: the checked ``inputs``, their labels, their ids in the test split
    and every arm's predictions."""

    inputs: object
    labels: torch.Tensor
    ids: list[int]
    predictions: dict[str, torch.Tensor]

    def subset(self, rows: np.ndarray) -> Examples:
        return Examples(self.inputs[rows], self.labels[rows], [self.ids[i] for i in rows],
                        {arm: p[rows] for arm, p in self.predictions.items()})


def explain_arms(request: Request, *, progress: bool = True) -> Explanation:
    """Maps of every requested method for every arm, the agreement of the first two arms, the checks
    and the plan, as index.json and maps.npz hold them; ``progress`` prints the plan and shows a bar.

    index.json takes the sections ``agreement``, ``sanity`` and ``faithfulness`` (as the kind
    lists) and the methods' own entries; ``budget.measured_s_by_part`` holds the wall time of each
    method's maps (``"<method>"``) and of its checks (``"<method> checks"``).
    """
    kind = request.kind
    methods, examples, fitted = _examples(kind, request, progress)
    plan = None if fitted is None else fitted.plan
    if plan is not None:
        request = replace(request, lime_samples=plan.lime_samples, shap_samples=plan.shap_samples)
    x = examples.inputs
    targets = {arm: examples.labels if request.target == "label" else examples.predictions[arm] for arm in request.models}
    built = {name: kind.explainers[name](request, x) for name in methods}
    index = _index(kind, request, methods, built, examples, fitted)
    maps, sections = _explain_methods(request.models, x, targets, list(built.values()), agree=kind.agree(request, x),
                                      checks=kind.checks(request, x, plan), progress=progress,
                                      estimate=None if fitted is None else fitted.estimate_s)
    index.update({key: sections.get(key, {}) for key in kind.sections})
    if fitted is not None:
        index["budget"]["measured_s_by_part"] = sections["seconds"]
    return Explanation(index, kind.maps(x, maps))


def _examples(kind: Kind, request: Request, progress: bool) -> tuple[list[str], Examples, FittedPlan | None]:
    """The methods and the examples, checked and predicted, cut to the plan that fits the budget
    (printed when ``progress``; None where the kind has no plan)."""
    arms = check_arms(request.models)
    inputs = kind.check(request)
    labels = as_indices(request.labels, "labels", len(inputs))
    ids = list(range(len(inputs))) if request.example_ids is None else \
        as_indices(request.example_ids, "example_ids", len(inputs)).tolist()
    methods = kind.choose(request)
    examples = Examples(inputs, labels, ids, kind.predict(request, inputs, labels))
    asked = kind.plan(request, inputs, methods)
    if asked is None:
        return methods, examples, None
    first = arms[0]
    targets = labels if request.target == "label" else examples.predictions[first]
    fitted = fit_plan(asked, kind.measure(request, request.models[first], inputs, targets, asked), request.budget)
    if progress:
        tqdm.write(fitted.line())
    if fitted.plan.n < len(labels):
        examples = examples.subset(pick_examples(labels, examples.predictions, fitted.plan.n, request.seed))
    return methods, examples, fitted


def _index(kind: Kind, request: Request, methods: list[str], built: dict[str, Method], examples: Examples,
           fitted: FittedPlan | None) -> dict:
    """index.json before the run's sections: the request, each method's params, the examples and the plan."""
    listed = index_examples(examples.ids, examples.labels, examples.predictions)
    for entry, extra in zip(listed, kind.example_entries(examples.inputs), strict=True):
        entry.update(extra)
    params = {"target": request.target, **kind.params(request, None if fitted is None else fitted.plan),
              **{name: built[name].params for name in kind.explainers if name in built}}
    index = {"kind": kind.name, "methods": list(methods), "arms": list(request.models),
             "seed": request.seed, **kind.header(request), "params": params, "examples": listed}
    if fitted is not None:
        index["budget"] = fitted.to_dict()
    return index


def _explain_methods(models: dict[str, nn.Module], inputs, targets: dict, methods: list[Method], *, agree: AgreeFn,
                     checks: Checks | ChecksFn | None, progress: bool,
                     estimate: dict[str, float] | None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Maps ``"<method>__<arm>"`` and the sections ``agreement``, ``sanity``, ``faithfulness``,
    ``seconds`` and each method's own entries.

    Agreement compares the first two arms. The checks run when given: :class:`Checks` are the pixel
    checks (sanity on the first arm only), a :data:`ChecksFn` a modality's own. ``seconds`` holds
    the wall time of each method's maps and of its checks; ``estimate``, in the same keys
    (:meth:`~.budget.ExplainPlan.seconds`), makes the progress bar count seconds, so its ETA is a time.
    """
    arms = list(models)
    maps: dict[str, np.ndarray] = {}
    sections: dict[str, dict] = {"agreement": {}, "sanity": {}, "faithfulness": {}, "seconds": {}}
    run_checks = _pixel_checks(checks) if isinstance(checks, Checks) else checks
    total = sum(estimate.values()) if estimate else len(methods) * (len(arms) + (run_checks is not None))
    with tqdm(total=total, desc="explain", unit="s" if estimate else "it", disable=None if progress else True,
              bar_format="{l_bar}{bar}| ~{remaining} left{postfix}" if estimate else None) as bar:
        for method in methods:
            started = time.perf_counter()
            for arm in arms:
                bar.set_postfix_str(f"{method.name} {arm}")
                result = method.explain(arm, models[arm], inputs, targets[arm])
                maps[f"{method.name}__{arm}"] = np.asarray(result.maps, dtype=np.float32)
                for path, value in result.entries.items():
                    _put(sections, (*path, arm), value)
                bar.update(estimate[method.name] / len(arms) if estimate else 1)
            sections["seconds"][method.name] = round(time.perf_counter() - started, 2)
            if len(arms) >= 2:
                sections["agreement"][method.name] = agree(*(maps[f"{method.name}__{a}"] for a in arms[:2]))
            if run_checks is not None:
                started = time.perf_counter()
                bar.set_postfix_str(f"{method.name} checks")
                sanity, faithfulness = run_checks(method, models, inputs, targets, maps)
                sections["sanity"][method.name] = sanity
                sections["faithfulness"][method.name] = faithfulness
                sections["seconds"][f"{method.name} checks"] = round(time.perf_counter() - started, 2)
                bar.update(estimate.get(f"{method.name} checks", 0) if estimate else 1)
    return maps, sections


def _pixel_checks(checks: Checks) -> ChecksFn:
    """Sanity on the first arm (its maps reused as the originals; on ``checks.sanity_examples`` of the
    examples when set), deletion/insertion on every arm."""
    def run(method: Method, models: dict, x, targets: dict, maps: dict) -> tuple[dict, dict[str, dict]]:
        first = next(iter(models))
        picked = checks.sanity_rows(len(x))
        sanity = randomisation_test(models[first], x[picked], targets[first][picked],
                                    lambda m, xs, ts: method.explain(first, m, xs, ts).maps,
                                    threshold=checks.threshold, n_steps=1, seed=checks.seed,
                                    original_maps=maps[f"{method.name}__{first}"][picked])
        faithfulness = {}
        for arm, model in models.items():
            curves = deletion_insertion(model, x, maps[f"{method.name}__{arm}"], targets[arm], steps=checks.steps,
                                        baseline=checks.baseline, seed=checks.seed)
            faithfulness[arm] = {"deletion_auc": float(curves.deletion_auc.mean()),
                                 "insertion_auc": float(curves.insertion_auc.mean())}
        return ({"similarity_after_randomisation": sanity.similarity_after_randomisation,
                 "flagged": bool(sanity.flagged), "examples": len(picked)}, faithfulness)

    return run


def agreement(topk: float, absolute: bool = False) -> AgreeFn:
    """Spearman and top-``topk`` overlap of two arms' maps per example (``absolute``: of |attribution|)."""
    def agree(a: np.ndarray, b: np.ndarray) -> dict:
        if absolute:
            a, b = np.abs(a), np.abs(b)
        return {"spearman": floats(spearman_agreement(a, b)), "topk_overlap": floats(topk_overlap(a, b, topk))}

    return agree


def _put(sections: dict, path: tuple[str, ...], value) -> None:
    node = sections
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def floats(values) -> list[float | None]:
    """Plain floats for JSON, with None where a value is undefined (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]

