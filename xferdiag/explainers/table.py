"""Tables: the registry of table explainers (Kernel SHAP, LIME) and the :class:`TableRequest` that
:func:`~.arms.explain_arms` explains with them.

Attributions are per feature, (N, F), for the true class; Grad-CAM needs images and is skipped,
and pixel perturbation checks (sanity, faithfulness) do not apply. What index.json and maps.npz
hold for tables is in docs/rundir.md, "Tables".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..errors import InputError
from ..modalities.kinds import TABLE
from ._common import TabularExplanation, check_request, device_of
from .arms import AgreeFn, Attribution, Kind, Method, Request, agreement
from .lime import lime_tabular
from .shap import shap_tabular

BACKGROUND_SIZE = 32
"""Rows of Kernel SHAP's background, subsampled (seeded) from the training rows."""
TOPK = 0.1


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


def _shap(request: TableRequest, rows: np.ndarray) -> Method:
    def explain(arm, model, rows, targets) -> Attribution:
        return _attribution("shap", shap_tabular(probabilities(model), rows, request.training, request.feature_names,
                                                 targets, n_samples=request.shap_samples, seed=request.seed,
                                                 max_background=BACKGROUND_SIZE))

    return Method("shap", explain, {"nsamples": request.shap_samples,
                                    "n_background": min(BACKGROUND_SIZE, len(request.training)),
                                    "explainer": "KernelExplainer"})


def _lime(request: TableRequest, rows: np.ndarray) -> Method:
    def explain(arm, model, rows, targets) -> Attribution:
        return _attribution("lime", lime_tabular(probabilities(model), rows, request.training, request.feature_names,
                                                 targets, num_samples=request.lime_samples, seed=request.seed))

    return Method("lime", explain, {"num_samples": request.lime_samples, "discretizer": "quartile"})


TABLE_EXPLAINERS: dict[str, Callable[[TableRequest, np.ndarray], Method]] = {"shap": _shap, "lime": _lime}
"""Table explainers by name; the explanation index lists every one's ``params``, in this order."""
METHODS = tuple(TABLE_EXPLAINERS)


class TableKind(Kind):
    """Raw feature rows, explained as asked whatever the budget (a small MLP answers thousands of rows in
    milliseconds); agreement of |attribution|; no checks. Methods for other kinds of data are skipped."""

    name = TABLE
    explainers = TABLE_EXPLAINERS
    targets = ("label",)
    sections = ("importance", "base_values", "agreement")

    def choose(self, request: TableRequest) -> list[str]:
        usable = [m for m in request.methods if m in TABLE_EXPLAINERS]
        if not usable:
            raise InputError(f"methods: tables are explained with {' and '.join(METHODS)}; Grad-CAM needs images")
        return check_request(usable, METHODS, request.target, self.targets)

    def check(self, request: TableRequest) -> np.ndarray:
        return np.asarray(request.rows)

    def predict(self, request: TableRequest, rows: np.ndarray, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {arm: torch.from_numpy(probabilities(model)(rows).argmax(1)) for arm, model in request.models.items()}

    def agree(self, request: TableRequest, rows: np.ndarray) -> AgreeFn:
        return agreement(TOPK, absolute=True)

    def params(self, request: TableRequest, plan: None) -> dict:
        """Every registered method's params (the chosen ones' too), then what was skipped and why."""
        return {"agreement": {"topk": TOPK, "on": "absolute attributions"},
                **{name: factory(request, request.rows).params for name, factory in TABLE_EXPLAINERS.items()},
                "skipped": {m: "needs text" if m == "ig" else "needs images" for m in request.methods
                            if m not in TABLE_EXPLAINERS}}

    def header(self, request: TableRequest) -> dict:
        return {"feature_names": list(request.feature_names)}

    def maps(self, rows: np.ndarray, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"rows": rows.astype(np.float32), **maps}


@dataclass(frozen=True, kw_only=True)
class TableRequest(Request):
    """Rows to explain with Kernel SHAP and LIME, per feature, for the true class (models in eval mode).

    ``training`` rows are LIME's statistics and, subsampled to BACKGROUND_SIZE (seeded), Kernel
    SHAP's background. Agreement between the first two arms compares |attribution| per example.
    Methods that need images or text are listed under ``params.skipped``; there is no budget.
    """

    kind: ClassVar[Kind] = TableKind()
    rows: object
    training: np.ndarray
    feature_names: list[str]
    methods: tuple[str, ...] | list[str] | str = METHODS
