"""The report's text explanation section: escaped word spans, signs readable without colour, the checks."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from report_fixtures import write_full_run

from xferdiag.errors import RunDirError
from xferdiag.report import render_report
from xferdiag.report.sections.text_explanations import highlight
from xferdiag.rundir import RunDir, write_json, write_npz

WORDS = [["<script>alert(1)</script>", "&amp;", "good", "movie"], ["\"quoted\"", "plain", "<b>x</b>"]]
METHODS = ("ig", "shap", "lime")
ARMS = ("transfer", "scratch")


def write_text_explanations(rd: RunDir, words=WORDS, flagged: str | None = None) -> None:
    n, width = len(words), max(len(w) for w in words)
    rng = np.random.default_rng(0)
    maps = {f"words__{m}__{a}": rng.normal(size=(n, width)).astype(np.float32) for m in METHODS for a in ARMS}
    maps["words__ig__transfer"][0, :4] = [2.0, -1.5, 0.1, 0.0]
    write_npz(rd.maps_npz, input_ids=np.zeros((n, width + 2), dtype=np.int64), **maps)
    examples = [{"index": 3 * i, "label": i % 2, "pred": {"transfer": i % 2, "scratch": 1 - i % 2},
                 "correct": {"transfer": True, "scratch": False}, "words": w, "tokens": ["[CLS]", *w, "[SEP]"]}
                for i, w in enumerate(words)]
    write_json(rd.index_json, {
        "kind": "text", "methods": list(METHODS), "arms": list(ARMS), "seed": 0, "examples": examples,
        "params": {"target": "label"},
        "agreement": {m: {"spearman": [0.5] * n, "topk_overlap": [1.0] * n} for m in METHODS},
        "sanity": {m: {"similarity_after_randomisation": 0.9 if m == flagged else 0.1, "flagged": m == flagged}
                   for m in METHODS},
        "faithfulness": {m: {a: {"comprehensiveness_aopc": 0.42, "sufficiency_aopc": 0.03} for a in ARMS}
                         for m in METHODS},
        "ig_completeness_gap": {a: [1e-3] * n for a in ARMS},
    })


@pytest.fixture(scope="module")
def text_report(tmp_path_factory):
    run = write_full_run(tmp_path_factory.mktemp("text") / "run")
    write_text_explanations(RunDir(run), flagged="lime")
    return render_report(run).html


def test_hostile_words_are_escaped_text(text_report):
    assert "<script" not in text_report.lower() and "<b>x</b>" not in text_report
    assert html.escape("<script>alert(1)</script>") in text_report
    assert "&amp;amp;" in text_report  # the word "&amp;" shown as typed
    assert html.escape('"quoted"') in text_report or "&#34;quoted&#34;" in text_report


def test_words_carry_value_colour_and_sign(text_report):
    spans = re.findall(r'<span class="w ([^"]*)" style="([^"]*)" title="([^"]*)">(.*?)</span>', text_report)
    assert spans
    strong = [s for s in spans if s[2] == "+2"]
    assert strong and "plus marked" in strong[0][0] and "<sup>+</sup>" in strong[0][3] and "rgba(220" in strong[0][1]
    weak_negative = [s for s in spans if s[2] == "-1.5"]
    assert weak_negative and "minus marked" in weak_negative[0][0] and "<sup>−</sup>" in weak_negative[0][3]
    assert "Comprehensiveness" in text_report and "Sufficiency" in text_report
    assert "LIME failed the sanity check" in text_report and "transfer vs scratch" in text_report


def test_highlight_marks_only_strong_words():
    out = highlight(["a", "b", "c", "d"], np.array([1.0, -0.1, 0.0, np.nan]))
    assert [w["sign"] for w in out] == ["+", "", "", ""]
    assert out[1]["cls"] == "minus" and out[2]["cls"] == "" and out[2]["style"] == ""
    assert out[1]["title"] == "-0.1"


def test_wrong_word_maps_are_a_run_directory_error(tmp_path):
    run = write_full_run(tmp_path / "run")
    write_text_explanations(RunDir(run))
    write_npz(RunDir(run).maps_npz, **{"words__ig__transfer": np.zeros((1, 2), dtype=np.float32)})
    with pytest.raises(RunDirError, match="words__ig__transfer"):
        render_report(run)


def test_text_explanations_output_renders(tmp_path):
    """What the text explainers return is what the run directory stores and the report reads."""
    import torch
    from text_helpers import BagModel, cue_corpus, encode, tokenizer

    from xferdiag.explainers import TextRequest, explain_arms
    tok = tokenizer()
    texts, labels = cue_corpus(4, seed=2)
    texts[0] = "<script>alert(1)</script> &amp; " + texts[0]
    ids, mask = encode(tok, texts)
    torch.manual_seed(0)
    models = {"transfer": BagModel(tok.vocab_size, tok.pad_token_id).eval(),
              "scratch": BagModel(tok.vocab_size, tok.pad_token_id).eval()}
    index, maps = explain_arms(TextRequest(models=models, input_ids=ids, attention_mask=mask, labels=labels, tokenizer=tok,
                                           methods=("ig",)), progress=False)
    run = write_full_run(tmp_path / "run")
    write_json(RunDir(run).index_json, index)
    write_npz(RunDir(run).maps_npz, **maps)
    page = render_report(run).html
    assert "What the models read: word attributions" in page and "Integrated Gradients" in page
    assert "<script" not in page.lower() and "&lt;" in page
    assert page.count('<span class="w ') == sum(len(e["words"]) for e in index["examples"]) * 2
