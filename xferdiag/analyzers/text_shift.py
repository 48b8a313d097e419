"""Words that separate two corpora: a linear domain classifier on TF-IDF, read through its weights."""

from __future__ import annotations

import numpy as np

from .._validate import check_scalar
from ..errors import InputError

TOP_WORDS = 10


def separating_words(source: list[str], target: list[str], top: int = TOP_WORDS) -> list[dict]:
    """The ``top`` words most indicative of each side, from an L2-regularised logistic regression
    telling ``target`` (1) from ``source`` (0) on unigram TF-IDF (words in at least two texts).

    Each row: ``word``, ``side`` ("source" or "target"), ``weight`` (the coefficient, signed toward
    the target), and the word's document frequency on each side. The classifier's held-out ability
    is what proxy A-distance and C2ST measure on embeddings; these rows say *which* words differ.
    """
    top = check_scalar(top, "top", int, 1)
    if len(source) < 2 or len(target) < 2:
        raise InputError(f"source, target: need at least 2 texts each, got {len(source)} and {len(target)}")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True)
    try:
        x = vectorizer.fit_transform([*source, *target])
    except ValueError:  # no word occurs in two texts
        return []
    y = np.r_[np.zeros(len(source)), np.ones(len(target))]
    weights = LogisticRegression(C=1.0, max_iter=1000).fit(x, y).coef_[0]
    words = vectorizer.get_feature_names_out()
    present = (x > 0).toarray() if x.shape[1] < 5000 else None
    rows = []
    for side, order in (("target", np.argsort(-weights)), ("source", np.argsort(weights))):
        for j in order[:top]:
            if (weights[j] > 0) != (side == "target"):
                break
            row = {"word": str(words[j]), "side": side, "weight": float(weights[j])}
            if present is not None:
                row.update(source_df=float(present[: len(source), j].mean()), target_df=float(present[len(source):, j].mean()))
            rows.append(row)
    return rows
