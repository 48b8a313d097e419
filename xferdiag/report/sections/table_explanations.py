"""Explanations of a table model: the mean |attribution| per feature for every method (arms side by
side), and per example each method's and arm's strongest features as signed bars, labelled with the
example's values."""

from __future__ import annotations

import numpy as np

from ...errors import RunDirError
from ...rundir import RunDir, layout, read_npz
from ...rundir.documents import ExplanationIndex
from .. import fmt, pictures
from .common import class_name
from .explanations import MAX_GALLERY, RERUN, agreement_means

TOP_FEATURES = 8  # per example and panel
SUMMARY_FEATURES = 12  # mean |attribution| chart


def table_explanations(rd: RunDir, index: ExplanationIndex, classes: list[str]) -> dict:
    path = rd.maps_npz
    arrays = read_npz(path)
    examples, names = index["examples"], [str(n) for n in index["feature_names"]]
    rows = arrays.get("rows")
    if rows is None or rows.ndim != 2 or rows.shape != (len(examples), len(names)):
        raise RunDirError(f"{path}: 'rows' should be (N, F) with N = {len(examples)} examples and F = {len(names)} "
                          f"feature names from {layout.INDEX_JSON}; {RERUN}")
    methods, arms = index["methods"], index["arms"]
    values = {(m, a): arrays[f"{m}__{a}"] for m in methods for a in arms if f"{m}__{a}" in arrays}
    for key, v in values.items():
        if v.shape != rows.shape:
            raise RunDirError(f"{path}: '{key[0]}__{key[1]}' should be {rows.shape} like 'rows'; {RERUN}")
    gallery = [_example(i, ex, rows[i], values, methods, arms, names, classes) for i, ex in enumerate(examples[:MAX_GALLERY])]
    return {"methods": [fmt.display_name(m) for m in methods], "arms": arms, "seed": index.get("seed"),
            "n_features": len(names), "summaries": _summaries(values, methods, arms, names, len(examples)),
            "gallery": gallery, "agreement": agreement_means(index["agreement"]),
            "n_examples": len(examples), "truncated": len(examples) > MAX_GALLERY, "top": TOP_FEATURES}


def _summaries(values: dict, methods: list[str], arms: list[str], names: list[str], n: int) -> list[dict]:
    """Per method, the features with the largest mean |attribution|, each arm's bar beside the others."""
    summaries = []
    for m in methods:
        importance = {}
        for a in arms:
            if (m, a) in values:
                mean_abs = np.abs(values[m, a]).mean(0)
                importance[a] = [(names[j], float(mean_abs[j])) for j in np.argsort(-mean_abs, kind="stable")[:SUMMARY_FEATURES]]
        if importance:
            axis = f"mean |{fmt.display_name(m)} value| over {n} test examples"
            summaries.append({"method": fmt.display_name(m), "chart": pictures.feature_importance(importance, axis)})
    return summaries


def _example(i: int, ex: dict, row: np.ndarray, values: dict, methods: list[str], arms: list[str], names: list[str],
             classes: list[str]) -> dict:
    """One example: a panel per method and arm of its strongest features, signed."""
    pred, correct = ex.get("pred") or {}, ex.get("correct") or {}
    grid = []
    for m in methods:
        panels = []
        for a in (a for a in arms if (m, a) in values):
            v = values[m, a][i]
            top = np.argsort(-np.abs(v), kind="stable")[:TOP_FEATURES]
            mark = {True: " ✓", False: " ✗"}.get(correct.get(a), "")
            panels.append({"title": f"{fmt.display_name(m)} · {a}: predicts {class_name(classes, pred.get(a))}{mark}",
                           "names": [f"{names[j]} = {fmt.num(float(row[j]))}" for j in top], "values": v[top]})
        grid += [panels] if panels else []
    return {"index": ex.get("index"), "label": class_name(classes, ex.get("label")),
            "wrong": any(v is False for v in correct.values()),
            "chart": pictures.attribution_bars(grid) if grid else None}
