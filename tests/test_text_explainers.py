"""Text explanations: known answers on a planted-cue corpus, batched == single, the checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from text_helpers import CUES, BagModel, TinyBert, cue_corpus, encode, tokenizer, train

from xferdiag.errors import InputError
from xferdiag.explainers import TextRequest, explain_arms
from xferdiag.explainers.text_checks import eraser
from xferdiag.explainers.text_methods import integrated_gradients, lime_text, shap_text
from xferdiag.explainers.text_words import forward_logits, text_batch, word_scores

N_EXPLAINED = 20


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(scope="module")
def cue_setup(tok):
    """A bag-of-embeddings model trained on the planted-cue corpus, an untrained one, and texts to explain."""
    texts, labels = cue_corpus(300, seed=0)
    ids, mask = encode(tok, texts)
    torch.manual_seed(0)
    trained = train(BagModel(tok.vocab_size, tok.pad_token_id), ids, mask, labels, epochs=60)
    torch.manual_seed(1)
    untrained = BagModel(tok.vocab_size, tok.pad_token_id).eval()
    test_texts, test_labels = cue_corpus(N_EXPLAINED, seed=1)
    test_ids, test_mask = encode(tok, test_texts)
    assert (trained(test_ids, test_mask).argmax(1).numpy() == test_labels).mean() == 1.0
    return trained, untrained, test_ids, test_mask, test_labels


@pytest.fixture(scope="module")
def cue_explained(tok, cue_setup):
    trained, untrained, ids, mask, labels = cue_setup
    return explain_arms(TextRequest(models={"transfer": trained, "scratch": untrained}, input_ids=ids, attention_mask=mask,
                                    labels=labels, tokenizer=tok, lime_samples=150, shap_samples=100), progress=False)


def _top_words(index: dict, maps: dict, key: str) -> list[str]:
    values = maps[f"words__{key}"]
    return [ex["words"][int(np.argmax(values[i, :len(ex["words"])]))] for i, ex in enumerate(index["examples"])]


@pytest.mark.parametrize("method", ["ig", "shap", "lime"])
def test_the_planted_cue_is_the_top_word(cue_explained, method):
    index, maps = cue_explained
    top = _top_words(index, maps, f"{method}__transfer")
    hits = np.mean([word in CUES for word in top])
    assert hits >= 0.9, (method, top)


@pytest.mark.slow
def test_the_planted_cue_is_the_top_word_of_a_transformer(tok):
    """A 2-layer BERT on three classes (either cue, or none, so both cues matter), trained with attended
    PAD tokens so that the explainers' reference means "nothing here" to it."""
    texts, labels = cue_corpus(300, seed=0, neutral=True)
    ids, mask = encode(tok, texts)
    torch.manual_seed(0)
    bert = train(TinyBert(tok.vocab_size, tok.pad_token_id, n_classes=3), ids, mask, labels, epochs=40, lr=0.01,
                 pad_dropout=0.2)
    test_texts, test_labels = cue_corpus(24, seed=1, neutral=True)
    cued = [i for i, label in enumerate(test_labels) if label < 2]
    test_ids, test_mask = encode(tok, [test_texts[i] for i in cued])
    index, maps = explain_arms(TextRequest(models={"transfer": bert}, input_ids=test_ids, attention_mask=test_mask,
                                           labels=test_labels[cued], tokenizer=tok, lime_samples=150, shap_samples=100,
                                           checks=False), progress=False)
    for method in ("ig", "shap", "lime"):
        top = _top_words(index, maps, f"{method}__transfer")
        assert np.mean([word in CUES for word in top]) >= 0.9, (method, top)


def test_maps_have_the_documented_shapes_and_zero_padding(cue_explained):
    index, maps = cue_explained
    n, t = maps["input_ids"].shape
    assert index["kind"] == "text" and index["arms"] == ["transfer", "scratch"] and n == N_EXPLAINED
    fixed = (maps["word_ids"] < 0)
    for m in ("ig", "shap", "lime"):
        for arm in ("transfer", "scratch"):
            tokens = maps[f"{m}__{arm}"]
            assert tokens.shape == (n, t) and tokens.dtype == np.float32
            assert np.all(tokens[fixed] == 0)
            words = maps[f"words__{m}__{arm}"]
            assert words.shape == (n, max(len(e["words"]) for e in index["examples"]))
            np.testing.assert_allclose(words.sum(1), tokens.sum(1), rtol=1e-4, atol=1e-5)
    ex = index["examples"][0]
    assert ex["tokens"][0] == "[CLS]" and ex["tokens"][-1] == "[SEP]" and ex["exact_words"] is True
    assert len(index["agreement"]["ig"]["spearman"]) == n


def test_ig_is_complete_and_shap_adds_up(cue_setup, tok):
    trained, _, ids, mask, labels = cue_setup
    batch = text_batch(ids[:6], mask[:6], tok, tok.pad_token_id)
    targets = torch.as_tensor(labels[:6])
    logits = forward_logits(trained, ids[:6], mask[:6], 8).gather(1, targets[:, None])[:, 0].numpy()
    ig, gap = integrated_gradients(trained, batch, targets, steps=50)
    assert gap.max() < 0.02 * np.abs(ig.sum(1)).max()
    values, base = shap_text(trained, batch, targets, max_evals=200)
    np.testing.assert_allclose(values.sum(1), logits - base, atol=1e-4)


def test_randomisation_changes_the_maps_and_flags_a_model_blind_method(cue_explained, cue_setup, tok):
    index, _ = cue_explained
    for m in ("ig", "shap", "lime"):
        assert index["sanity"][m]["flagged"] is False, index["sanity"][m]
        assert index["sanity"][m]["similarity_after_randomisation"] < 0.5
    # a "method" that ranks tokens by position whatever the model: randomisation cannot change it
    from xferdiag.explainers.arms import Attribution, Method
    from xferdiag.explainers.text_checks import text_checks
    trained, _, ids, mask, labels = cue_setup
    batch = text_batch(ids, mask, tok, tok.pad_token_id)
    blind = Method("blind", lambda arm, model, b, t: Attribution(np.where(b.fixed.numpy(), 0.0, np.arange(b.fixed.shape[1]))),
                   {})
    maps = {"blind__transfer": blind.explain("transfer", trained, batch, None).maps}
    sanity, _ = text_checks(batch, threshold=0.5, seed=0, batch_size=16)(
        blind, {"transfer": trained}, batch, {"transfer": torch.as_tensor(labels)}, maps)
    assert sanity["flagged"] is True and sanity["similarity_after_randomisation"] > 0.99


def test_eraser_rewards_the_cue_over_a_random_ranking(cue_setup, tok):
    trained, _, ids, mask, labels = cue_setup
    batch = text_batch(ids, mask, tok, tok.pad_token_id)
    targets = torch.as_tensor(labels)
    ig, _ = integrated_gradients(trained, batch, targets)
    noise = np.random.default_rng(0).random(ig.shape)
    good, bad = eraser(trained, batch, ig, targets), eraser(trained, batch, noise, targets)
    assert good["comprehensiveness_aopc"] > bad["comprehensiveness_aopc"] + 0.2
    assert good["sufficiency_aopc"] < bad["sufficiency_aopc"] - 0.2


@pytest.fixture(scope="module")
def bert_setup(tok):
    torch.manual_seed(0)
    model = TinyBert(tok.vocab_size, tok.pad_token_id).eval()
    texts = ["an unbelievably tokenisation-heavy sentence", "short one", "the cat sat on the mat today",
             "excellent"]
    ids, mask = encode(tok, texts)
    return model, text_batch(ids, mask, tok, tok.pad_token_id), torch.tensor([0, 1, 1, 0])


def test_subwords_merge_into_words(bert_setup):
    _, batch, _ = bert_setup
    assert batch.words[0] == ["an", "unbelievably", "tokenisation", "-", "heavy", "sentence"]
    assert any(t.startswith("##") for t in batch.tokens[0])
    maps = np.where(batch.fixed.numpy(), 0.0, 1.0)
    counts = word_scores(maps, batch)[0, :len(batch.words[0])]
    assert counts[1] > 1 and counts[0] == 1  # "unbelievably" is several tokens, "an" one


def test_tokens_that_do_not_decode_back_are_their_own_words(tok):
    ids = torch.tensor([[tok.cls_token_id, *tok.convert_tokens_to_ids(["##ing", "cat"]), tok.unk_token_id,
                         tok.sep_token_id, tok.pad_token_id]])
    batch = text_batch(ids, (ids != tok.pad_token_id).long(), tok, tok.pad_token_id)
    assert batch.words == [["##ing", "cat", "[UNK]"]] and batch.exact_words == [False]
    assert batch.word_ids.tolist() == [[-1, 0, 1, 2, -1, -1]]


@pytest.mark.parametrize("method", ["ig", "shap", "lime"])
def test_batched_equals_single(bert_setup, method):
    model, batch, targets = bert_setup

    def run(b, t, batch_size):
        if method == "ig":
            return integrated_gradients(model, b, t, steps=20, batch_size=batch_size)[0]
        if method == "shap":
            return shap_text(model, b, t, max_evals=60, batch_size=batch_size)[0]
        return lime_text(model, b, t, num_samples=80, batch_size=batch_size)[0]

    together = run(batch, targets, 64)
    for i in range(len(batch)):
        single = run(batch.subset([i]), targets[i:i + 1], 1)
        np.testing.assert_allclose(single[0], together[i], rtol=1e-3, atol=1e-5)


def test_same_seed_same_output_and_bert_explains_end_to_end(bert_setup, tok):
    model, batch, targets = bert_setup
    request = TextRequest(models={"a": model}, input_ids=batch.input_ids, labels=targets, tokenizer=tok,
                          methods=("shap", "lime"), lime_samples=50, shap_samples=40, seed=3, sanity_steps=3)
    first, second = (explain_arms(request, progress=False) for _ in range(2))
    for key in ("shap__a", "lime__a"):
        np.testing.assert_array_equal(first[1][key], second[1][key])
    sanity = first[0]["sanity"]["lime"]
    assert len(sanity["layers"]) == len(sanity["similarity"]) == 3 and first[0]["agreement"] == {}
    assert sanity["layers"][-1] == "encoder.embeddings.word_embeddings"  # the cascade ends at the embeddings
    assert sanity["similarity"][-1] == pytest.approx(sanity["similarity_after_randomisation"])


@pytest.mark.parametrize("change, message", [
    (dict(methods=("gradcam",)), "methods:"),
    (dict(target="other"), "target:"),
    (dict(attention_mask=torch.ones(2, 3, dtype=torch.long)), "attention_mask:"),
    (dict(input_ids=torch.zeros(4, 5)), "input_ids:"),
    (dict(labels=[0, 1]), "labels:"),
    (dict(labels=[0, 1, 2, 1]), "labels:"),
    (dict(models={"a": torch.nn.Linear(2, 2)}), "models['a']:"),
    (dict(lime_samples=1), "lime_samples:"),
    (dict(sanity_steps=0), "sanity_steps:"),
    (dict(sanity_threshold=2.0), "sanity_threshold:"),
])
def test_bad_input_names_the_parameter(bert_setup, tok, change, message):
    model, batch, targets = bert_setup
    args = dict(models={"a": model}, input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=targets)
    args.update(change)
    with pytest.raises(InputError) as err:
        explain_arms(TextRequest(tokenizer=tok, **args), progress=False)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
