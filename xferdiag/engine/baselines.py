"""Baselines that are not neural arms: TF-IDF + logistic regression for text (recorded by the text modality).

A Transformer trained from random weights on a few hundred texts is a weak baseline; a bag of
words is the one practitioners would reach for. It is fitted on the same training split the arms
train on, its regularisation chosen on the same validation split, and scored on the same test
split. L-BFGS is deterministic and the splits do not change with the seed, so it is fitted once and
recorded for every seed, to sit beside the arms seed by seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TFIDF = "tfidf-logreg"
C_GRID = (0.1, 1.0, 10.0, 100.0)
"""Inverse regularisation strengths tried; the best on the validation split is kept."""


@dataclass(frozen=True)
class BaselineScore:
    """One fitted baseline's test ``accuracy`` and ``macro_f1``, its validation accuracy and chosen ``C``."""

    accuracy: float
    macro_f1: float
    val_accuracy: float
    C: float

    def to_dict(self) -> dict:
        return asdict(self)


def tfidf_logreg(train: tuple[list[str], np.ndarray], val: tuple[list[str], np.ndarray], test: tuple[list[str], np.ndarray],
                 seed: int = 0) -> BaselineScore:
    """Word uni- and bigram TF-IDF (sublinear tf) and a logistic regression, C chosen on ``val``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform(train[0])
    x_val, x_test = vectorizer.transform(val[0]), vectorizer.transform(test[0])
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=1000, solver="lbfgs", random_state=seed).fit(x_train, train[1])
        score = float((model.predict(x_val) == val[1]).mean())
        if best is None or score > best[0]:
            best = (score, c, model)
    score, c, model = best
    predicted = model.predict(x_test)
    return BaselineScore(float((predicted == test[1]).mean()), float(f1_score(test[1], predicted, average="macro")), score, c)
