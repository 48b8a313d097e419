"""The text demos: MiniLM on few-shot BBC News (``--scenario text``), and two known answers with a tiny
BERT pretrained here that need no installed asset: planted cue words (``--scenario text-cues``, transfer
helps) and word order read by a bag-of-words encoder (``--scenario text-hurts``, transfer hurts).

The tiny BERT is a Hugging Face directory like any user's (config.json, model.safetensors, a
WordPiece tokenizer), so it is loaded through ``hf:DIR`` exactly as a user's model would be.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import rundir
from ..config import RunConfig
from ..data import split_target
from ..engine.strategies import Phase
from ..engine.trainer import ArmPlan, ArmTrainer, seed_everything
from ..errors import ConfigError, XferdiagError
from ..explainers.budget import Budget
from ..modalities.loading import load_domain
from ..modalities.text.cues import cue_corpus, vocabulary
from ..modalities.text.network import hold_positions_at_zero, minilm_dir, transformers_offline
from ..modalities.text.order import order_corpus
from ..models import ModelSource, build_transfer_model
from ..tasks.classification.prepare import split_data
from ..tasks.classification.task import ClassificationTask
from .finetune import runtime_for

CUES_SOURCE, CUES_TARGET, TINY_BERT = "cues-source.jsonl", "cues-target.jsonl", "tiny-bert"
ORDER_TARGET = "order-target.jsonl"
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=32)

BBC_SETTINGS = dict(data="bbc-news", model="builtin:minilm", strategy="linear-probe", shots=[8], max_length=64,
                    val_fraction=0.03, test_fraction=0.06, epochs=3, batch_size=16, seeds=3, lr=3e-2, scratch_lr=1e-3)
"""Few-shot BBC News within about two minutes on two cores: 64 tokens, 8 articles per class, a 3%
validation and 6% test split (67 and 134 articles), 3 epochs for both arms; the scratch MiniLM trains
all its layers at the usual fine-tuning rate (a linear probe on 384 pooled features takes a larger one)."""
ANALYZE_TEXT = {"max_samples": 200}
"""Texts per domain the demo's analysis embeds (the encoder is the cost on two cores)."""
CUES_SETTINGS = dict(strategy="linear-probe", shots=[4], max_length=16, val_fraction=0.2, test_fraction=0.4,
                     epochs=15, batch_size=8, seeds=3, lr=3e-2, scratch_lr=1e-3, threads=1)
"""The tiny BERT runs on one thread: a 32-wide model gains nothing from a second one, and on a busy
machine spinning OpenMP workers cost far more than they save."""
ORDER_SETTINGS = {**CUES_SETTINGS, "shots": ["all"], "scratch_lr": 5e-3}
"""Word order (:mod:`~xferdiag.modalities.text.order`, 120 texts per class): the scratch BERT finds the order in every
seed with 192 training texts at 5e-3 (on three corpus and split seeds); with 128 texts, or at 1e-2, some
seeds stay with the word pair at 50%."""
EXPLAIN_TEXT = {"text-cues": {"n": 6, "lime_samples": 200, "shap_samples": 50},
                "text-hurts": {"n": 4, "lime_samples": 200, "shap_samples": 50},
                "text": {"n": 3, "lime_samples": 128, "shap_samples": 32, "budget": Budget(30.0, strict=False)}}
"""Explanations per scenario. On BBC News every pass is MiniLM on 64 tokens and one article costs about
1,100 forward passes' worth (IG's 50 gradient steps, SHAP's 127 evaluations, LIME's 128 samples, for
two arms, the randomisation re-run and ERASER): three took 75 s on two idle cores. The 30 s budget
(never an error) explains one there, keeping the demo near two minutes, and more on a faster machine.
text-hurts explains four (explaining was over a third of its time with six)."""
TEXT_SCENARIOS = ("text", "text-cues", "text-hurts")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    rundir.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path


def make_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with random weights and a WordPiece tokenizer over the cue vocabulary
    (given as a dict: transformers 5 reads no vocab file here),
    saved as a Hugging Face directory (safetensors)."""
    tf = transformers_offline()
    folder = rundir.make_dir(folder)
    tokenizer = tf.BertTokenizerFast(vocab={word: i for i, word in enumerate(vocabulary())}, do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    seed_everything(seed)
    config = tf.BertConfig(vocab_size=len(vocabulary()), pad_token_id=tokenizer.pad_token_id, **TINY)
    tf.BertModel(config, add_pooling_layer=False).save_pretrained(str(folder), safe_serialization=True)
    return folder


def pretrain_tiny_bert(folder: Path, source_spec: str, *, epochs: int = 6, quiet: bool = True, positions: bool = True) -> Path:
    """Make the tiny BERT, train it (all layers) on the source cue corpus, save its encoder back in place;
    ``positions=False``: its position embeddings held at zero (a bag-of-words encoder)."""
    make_tiny_bert(folder)
    source = ModelSource.parse(f"hf:{folder}")
    domain = load_domain(source_spec)
    splits = split_target(domain, 0.15, 0.15, 0, "all")
    runtime, _ = runtime_for(RunConfig(threads=1), quiet)
    seed_everything(0)
    network = build_transfer_model(source, len(domain.classes), pretrained=None)
    if not positions:
        hold_positions_at_zero(network.backbone.encoder)
    plan = ArmPlan("source", [Phase("full", epochs)], lr=3e-3, batch_size=32, task=ClassificationTask())
    ArmTrainer(plan, runtime, seed=0).fit(network, split_data(splits, network.input_spec, augment=False))
    network.backbone.encoder.save_pretrained(str(folder), safe_serialization=True)
    return folder


def tiny_bert_config(folder: Path, target: str, rows: list[dict], settings: dict, *, positions: bool = True,
                     quiet: bool = True) -> RunConfig:
    """Write the source cue corpus and the target ``rows`` (file ``target``), pretrain the tiny BERT into
    ``folder`` (once; ``positions=False``: as a bag of words); the target run's config."""
    source = write_jsonl(folder / CUES_SOURCE, cue_corpus("source", 150, seed=1))
    target_file = write_jsonl(folder / target, rows)
    model = folder / TINY_BERT
    if not (model / "model.safetensors").is_file():
        pretrain_tiny_bert(model, str(source), quiet=quiet, positions=positions)
    return RunConfig(data=str(target_file.resolve()), source_data=str(source.resolve()), model=f"hf:{model.resolve()}",
                     **settings)


def bbc_config() -> RunConfig:
    """The real-text scenario's run; one line saying what to install when an asset is missing."""
    missing = []
    for check in (minilm_dir, lambda: load_domain("bbc-news")):
        try:
            check()
        except XferdiagError as exc:
            missing.append(str(exc))
    if missing:
        raise ConfigError(f"scenario text: needs two installed assets: {'; '.join(missing)}")
    return RunConfig(**BBC_SETTINGS)


def text_scenario_config(scenario: str, folder: Path, quiet: bool = True) -> RunConfig:
    """``text``: MiniLM on BBC News (installed assets); ``text-cues`` and ``text-hurts``: the tiny BERT made in ``folder``."""
    if scenario == "text":
        return bbc_config()
    rundir.make_dir(folder)
    if scenario == "text-hurts":
        return tiny_bert_config(folder, ORDER_TARGET, order_corpus(120, seed=2), ORDER_SETTINGS, positions=False,
                                quiet=quiet)
    return tiny_bert_config(folder, CUES_TARGET, cue_corpus("target", 60, seed=2), CUES_SETTINGS, quiet=quiet)
