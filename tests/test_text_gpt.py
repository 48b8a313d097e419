"""GPT-style decoders through ``hf:DIR``: a tokenizer without a pad token pads with its end-of-text
token (Hugging Face's recipe), which padding masks out; one that writes that token into every text is
refused. A tiny GPT-2 with random weights and a word-level tokenizer over the cue vocabulary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from xferdiag.commands.textdemo import write_jsonl
from xferdiag.errors import ModelError
from xferdiag.modalities.text.cues import cue_corpus, vocabulary
from xferdiag.modalities.text.network import load_tokenizer, transformers_offline
from xferdiag.models import ModelSource, build_transfer_model, load_pretrained_classifier, resolve_input_spec
from xferdiag.models.inputs import InputRequest

pytestmark = pytest.mark.usefixtures("one_thread")
END = "<|endoftext|>"


def make_tiny_gpt(folder, end_every_text: bool = False):
    tf = transformers_offline()
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = ["[UNK]", *vocabulary(), END]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if end_every_text:
        tokenizer.post_processor = processors.TemplateProcessing(single=f"$A {END}", special_tokens=[(END, len(words) - 1)])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END, bos_token=END, unk_token="[UNK]")
    fast.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = tf.GPT2Config(vocab_size=len(words), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                           bos_token_id=len(words) - 1, eos_token_id=len(words) - 1)
    tf.GPT2Model(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def tiny_gpt(tmp_path_factory):
    return make_tiny_gpt(tmp_path_factory.mktemp("gpt") / "gpt")


def _model(folder, options: str = ""):
    source = ModelSource.parse(f"hf:{folder}{options}")
    classifier = load_pretrained_classifier(source, None)
    spec = resolve_input_spec(source, classifier, InputRequest(max_length=16))
    torch.manual_seed(0)
    return build_transfer_model(source, 2, pretrained=classifier, input_spec=spec).eval(), spec.tokenizer


@pytest.mark.parametrize("options", ["", ":head=hf"])
def test_end_of_text_pads_and_padding_changes_nothing(tiny_gpt, options):
    model, tokenizer = _model(tiny_gpt, options)
    assert tokenizer.pad_token == END and tokenizer.pad_token_id == len(vocabulary()) + 1
    texts = ["the city met", "the report said that a new plan for city roads was shown"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert batch["attention_mask"][0].tolist().count(0) == 9  # the short text padded with end-of-text
    with torch.no_grad():
        together = model(batch["input_ids"], batch["attention_mask"])
        alone = model(**{k: v[:1, :3] for k, v in batch.items()})
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=1e-5)


def test_first_token_pooling_of_a_decoder_is_refused(tiny_gpt):
    with pytest.raises(ModelError, match=r"pool=cls reads the first token, which in a decoder \(gpt2\) sees no other token"):
        _model(tiny_gpt, ":pool=cls")


def test_a_tokenizer_that_ends_every_text_with_its_pad_candidate_is_refused(tmp_path):
    folder = make_tiny_gpt(tmp_path / "gpt", end_every_text=True)
    with pytest.raises(ModelError, match="no pad token and ends every text with its end-of-text token"):
        load_tokenizer(str(folder))


def test_finetune_and_report_a_gpt_run(tiny_gpt, tmp_path):
    data = write_jsonl(tmp_path / "cues.jsonl", cue_corpus("target", 30, seed=3))
    run = tmp_path / "run"
    for args in (["finetune", "--model", f"hf:{tiny_gpt}", "--data", str(data), "--epochs", "2", "--seeds", "1",
                  "--out", str(run), "--threads", "1", "--quiet"],
                 ["explain", str(run), "--quiet", "--budget", "none", "--n", "2", "--lime-samples", "40",
                  "--shap-samples", "20"], ["report", str(run), "--quiet"]):
        result = subprocess.run([sys.executable, "-m", "xferdiag", *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert json.loads((run / "verdict.json").read_text())["verdict"] in ("positive", "negative", "inconclusive")
    assert (run / "report.html").is_file() and (run / "explanations" / "index.json").is_file()
