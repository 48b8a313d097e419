"""The one orchestrator: every arm (transfer, scratch, ...) explained by every method, then compared.

A modality (:mod:`.image`, :mod:`.table`) turns its requested method names into :class:`Method`
objects from its registry; :func:`explain_arms` computes each arm's maps once per method, the
agreement between the first two arms, and, where the modality's inputs can be perturbed pixel by
pixel, the randomisation sanity test and deletion/insertion faithfulness.
"""

from __future__ import annotations

import math
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


def explain_arms(models: dict[str, nn.Module], inputs, targets: dict, methods: list[Method], *, topk: float,
                 absolute: bool = False, checks: Checks | None = None,
                 progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Maps ``"<method>__<arm>"`` and the index sections ``agreement``, ``sanity``, ``faithfulness`` and
    each method's own entries. Agreement compares the first two arms (``absolute``: by |attribution|);
    the checks run when given, sanity on the first arm only.
    """
    arms = list(models)
    maps: dict[str, np.ndarray] = {}
    sections: dict[str, dict] = {"agreement": {}, "sanity": {}, "faithfulness": {}}
    per_method = len(arms) + (1 + len(arms) if checks is not None else 0)
    with tqdm(total=len(methods) * per_method, desc="explain", disable=None if progress else True) as bar:
        for method in methods:
            for arm in arms:
                bar.set_postfix_str(f"{method.name} {arm}")
                result = method.explain(arm, models[arm], inputs, targets[arm])
                maps[f"{method.name}__{arm}"] = np.asarray(result.maps, dtype=np.float32)
                for path, value in result.entries.items():
                    _put(sections, (*path, arm), value)
                bar.update()
            if len(arms) >= 2:
                sections["agreement"][method.name] = _agreement(*(maps[f"{method.name}__{a}"] for a in arms[:2]),
                                                                topk, absolute)
            if checks is not None:
                _sanity_and_faithfulness(sections, bar, method, models, inputs, targets, maps, checks)
    return maps, sections


def _sanity_and_faithfulness(sections: dict, bar, method: Method, models: dict, x, targets: dict, maps: dict,
                             checks: Checks) -> None:
    """Sanity on the first arm (its maps reused as the originals), faithfulness on every arm."""
    arms = list(models)
    first = arms[0]
    bar.set_postfix_str(f"{method.name} sanity")
    sanity = randomisation_test(models[first], x, targets[first], lambda m, xs, ts: method.explain(first, m, xs, ts).maps,
                                threshold=checks.threshold, n_steps=1, seed=checks.seed,
                                original_maps=maps[f"{method.name}__{first}"])
    sections["sanity"][method.name] = {"similarity_after_randomisation": sanity.similarity_after_randomisation,
                                       "flagged": bool(sanity.flagged)}
    bar.update()
    sections["faithfulness"][method.name] = {}
    for arm in arms:
        bar.set_postfix_str(f"{method.name} faithfulness {arm}")
        curves = deletion_insertion(models[arm], x, maps[f"{method.name}__{arm}"], targets[arm], steps=checks.steps,
                                    baseline=checks.baseline, seed=checks.seed)
        sections["faithfulness"][method.name][arm] = {"deletion_auc": float(curves.deletion_auc.mean()),
                                                      "insertion_auc": float(curves.insertion_auc.mean())}
        bar.update()


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

