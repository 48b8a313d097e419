"""Tables: the registry of table explainers (Kernel SHAP, LIME) and :func:`explain_table`.

Attributions are per feature, (N, F), for the true class; Grad-CAM needs images and is skipped,
and pixel perturbation checks (sanity, faithfulness) do not apply. :func:`explain_table` returns
what ``index.json`` and ``maps.npz`` hold (docs/rundir.md, "Tables").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ._common import TabularExplanation, device_of
from .arms import Attribution, Method, explain_arms
from .examples import examples
from .lime import lime_tabular
from .shap import shap_tabular

KIND = "tabular"
"""The explanation index's ``kind`` for tables, on which the report keys its table sections."""
BACKGROUND_SIZE = 32
"""Rows of Kernel SHAP's background, subsampled (seeded) from the training rows."""
TOPK = 0.1


@dataclass(frozen=True)
class TableRequest:
    """What the table explainers are asked for: training rows, feature names and each method's settings."""

    training: np.ndarray
    feature_names: list[str]
    seed: int
    lime_samples: int
    shap_samples: int


def probabilities(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The explainers' view of a table model: (n, F) raw rows -> (n, C) class probabilities."""
    device = device_of(model)

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(rows), dtype=torch.float32, device=device)
            return torch.softmax(model(x).float(), 1).cpu().numpy()

    return predict


def _attribution(name: str, result: TabularExplanation) -> Attribution:
    return Attribution(result.values, {("importance", name): [{"name": n, "mean_abs": v} for n, v in result.importance],
                                       ("base_values", name): result.base_values.tolist()})


def _shap(request: TableRequest) -> Method:
    def explain(arm, model, rows, targets) -> Attribution:
        return _attribution("shap", shap_tabular(probabilities(model), rows, request.training, request.feature_names,
                                                 targets, n_samples=request.shap_samples, seed=request.seed,
                                                 max_background=BACKGROUND_SIZE))

    return Method("shap", explain, {"nsamples": request.shap_samples,
                                    "n_background": min(BACKGROUND_SIZE, len(request.training)),
                                    "explainer": "KernelExplainer"})


def _lime(request: TableRequest) -> Method:
    def explain(arm, model, rows, targets) -> Attribution:
        return _attribution("lime", lime_tabular(probabilities(model), rows, request.training, request.feature_names,
                                                 targets, num_samples=request.lime_samples, seed=request.seed))

    return Method("lime", explain, {"num_samples": request.lime_samples, "discretizer": "quartile"})


TABLE_EXPLAINERS: dict[str, Callable[[TableRequest], Method]] = {"shap": _shap, "lime": _lime}
"""Table explainers by name; the explanation index lists every one's ``params``, in this order."""
METHODS = tuple(TABLE_EXPLAINERS)


def explain_table(models: dict[str, torch.nn.Module], rows: np.ndarray, labels: np.ndarray, training: np.ndarray,
                  feature_names: list[str], *, methods=METHODS, seed: int = 0, lime_samples: int = 1000,
                  shap_samples: int = 200, example_ids=None) -> tuple[dict, dict[str, np.ndarray]]:
    """Kernel SHAP and LIME values of the true class, per feature, for every arm (models in eval mode).

    ``training`` rows are LIME's statistics and, subsampled to BACKGROUND_SIZE (seeded), Kernel
    SHAP's background. Agreement between the first two arms compares |attribution| per example.
    Methods that need images are listed under ``params.skipped``.
    """
    usable = [m for m in methods if m in TABLE_EXPLAINERS]
    if not usable:
        raise InputError(f"--methods: tables are explained with {' and '.join(METHODS)}; Grad-CAM needs images")
    arms = list(models)
    ids = np.arange(len(rows)) if example_ids is None else np.asarray(example_ids)
    preds = {arm: probabilities(models[arm])(rows).argmax(1) for arm in arms}
    request = TableRequest(training, list(feature_names), seed, lime_samples, shap_samples)
    registered = {name: factory(request) for name, factory in TABLE_EXPLAINERS.items()}
    index = {
        "kind": KIND, "methods": usable, "arms": arms, "seed": seed, "feature_names": list(feature_names),
        "params": {"target": "label", "agreement": {"topk": TOPK, "on": "absolute attributions"},
                   **{name: method.params for name, method in registered.items()},
                   "skipped": {m: "needs text" if m == "ig" else "needs images" for m in methods if m not in TABLE_EXPLAINERS}},
        "examples": examples(ids, labels, preds),
    }
    maps, sections = explain_arms(models, rows, {arm: labels for arm in arms}, [registered[m] for m in usable],
                                  topk=TOPK, absolute=True, progress=False)
    index.update({key: sections.get(key, {}) for key in ("importance", "base_values", "agreement")})
    return index, {"rows": rows.astype(np.float32), **maps}
