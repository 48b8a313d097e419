"""Text models: the TextClassifier contract explainers rely on, safe loading, pooling, RNNs, strategies."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from xferdiag.commands.textdemo import make_tiny_bert, write_jsonl
from xferdiag.config import RunConfig
from xferdiag.data import split_target
from xferdiag.engine.strategies import Phase, apply_freezing, parameter_groups, phases_for
from xferdiag.engine.trainer import ArmPlan, ArmTrainer, seed_everything
from xferdiag.errors import ModelError
from xferdiag.modalities.loading import load_domain
from xferdiag.modalities.text.cues import cue_corpus
from xferdiag.modalities.text.load import token_stats, tokenize
from xferdiag.modalities.text.network import TextNet
from xferdiag.models import ModelSource, build_transfer_model, load_pretrained_classifier, resolve_input_spec
from xferdiag.models.inputs import InputRequest
from xferdiag.tasks.classification.prepare import split_data
from xferdiag.tasks.classification.task import ClassificationTask

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights saved as a Hugging Face directory (no pretraining)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def transfer_model(spec_text: str, num_classes: int = 3, max_length: int = 16, pretrained: bool = True):
    source = ModelSource.parse(spec_text)
    classifier = load_pretrained_classifier(source, None) if pretrained else None
    spec = resolve_input_spec(source, classifier, InputRequest(max_length=max_length))
    seed_everything(0)
    return build_transfer_model(source, num_classes, pretrained=classifier, input_spec=spec), spec


TEXTS = ["apple s1 s2 s3", "river t4", "violin drum copper silver s9 s10 s11"]


def test_forward_contract_mask_default_and_padding_trim(tiny_bert):
    model, spec = transfer_model(f"hf:{tiny_bert}")
    model.eval()
    ids = tokenize(TEXTS, spec.tokenizer, spec.size)
    assert ids.dtype == torch.long and ids.shape == (3, 16)
    assert model.pad_token_id == spec.tokenizer.pad_token_id == 0
    assert isinstance(model.get_input_embeddings(), nn.Embedding)
    assert model.get_input_embeddings() is model.backbone.encoder.embeddings.word_embeddings
    with torch.no_grad():
        logits = model(ids)
        assert logits.shape == (3, 3)
        assert torch.allclose(logits, model(ids, (ids != 0).long()), atol=1e-6)
        padded = torch.cat([ids, torch.zeros(3, 7, dtype=torch.long)], 1)  # more padding columns: trimmed away
        assert torch.allclose(logits, model(padded), atol=1e-5)
        one = model(ids[1:2])  # row 1 alone is trimmed to its own length: same logits as in the batch
        assert torch.allclose(one, logits[1:2], atol=1e-5)
    trimmed, mask = model.backbone.trimmed(ids, None)
    assert trimmed.shape[1] == 9 and mask.sum().item() == 6 + 4 + 9


def test_pretrained_weights_are_loaded_and_scratch_is_random(tiny_bert):
    from safetensors.torch import load_file

    saved = load_file(str(tiny_bert / "model.safetensors"))
    model, _ = transfer_model(f"hf:{tiny_bert}")
    scratch, _ = transfer_model(f"hf:{tiny_bert}", pretrained=False)
    word = model.get_input_embeddings().weight
    key = next(k for k in saved if k.endswith("word_embeddings.weight"))
    assert torch.equal(word, saved[key])
    assert not torch.equal(scratch.get_input_embeddings().weight, saved[key])
    assert model.blocks == ["encoder.embeddings", "encoder.encoder.layer.0", "encoder.encoder.layer.1"]


def test_loading_refuses_pickles_remote_code_and_missing_weights(tiny_bert, tmp_path):
    from safetensors.torch import load_file, save_file

    no_weights = shutil.copytree(tiny_bert, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no .safetensors weights"):
        load_pretrained_classifier(ModelSource.parse(f"hf:{no_weights}"), None)
    remote = shutil.copytree(tiny_bert, tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling.MyModel"}}))
    with pytest.raises(ModelError, match="never runs remote code"):
        load_pretrained_classifier(ModelSource.parse(f"hf:{remote}"), None)
    partial = shutil.copytree(tiny_bert, tmp_path / "partial")
    state = load_file(str(partial / "model.safetensors"))
    dropped = [k for k in state if "layer.1.attention" in k]
    save_file({k: v for k, v in state.items() if k not in dropped}, str(partial / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="newly initialised"):
        load_pretrained_classifier(ModelSource.parse(f"hf:{partial}"), None)
    with pytest.raises(ModelError, match="not a folder"):
        load_pretrained_classifier(ModelSource.parse(f"hf:{tmp_path / 'nope'}"), None)


def test_max_length_beyond_the_position_embeddings_is_refused_not_crashed(tiny_bert):
    with pytest.raises(ModelError, match="^max_length 33: the model has position embeddings for 32 tokens; give 32 or less$"):
        transfer_model(f"hf:{tiny_bert}", max_length=33)
    assert transfer_model(f"hf:{tiny_bert}", max_length=None)[1].size == 32  # not asked: the most it takes, not 128
    model, spec = transfer_model(f"hf:{tiny_bert}:encoder=gru", max_length=64)  # an RNN reads no positions
    assert spec.size == 64 and model(torch.full((2, 64), 7)).shape == (2, 3)


def test_pooling_options(tiny_bert):
    ids = None
    pooled = {}
    for pool in ("mean", "cls", "lastk:2"):
        model, spec = transfer_model(f"hf:{tiny_bert}:pool={pool}")
        ids = tokenize(TEXTS, spec.tokenizer, spec.size) if ids is None else ids
        with torch.no_grad():
            pooled[pool] = model.eval().forward_features(ids)
    hidden = model.backbone.encoder(input_ids=ids[:, :9], attention_mask=(ids[:, :9] != 0).long(), output_hidden_states=True)
    assert torch.allclose(pooled["cls"], hidden.last_hidden_state[:, 0], atol=1e-6)
    mask = (ids[:, :9] != 0).float().unsqueeze(-1)
    expected = (hidden.last_hidden_state * mask).sum(1) / mask.sum(1)
    assert torch.allclose(pooled["mean"], expected, atol=1e-5)
    assert not torch.allclose(pooled["lastk:2"], pooled["mean"], atol=1e-3)
    with pytest.raises(ModelError, match="has 2 layers"):
        transfer_model(f"hf:{tiny_bert}:pool=lastk:5")
    with pytest.raises(ModelError, match="bad option"):
        transfer_model(f"hf:{tiny_bert}:pool=max")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_takes_the_pretrained_embeddings_scratch_does_not(tiny_bert, cell):
    model, spec = transfer_model(f"hf:{tiny_bert}:encoder={cell},hidden=8")
    scratch, _ = transfer_model(f"hf:{tiny_bert}:encoder={cell},hidden=8", pretrained=False)
    bert_words = load_pretrained_classifier(ModelSource.parse(f"hf:{tiny_bert}"), None).get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight, bert_words)
    assert not torch.equal(scratch.get_input_embeddings().weight, bert_words)
    assert model.blocks == ["encoder.embedding", "encoder.rnn"] and model.feature_dim == 16
    ids = tokenize(TEXTS, spec.tokenizer, spec.size)
    with torch.no_grad():
        logits = model.eval()(ids)
        assert torch.allclose(logits[2:], model(ids[2:]), atol=1e-5)  # packing: padding does not leak in


def test_partial_trains_only_the_top_layer_and_the_head(tiny_bert):
    model, _ = transfer_model(f"hf:{tiny_bert}")
    apply_freezing(model, Phase("partial", 1, trainable_blocks=1))
    trainable = {n.split(".")[2] if n.startswith("backbone.encoder.encoder") else n.split(".")[0]
                 for n, p in model.named_parameters() if p.requires_grad}
    layer1 = [p.requires_grad for n, p in model.named_parameters() if ".layer.1." in n]
    layer0 = [p.requires_grad for n, p in model.named_parameters() if ".layer.0." in n]
    assert all(layer1) and not any(layer0) and "head" in trainable
    assert not model.get_input_embeddings().weight.requires_grad


def test_layer_decay_gives_each_text_block_its_rate_and_lp_ft_probes_first(tiny_bert):
    model, _ = transfer_model(f"hf:{tiny_bert}")
    phases = phases_for("lp-ft", 6, lp_epochs=2, partial_blocks=0)
    assert [(p.strategy, p.epochs) for p in phases] == [("linear-probe", 2), ("full", 4)]
    apply_freezing(model, phases[1])
    groups = {g["name"]: g["lr"] for g in parameter_groups(model, phases[1], 1e-3, 1.0, 0.5, 0.0, l2sp=False)}
    # embeddings, layer.0, layer.1 of B = 3 blocks: lr * 0.5 ** (3 - i); the head at lr
    assert groups == pytest.approx({"head": 1e-3, "encoder.embeddings": 1e-3 / 8, "encoder.encoder.layer.0": 1e-3 / 4,
                                    "encoder.encoder.layer.1": 1e-3 / 2})


def test_token_stats_hand_computed():
    from xferdiag.modalities.text.network import transformers_offline

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "play", "##ing", "apple", "the"]
    tokenizer = transformers_offline().BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    # "playing apple zzz" -> [CLS] play ##ing apple [UNK] [SEP] (6); "the apple" -> [CLS] the apple [SEP] (4)
    stats = token_stats(["playing apple zzz", "the apple"], tokenizer, max_length=5)
    assert stats.n == 2 and stats.max_length == 5
    assert stats.lengths == {"mean": 5.0, "p50": 5.0, "p90": 5.8, "max": 6.0}
    assert stats.truncated == 0.5  # 6 > 5
    assert stats.unknown == pytest.approx(1 / 6)  # one [UNK] among 4 + 2 content tokens
    assert stats.fertility == pytest.approx(6 / 5)  # 6 content tokens for 5 words
    assert stats.to_dict()["lengths"]["max"] == 6.0


@pytest.fixture(scope="module")
def cue_target(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("cues") / "target.jsonl", cue_corpus("target", 20, seed=3))


def _fit(tiny_bert, data_path, strategy: str):
    model, spec = transfer_model(f"hf:{tiny_bert}", num_classes=4)
    domain = load_domain(str(data_path))
    splits = split_target(domain, 0.25, 0.25, 0, 4)
    from xferdiag.commands.finetune import runtime_for

    runtime, _ = runtime_for(RunConfig(threads=1), quiet=True)
    plan = ArmPlan("transfer", [Phase(strategy, 4)], lr=3e-2, batch_size=8, task=ClassificationTask())
    return ArmTrainer(plan, runtime, seed=1).fit(model, split_data(splits, spec, augment=False))


def test_cached_linear_probe_equals_frozen_encoder_on_the_same_seed(tiny_bert, cue_target):
    cached = _fit(tiny_bert, cue_target, "linear-probe")
    frozen = _fit(tiny_bert, cue_target, "freeze")
    assert [h["phase"] for h in cached.history] == ["linear-probe"] * 4
    np.testing.assert_allclose([h["train_loss"] for h in cached.history], [h["train_loss"] for h in frozen.history], rtol=1e-4)
    np.testing.assert_allclose(cached.test.probabilities, frozen.test.probabilities, atol=1e-4)
    for key, value in cached.state_dict.items():
        torch.testing.assert_close(value, frozen.state_dict[key], atol=1e-4, rtol=1e-4)


def test_text_net_is_the_classifier_that_surgery_splits(tiny_bert):
    classifier = load_pretrained_classifier(ModelSource.parse(f"hf:{tiny_bert}"), None)
    assert isinstance(classifier, TextNet) and classifier.fc.in_features == 32
    model, _ = transfer_model(f"hf:{tiny_bert}", num_classes=5)
    assert isinstance(model.backbone.fc, nn.Identity) and model.head.out_features == 5


def test_feature_store_runs_a_frozen_backbone_once_across_seeds(tiny_bert, cue_target):
    from xferdiag.commands.finetune import runtime_for

    model, spec = transfer_model(f"hf:{tiny_bert}", num_classes=4)
    data = split_data(split_target(load_domain(str(cue_target)), 0.25, 0.25, 0, 4), spec, augment=False)
    runtime, _ = runtime_for(RunConfig(threads=1), quiet=True)
    plan = ArmPlan("transfer", [Phase("linear-probe", 2)], lr=3e-2, batch_size=8, task=ClassificationTask())
    calls = []
    store: dict = {}

    def fit(seed, net):
        hook = net.backbone.register_forward_hook(lambda *_: calls.append(seed))
        result = ArmTrainer(plan, runtime, seed=seed, feature_store=store).fit(net, data)
        hook.remove()
        return result

    first = fit(0, model)
    once = len(calls)
    fresh, _ = transfer_model(f"hf:{tiny_bert}", num_classes=4)
    again = fit(1, fresh)
    assert once > 0 and len(calls) == once  # the second seed read the stored features
    assert first.test.labels.tolist() == again.test.labels.tolist()
    with torch.no_grad():
        fresh.backbone.encoder.embeddings.word_embeddings.weight.add_(0.1)  # other weights: extracted anew
    fit(2, fresh)
    assert len(calls) > once


def test_no_truncate_leaves_long_texts_out_of_their_split_counts_them_and_warns(tiny_bert, tmp_path, capsys):
    from xferdiag import rundir
    from xferdiag.commands.context import RunContext
    from xferdiag.commands.finetune import finetune

    rows = cue_corpus("target", 20, seed=3)  # 10 words: 12 tokens with [CLS] and [SEP]
    long = {i for i in range(0, len(rows), 7)}
    for i in long:
        rows[i]["text"] += " t1 t2 t3 t4 t5 t6"  # 18 tokens: over 16
    path = write_jsonl(tmp_path / "target.jsonl", rows)
    config = RunConfig(data=str(path), model=f"hf:{tiny_bert}", strategy="linear-probe", max_length=16, truncate=False,
                       epochs=1, seeds=1, threads=1)
    out = finetune(config, tmp_path / "run", quiet=True)
    warning = capsys.readouterr().err.strip()
    assert warning == (f"xferdiag: warning: {len(long)} of 80 texts are longer than --max-length 16 tokens and are left out "
                       "of their split (--no-truncate)")
    tokens = rundir.read_json(rundir.RunDir(out).data_json)["tokens"]
    assert sum(stats["left_out"] for stats in tokens.values()) == len(long)
    assert all(stats["truncated"] == 0.0 and stats["lengths"]["max"] <= 16 for stats in tokens.values())
    domain = load_domain(str(path))
    cut = split_target(domain, config.val_fraction, config.test_fraction, 0, "all")
    kept = RunContext(out).splits  # analyze and explain see the split the arms trained on
    for split, idx in cut.indices.items():  # the same texts in the same split, less the long ones
        assert kept.indices[split].tolist() == [i for i in idx if i not in long]
        assert tokens[split]["left_out"] == len(set(idx) & long)
    predictions = rundir.read_predictions(rundir.RunDir(out).seed("transfer", 0))
    assert predictions.labels.tolist() == domain.labels[kept.indices["test"]].tolist()



def _embeddings_and_layer(state: dict, prefix: str = "backbone.encoder.") -> tuple[dict, dict]:
    """(every embedding tensor, the first encoder layer's tensors) of a TextNet-backed state_dict, keyed without ``prefix``."""
    pick = lambda part: {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix + part)}  # noqa: E731
    return pick("embeddings."), pick("encoder.layer.0.")


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_embeddings_keeps_the_pretrained_embeddings_bit_identical_under_full(tiny_bert, cue_target, tmp_path, freeze):
    from xferdiag import rundir
    from xferdiag.commands.finetune import finetune

    config = RunConfig(data=str(cue_target), model=f"hf:{tiny_bert}", strategy="full", freeze_embeddings=freeze, epochs=2,
                       seeds=1, lr=3e-2, batch_size=16, max_length=16, threads=1, baseline="scratch" if freeze else "none")
    run = rundir.RunDir(finetune(config, tmp_path / "run", quiet=True))
    assert rundir.read_json(run.run_json)["config"]["freeze_embeddings"] is freeze
    from xferdiag.report.sections.setup import setup
    rows = dict(setup(rundir.read_json(run.run_json), rundir.read_json(run.data_json), {})["rows"])
    assert rows["Strategy"] == ("full; the pretrained embeddings kept frozen (transfer arm)" if freeze else "full")
    pretrained = {f"backbone.{k}": v for k, v in load_pretrained_classifier(ModelSource.parse(f"hf:{tiny_bert}"), None)
                  .state_dict().items()}
    before_emb, before_layer = _embeddings_and_layer(pretrained)
    after_emb, after_layer = _embeddings_and_layer(torch.load(run.seed("transfer", 0).model_pt, weights_only=True))
    assert set(after_emb) == set(before_emb) and len(after_emb) == 5  # word, position, type, LayerNorm weight and bias
    assert any(not torch.equal(after_layer[k], before_layer[k]) for k in before_layer)  # the encoder layer trained
    same = [k for k in before_emb if torch.equal(after_emb[k], before_emb[k])]
    assert same == (list(before_emb) if freeze else [])
    if freeze:  # the scratch arm trains its random embeddings: frozen, they would be a fixed random code per word
        model, _ = transfer_model(f"hf:{tiny_bert}", num_classes=4, pretrained=False)
        start, _ = _embeddings_and_layer(model.state_dict())
        trained, _ = _embeddings_and_layer(torch.load(run.seed("scratch", 0).model_pt, weights_only=True))
        assert not torch.equal(trained["embeddings.word_embeddings.weight"], start["embeddings.word_embeddings.weight"])


@pytest.mark.parametrize("spec_suffix", ["", ":encoder=gru,hidden=8"])
def test_frozen_embeddings_leave_llrd_groups_and_lp_ft_without_them_and_stay_in_eval_mode(tiny_bert, spec_suffix):
    from xferdiag.engine.strategies import kept_frozen, set_train_mode

    model, _ = transfer_model(f"hf:{tiny_bert}{spec_suffix}")
    frozen = kept_frozen(model, True)
    assert frozen == (model.blocks[0],) and kept_frozen(model, False) == ()
    for phase in phases_for("lp-ft", 4, lp_epochs=2, partial_blocks=0):
        apply_freezing(model, phase, frozen)
        set_train_mode(model, phase, frozen)
        names = [g["name"] for g in parameter_groups(model, phase, 1e-3, 1.0, 0.5, 0.0, l2sp=False)]
        assert model.blocks[0] not in names and names[0] == "head"
    assert names == ["head", *model.blocks[1:]]  # the full phase trains every block but the embeddings
    assert not model.get_input_embeddings().weight.requires_grad
    assert not model.backbone.get_submodule(model.blocks[0]).training and model.backbone.get_submodule(model.blocks[1]).training


@pytest.mark.parametrize(("flags", "line"), [
    (["--freeze-embeddings"], "--freeze-embeddings: applies to text data; this run's data is images"),
    (["--max-length", "32"], "--max-length: applies to text data; this run's data is images"),
    (["--no-truncate"], "--truncate: applies to text data; this run's data is images"),
])
def test_a_text_option_on_an_image_run_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, flags, line):
    from xferdiag.cli import main

    checkpoint = tmp_path / "cnn.pt"
    torch.save(ModelSource.parse("builtin:digits-cnn").build_classifier().state_dict(), checkpoint)
    args = ["finetune", "--data", "digits:rotated", "--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(checkpoint),
            "--epochs", "1", "--seeds", "1", "--out", str(tmp_path / "run")]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"xferdiag: error: {line}", err
    assert not (tmp_path / "run").exists()
