"""The image gallery: each example's picture, then every method's map for every arm, with the checks."""

from __future__ import annotations

import numpy as np

from ...errors import RunDirError
from ...rundir import RunDir, layout, read_npz
from ...rundir.documents import ExplanationIndex
from .. import fmt, pictures
from ..interpret import budget_sentence
from .common import class_name
from .explanations import MAX_GALLERY, RERUN, agreement_means


def image_explanations(rd: RunDir, index: ExplanationIndex, classes: list[str]) -> dict:
    path = rd.maps_npz
    arrays = read_npz(path)
    examples = index["examples"]
    images = arrays.get("images")
    if images is None or images.ndim != 4 or len(images) != len(examples):
        raise RunDirError(f"{path}: 'images' should be (N, C, H, W) with N = {len(examples)} examples from "
                          f"{layout.INDEX_JSON}; {RERUN}")
    methods, arms, sanity, agreement = index["methods"], index["arms"], index["sanity"], index["agreement"]
    maps = {(m, a): _maps_for(arrays, f"{m}__{a}", len(examples), path) for m in methods for a in arms}
    faith, params = index["faithfulness"], index["params"]
    topk = fmt.as_number((params.get("agreement") or {}).get("topk"))
    return {
        "methods": methods, "arms": arms, "seed": index.get("seed"),
        "gallery": [_example(i, ex, images[i], maps, methods, arms, agreement, classes)
                    for i, ex in enumerate(examples[:MAX_GALLERY])],
        "names": {m: fmt.display_name(m) for m in methods},
        "truncated": len(examples) > MAX_GALLERY, "n_examples": len(examples),
        "flagged": {m for m, c in sanity.items() if c.get("flagged")},
        "sanity": [{"method": fmt.display_name(m), "similarity": c.get("similarity_after_randomisation"),
                    "flagged": bool(c.get("flagged")), "examples": c.get("examples")}
                   for m, c in sanity.items()],
        "agreement": agreement_means(agreement),
        "faithfulness": [{"method": fmt.display_name(m), "arm": a, "deletion": v.get("deletion_auc"),
                          "insertion": v.get("insertion_auc")} for m, per_arm in faith.items() for a, v in per_arm.items()],
        "additivity": {a: max((abs(v) for v in gaps if v is not None), default=None)
                       for a, gaps in index["shap_additivity_gap"].items()},
        "gradient": pictures.heatmap_gradient(),
        "target": "each arm's own prediction" if params.get("target") == "prediction" else "the true class",
        "topk": fmt.pct(topk, 0) if topk is not None else "k",
        "budget": budget_sentence(index.get("budget")),
    }


def _maps_for(arrays: dict[str, np.ndarray], key: str, n: int, path) -> np.ndarray | None:
    maps = arrays.get(key)
    if maps is not None and (maps.ndim != 3 or len(maps) != n):
        raise RunDirError(f"{path}: '{key}' should be (N, H, W) with N = {n}; {RERUN}")
    return maps


def _example(i: int, ex: dict, image: np.ndarray, maps: dict, methods: list[str], arms: list[str],
             agreement: dict, classes: list[str]) -> dict:
    """One gallery entry: the picture, and per method each arm's map with the two arms' agreement."""
    pred, correct = ex.get("pred") or {}, ex.get("correct") or {}

    def per_example(method: str, key: str):
        values = (agreement.get(method) or {}).get(key) or []
        return values[i] if i < len(values) else None

    groups = []
    for m in methods:
        cells = [{"arm": a, "pred": class_name(classes, pred.get(a)), "correct": correct.get(a),
                  "uri": None if maps[m, a] is None else pictures.overlay_tile(image, maps[m, a][i])} for a in arms]
        groups.append({"method": m, "cells": cells, "spearman": per_example(m, "spearman"),
                       "topk": per_example(m, "topk_overlap")})
    return {"index": ex.get("index"), "label": class_name(classes, ex.get("label")), "image": pictures.image_tile(image),
            "wrong": any(v is False for v in correct.values()), "groups": groups}
