"""The text modality plug-in: which data it handles, the words that separate two corpora, and explaining
through xferdiag.explainers.text only where that module exists."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from xferdiag.analyzers.text_shift import separating_words
from xferdiag.data import Domain
from xferdiag.errors import InputError
from xferdiag.modalities.descriptor import describe_modality
from xferdiag.modalities.image.data import ImageTensors
from xferdiag.modalities.registry import modality_of
from xferdiag.modalities.text.load import Texts
from xferdiag.modalities.text.plugin import TextModality

SOURCE = [f"the cat sat on mat {i} today" for i in range(20)]
TARGET = [f"the dog ran to park {i} today" for i in range(20)]


def text_domain(texts):
    return Domain("texts", ["a", "b"], np.arange(len(texts)) % 2, Texts(texts))


def test_text_domains_go_to_the_text_modality_and_images_do_not():
    assert modality_of(text_domain(SOURCE)).name == "text"
    images = Domain("imgs", ["a", "b"], np.zeros(2, dtype=int), ImageTensors(np.zeros((2, 1, 4, 4))))
    assert modality_of(images).name == "image"
    assert describe_modality("image").can_explain() and describe_modality("table").can_explain()


def test_separating_words_name_each_corpus_own_words():
    rows = separating_words(SOURCE, TARGET, top=4)
    target = [r["word"] for r in rows if r["side"] == "target"]
    source = [r["word"] for r in rows if r["side"] == "source"]
    assert set(target) == {"dog", "ran", "to", "park"} and set(source) == {"cat", "sat", "on", "mat"}
    assert all(r["weight"] > 0 for r in rows if r["side"] == "target")
    dog = next(r for r in rows if r["word"] == "dog")
    assert dog["target_df"] == 1.0 and dog["source_df"] == 0.0
    assert "the" not in target + source  # in every text of both corpora: no evidence either way


def test_input_shift_of_the_plug_in_uses_the_given_rows():
    source, target = text_domain(SOURCE), text_domain(TARGET)
    rows = TextModality().input_shift(source, target, np.arange(10), np.arange(10))
    assert {r["side"] for r in rows} == {"source", "target"}
    with pytest.raises(InputError, match="at least 2 texts"):
        separating_words(SOURCE[:1], TARGET)


@pytest.mark.skipif(importlib.util.find_spec("xferdiag.explainers.text") is not None,
                    reason="the text explainers are installed in this tree")
def test_without_text_explainers_explain_says_so_in_one_line():
    modality = TextModality()
    assert not modality.descriptor.can_explain() and not describe_modality("text").can_explain()
    with pytest.raises(InputError, match="xferdiag.explainers.text"):
        modality.explain(None, methods=["ig"], seed=0, lime_samples=10, shap_samples=10, budget=None, progress=False)


@pytest.mark.skipif(importlib.util.find_spec("xferdiag.explainers.text") is None, reason="needs xferdiag.explainers.text")
def test_methods_text_cannot_use_are_refused_in_one_line():
    modality = TextModality()
    assert modality.descriptor.can_explain() and describe_modality("text").can_explain()
    with pytest.raises(InputError, match="^methods: gradcam cannot explain texts; choose from ig, shap, lime"):
        modality.explain(None, methods=["gradcam"], seed=0, lime_samples=10, shap_samples=10, budget=None, progress=False)
