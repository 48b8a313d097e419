"""Explanations of a text model: per example, each method's words of every arm side by side,
highlighted by their attribution (escaped spans, the value in the title), with word-level
agreement, the randomisation check and ERASER's comprehensiveness and sufficiency."""

from __future__ import annotations

import numpy as np

from ...errors import RunDirError
from ...rundir import RunDir, layout, read_npz
from ...rundir.documents import ExplanationIndex
from .. import fmt, interpret
from .common import class_name
from .explanations import MAX_GALLERY, RERUN, agreement_means

POSITIVE_RGB, NEGATIVE_RGB = "220, 38, 38", "37, 99, 235"


def text_explanations(rd: RunDir, index: ExplanationIndex, classes: list[str]) -> dict:
    path = rd.maps_npz
    arrays = read_npz(path)
    examples = index["examples"]
    words = [[str(w) for w in e.get("words") or []] for e in examples]
    methods, arms = index["methods"], index["arms"]
    values = {}
    for m in methods:
        for a in arms:
            v = arrays.get(f"words__{m}__{a}")
            if v is None:
                continue
            if v.ndim != 2 or len(v) != len(examples) or v.shape[1] < max((len(w) for w in words), default=0):
                raise RunDirError(f"{path}: 'words__{m}__{a}' should be (N, W) with N = {len(examples)} examples and W "
                                  f"at least the most words of an example in {layout.INDEX_JSON}; {RERUN}")
            values[m, a] = v
    agreement, sanity, faith = index["agreement"], index["sanity"], index["faithfulness"]
    gallery = [_example(i, ex, words[i], values, methods, arms, agreement, classes)
               for i, ex in enumerate(examples[:MAX_GALLERY])]
    gaps = index["ig_completeness_gap"]
    return {
        "methods": [fmt.display_name(m) for m in methods], "arms": arms,
        "seed": index.get("seed"), "gallery": gallery, "n_examples": len(examples),
        "truncated": len(examples) > MAX_GALLERY, "agreement": agreement_means(agreement),
        "sanity": [{"method": fmt.display_name(m), "similarity": c.get("similarity_after_randomisation"),
                    "flagged": bool(c.get("flagged"))} for m, c in sanity.items()],
        "faithfulness": [{"method": fmt.display_name(m), "arm": a, "comprehensiveness": v.get("comprehensiveness_aopc"),
                          "sufficiency": v.get("sufficiency_aopc")} for m, per_arm in faith.items() for a, v in per_arm.items()],
        "completeness": {a: max((abs(g) for g in gap if g is not None), default=None) for a, gap in gaps.items()},
        "target": "each arm's own prediction" if index["params"].get("target") == "prediction"
        else "the true class",
        "budget": interpret.budget_sentence(index.get("budget")),
        "words_legend": interpret.TEXT_WORDS_LEGEND, "faithfulness_legend": interpret.TEXT_FAITHFULNESS_LEGEND,
    }


def highlight(words: list[str], values: np.ndarray) -> list[dict]:
    """One entry per word: its text, signed value, tint and, for strong words, the sign shown in text."""
    v = np.asarray(values[:len(words)], dtype=np.float64)
    v = np.where(np.isfinite(v), v, 0.0)
    peak = float(np.abs(v).max(initial=0.0))
    out = []
    for word, value in zip(words, v.tolist()):
        share = abs(value) / peak if peak > 0 else 0.0
        sign = "plus" if value > 0 else "minus" if value < 0 else ""
        marked = bool(sign) and share >= interpret.TEXT_MARK_SHARE
        rgb = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
        out.append({"text": word, "title": f"{value:+.4g}", "cls": f"{sign}{' marked' if marked else ''}".strip(),
                    "style": f"background: rgba({rgb}, {0.08 + 0.6 * share:.2f})" if sign else "",
                    "sign": ("+" if value > 0 else "−") if marked else ""})
    return out


def _example(i: int, ex: dict, words: list[str], values: dict, methods: list[str], arms: list[str], agreement: dict,
             classes: list[str]) -> dict:
    pred, correct = ex.get("pred") or {}, ex.get("correct") or {}

    def per_example(method: str, key: str):
        got = (agreement.get(method) or {}).get(key) or []
        return got[i] if i < len(got) else None

    groups = []
    for m in methods:
        cells = [{"arm": a, "pred": class_name(classes, pred.get(a)), "correct": correct.get(a),
                  "words": highlight(words, values[m, a][i]) if (m, a) in values else None} for a in arms]
        groups.append({"method": fmt.display_name(m), "cells": cells, "spearman": per_example(m, "spearman"),
                       "topk": per_example(m, "topk_overlap")})
    return {"index": ex.get("index"), "label": class_name(classes, ex.get("label")),
            "wrong": any(v is False for v in correct.values()), "groups": groups}
