"""The one orchestrator: every arm (transfer, scratch, ...) explained by every method, then compared.

A modality (:mod:`.image`, :mod:`.table`) turns its requested method names into :class:`Method`
objects from its registry; :func:`explain_arms` computes each arm's maps once per method, the
agreement between the first two arms (or the modality's own agreement), and the checks: for pixels
the randomisation sanity test and deletion/insertion faithfulness, for other inputs the modality's own.
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
"""A modality's own agreement of two arms' maps, e.g. over words rather than tokens."""


def explain_arms(models: dict[str, nn.Module], inputs, targets: dict, methods: list[Method], *, topk: float,
                 absolute: bool = False, checks: Checks | ChecksFn | None = None, progress: bool = True,
                 agree: AgreeFn | None = None,
                 estimate: dict[str, float] | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Maps ``"<method>__<arm>"`` and the index sections ``agreement``, ``sanity``, ``faithfulness``,
    ``seconds`` and each method's own entries.

    Agreement compares the first two arms (``absolute``: by |attribution|), or is
    ``agree(maps_a, maps_b)`` when given. The checks run when given: :class:`Checks` are the pixel
    checks (sanity on the first arm only), a :data:`ChecksFn` a modality's own. ``seconds`` holds
    the wall time of each method's maps (``"<method>"``) and of its checks (``"<method> checks"``);
    ``estimate``, in the same keys (:meth:`~.budget.ExplainPlan.seconds`), makes the progress bar
    count seconds, so its ETA is a time.
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
                pair = (maps[f"{method.name}__{a}"] for a in arms[:2])
                sections["agreement"][method.name] = agree(*pair) if agree else _agreement(*pair, topk, absolute)
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

