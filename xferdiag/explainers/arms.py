"""The one orchestrator: every arm (transfer, scratch, ...) explained by every method, then compared.

A modality (:mod:`.image`, :mod:`.table`) turns its requested method names into :class:`Method`
objects from its registry; :func:`explain_arms` computes each arm's maps once per method, the
agreement between the first two arms, and, where the modality's inputs can be perturbed pixel by
pixel, the randomisation sanity test and deletion/insertion faithfulness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from .agreement import spearman_agreement, topk_overlap
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
        """Positions of the examples the sanity check re-explains, spread evenly over the ``n``."""
        if self.sanity_examples is None or self.sanity_examples >= n:
            return np.arange(n)
        return np.unique(np.round(np.linspace(0, n - 1, self.sanity_examples)).astype(int))


def explain_arms(models: dict[str, nn.Module], inputs, targets: dict, methods: list[Method], *, topk: float,
                 absolute: bool = False, checks: Checks | None = None, progress: bool = True,
                 estimate: dict[str, float] | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Maps ``"<method>__<arm>"`` and the index sections ``agreement``, ``sanity``, ``faithfulness``,
    ``seconds`` (wall time per method, its sanity re-run included, and of all faithfulness curves) and
    each method's own entries. Agreement compares the first two arms (``absolute``: by |attribution|);
    the checks run when given, sanity on the first arm only. ``estimate``: seconds per method and
    for ``"faithfulness"`` (:class:`~.budget.ExplainPlan`), so the progress bar's ETA is in time.
    """
    arms = list(models)
    maps: dict[str, np.ndarray] = {}
    sections: dict[str, dict] = {"agreement": {}, "sanity": {}, "faithfulness": {}, "seconds": {"faithfulness": 0.0}}
    work = _Work(methods, len(arms), len(targets[arms[0]]), checks, estimate)
    with tqdm(total=work.total, desc="explain", unit="s" if estimate else "it", disable=None if progress else True,
              bar_format=None if not estimate else "{l_bar}{bar}| ~{remaining} left{postfix}") as bar:
        for method in methods:
            started = time.perf_counter()
            for arm in arms:
                bar.set_postfix_str(f"{method.name} {arm}")
                result = method.explain(arm, models[arm], inputs, targets[arm])
                maps[f"{method.name}__{arm}"] = np.asarray(result.maps, dtype=np.float32)
                for path, value in result.entries.items():
                    _put(sections, (*path, arm), value)
                bar.update(work.arm(method.name))
            if len(arms) >= 2:
                sections["agreement"][method.name] = _agreement(*(maps[f"{method.name}__{a}"] for a in arms[:2]),
                                                                topk, absolute)
            if checks is not None:
                _sanity(sections, bar, work, method, models, inputs, targets, maps, checks)
            sections["seconds"][method.name] = round(time.perf_counter() - started, 2)
            if checks is not None:
                started = time.perf_counter()
                _faithfulness(sections, bar, work, method, models, inputs, targets, maps, checks)
                sections["seconds"]["faithfulness"] += round(time.perf_counter() - started, 2)
    return maps, sections


class _Work:
    """Progress units per step: estimated seconds when there is an estimate, else one per step."""

    def __init__(self, methods: list[Method], arms: int, n: int, checks: Checks | None, estimate: dict[str, float] | None):
        self.methods, self.arms, self.n, self.estimate = len(methods), arms, n, estimate
        self.resanity = 0 if checks is None else len(checks.sanity_rows(n))
        steps = arms + (1 + arms if checks is not None else 0)
        self.total = sum(estimate.values()) if estimate else len(methods) * steps

    def arm(self, method: str) -> float:
        return self._per_example(method) * self.n if self.estimate else 1

    def sanity(self, method: str) -> float:
        return self._per_example(method) * self.resanity if self.estimate else 1

    def faithfulness(self) -> float:
        return self.estimate["faithfulness"] / (self.methods * self.arms) if self.estimate else 1

    def _per_example(self, method: str) -> float:
        """A method's estimate covers every arm's maps and its sanity re-run, example by example."""
        return self.estimate[method] / (self.arms * self.n + self.resanity)


def _sanity(sections: dict, bar, work: _Work, method: Method, models: dict, x, targets: dict, maps: dict,
            checks: Checks) -> None:
    """Sanity on the first arm (its maps reused as the originals; on ``checks.sanity_examples`` of the
    examples when set)."""
    first = next(iter(models))
    bar.set_postfix_str(f"{method.name} sanity")
    picked = checks.sanity_rows(len(x))
    sanity = randomisation_test(models[first], x[picked], targets[first][picked],
                                lambda m, xs, ts: method.explain(first, m, xs, ts).maps, threshold=checks.threshold,
                                n_steps=1, seed=checks.seed, original_maps=maps[f"{method.name}__{first}"][picked])
    sections["sanity"][method.name] = {"similarity_after_randomisation": sanity.similarity_after_randomisation,
                                       "flagged": bool(sanity.flagged), "examples": len(picked)}
    bar.update(work.sanity(method.name))


def _faithfulness(sections: dict, bar, work: _Work, method: Method, models: dict, x, targets: dict, maps: dict,
                  checks: Checks) -> None:
    """Deletion and insertion AUCs of every arm's maps."""
    arms = list(models)
    sections["faithfulness"][method.name] = {}
    for arm in arms:
        bar.set_postfix_str(f"{method.name} faithfulness {arm}")
        curves = deletion_insertion(models[arm], x, maps[f"{method.name}__{arm}"], targets[arm], steps=checks.steps,
                                    baseline=checks.baseline, seed=checks.seed)
        sections["faithfulness"][method.name][arm] = {"deletion_auc": float(curves.deletion_auc.mean()),
                                                      "insertion_auc": float(curves.insertion_auc.mean())}
        bar.update(work.faithfulness())


def _agreement(a: np.ndarray, b: np.ndarray, topk: float, absolute: bool) -> dict:
    if absolute:
        a, b = np.abs(a), np.abs(b)
    return {"spearman": floats(spearman_agreement(a, b)), "topk_overlap": floats(topk_overlap(a, b, topk))}


def _put(sections: dict, path: tuple[str, ...], value) -> None:
    node = sections
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def floats(values) -> list[float | None]:
    """Plain floats for JSON, with None where a value is undefined (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]

