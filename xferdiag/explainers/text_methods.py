"""Integrated Gradients, SHAP (Owen values over a token masker) and LIME for text, batched and seeded.

All three explain one class per text and share one reference: a removed token becomes the PAD token
and keeps its place in the attention mask, so the model sees "nothing here" at the same positions.
That holds only if the model reads an attended PAD as nothing: an encoder trained from scratch that
never saw one may read its embedding as evidence (in the tests, a small BERT took it for one of the
two cue words until it was trained with a share of its tokens replaced by PAD).

- IG (Sundararajan et al. 2017) integrates gradients on the word-embedding layer (captum's
  ``LayerIntegratedGradients``) from the all-PAD baseline (special tokens kept) to the text; the
  completeness gap |sum(attributions) - (f(x) - f(baseline))| is reported per text, in logits.
- SHAP: shap's PartitionExplainer with a token masker over the ids (shap's own Text masker works
  on strings and feeds the model five texts per call); the partition tree joins neighbouring
  tokens, as shap's text clustering does. Values add up to f(x) - f(all removed) in logits.
- LIME: lime's own LimeTextExplainer, seeded, over the words of the text (a word is removed with
  all its subwords); its classifier function turns every perturbed text into ids and classifies
  them ``batch_size`` at a time. A word's weight is shared equally by its tokens.
"""

from __future__ import annotations

import numpy as np
import shap
import torch
from captum.attr import LayerIntegratedGradients
from lime.lime_text import LimeTextExplainer
from torch import nn

from ._common import device_of, explaining, numpy_seed
from .text_words import TextBatch, forward_logits, spread_over_tokens

LIME_MASK = "_"  # what lime puts in place of a removed placeholder word
SHAP_BATCH = 64
"""Masked texts shap collects before each call of the logit function (shap's Text masker: 5). When
``max_evals`` is too small to expand the whole partition tree, which nodes get expanded depends on
it, so it is fixed here and independent of ``batch_size`` (texts per forward pass)."""


def baseline_ids(batch: TextBatch) -> torch.Tensor:
    """The reference text: PAD at every feature position, special tokens and padding as they are."""
    return torch.where(batch.fixed, batch.input_ids, torch.full_like(batch.input_ids, batch.pad_token_id))


def integrated_gradients(model: nn.Module, batch: TextBatch, targets: torch.Tensor, *, steps: int = 50,
                         batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(token attributions (N, T), completeness gap (N,)); ``batch_size`` interpolated texts per pass."""
    device = device_of(model)
    lig = LayerIntegratedGradients(lambda ids, mask: model(ids, mask), model.get_input_embeddings())
    maps, gaps = [], []
    per_call = max(1, batch_size // steps)
    base = baseline_ids(batch)
    with explaining(model), torch.enable_grad():
        for i in range(0, len(batch), per_call):
            sl = slice(i, i + per_call)
            attr, delta = lig.attribute(batch.input_ids[sl].to(device), baselines=base[sl].to(device),
                                        target=targets[sl].to(device),
                                        additional_forward_args=(batch.attention_mask[sl].to(device),),
                                        n_steps=steps, internal_batch_size=batch_size, return_convergence_delta=True)
            attr = attr.detach().float().sum(-1).cpu()  # a TextClassifier trims all-padding columns: pad them back
            maps.append(nn.functional.pad(attr, (0, batch.input_ids.shape[1] - attr.shape[1])))
            gaps.append(delta.detach().abs().float().cpu())
    token_maps = torch.cat(maps).masked_fill(batch.fixed, 0.0)
    return token_maps.numpy().astype(np.float32), torch.cat(gaps).numpy().astype(np.float64)


class TokenMasker(shap.maskers.Masker):
    """shap masker of one tokenised text: a False in the mask puts PAD at that feature token.

    ``clustering`` joins neighbouring feature tokens into a balanced binary tree (scipy linkage
    format), so Owen values respect the order of the text.
    """

    def __init__(self, ids: np.ndarray, features: np.ndarray, pad_token_id: int):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.positions = np.flatnonzero(features)
        self.pad_token_id = int(pad_token_id)
        self.shape = (1, len(self.positions))
        self.clustering = span_tree(len(self.positions))

    def __call__(self, mask, x):
        out = self.ids.copy()
        out[self.positions[~np.asarray(mask, dtype=bool)]] = self.pad_token_id
        return (out[None, :],)


def span_tree(m: int) -> np.ndarray:
    """Linkage matrix (m - 1, 4) of contiguous halves of 0..m-1; a node's distance is its size."""
    rows: list[list[float]] = []

    def build(lo: int, hi: int) -> int:
        if hi - lo == 1:
            return lo
        mid = (lo + hi) // 2
        left, right = build(lo, mid), build(mid, hi)
        rows.append([left, right, hi - lo, hi - lo])
        return m + len(rows) - 1

    if m > 0:
        build(0, m)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def class_logit_fn(model: nn.Module, mask: torch.Tensor, target: int, batch_size: int):
    """shap's model for one text: (n, L) ids -> (n,) logits of ``target``, ``batch_size`` per pass."""
    def f(ids: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(ids), dtype=torch.long)
        return forward_logits(model, x, mask.expand(len(x), -1), batch_size)[:, target].numpy().astype(np.float64)

    return f


def shap_text(model: nn.Module, batch: TextBatch, targets: torch.Tensor, *, max_evals: int = 500, seed: int = 0,
              batch_size: int = 32, shap_batch: int = SHAP_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(token SHAP values (N, T), base values (N,)). Each text is cut to its attended tokens; shap
    hands the logit function ``shap_batch`` masked texts per call, which it classifies
    ``batch_size`` at a time."""
    maps = np.zeros(tuple(batch.input_ids.shape), dtype=np.float64)
    base = np.zeros(len(batch), dtype=np.float64)
    for i in range(len(batch)):
        keep = batch.attention_mask[i].bool()
        ids, features = batch.input_ids[i][keep].numpy(), ~batch.fixed[i][keep].numpy()
        f = class_logit_fn(model, batch.attention_mask[i][keep][None, :], int(targets[i]), batch_size)
        full = f(ids[None, :])[0]
        if not features.any():
            base[i] = full
            continue
        masker = TokenMasker(ids, features, batch.pad_token_id)
        empty = f(masker(np.zeros(features.sum(), dtype=bool), None)[0])[0]
        if features.sum() == 1:  # shap needs two features to partition; one takes the whole difference
            values = np.array([full - empty])
        else:
            explainer = shap.PartitionExplainer(f, masker)
            with numpy_seed(seed):
                out = explainer(ids[features][None, :], max_evals=max(max_evals, 2 * int(features.sum()) + 1),
                                batch_size=shap_batch, silent=True)
            values = np.asarray(out.values[0], dtype=np.float64)
        row = np.zeros(len(ids))
        row[np.flatnonzero(features)] = values
        maps[i, np.flatnonzero(keep.numpy())] = row
        base[i] = empty
    return maps.astype(np.float32), base


def lime_classifier(model: nn.Module, batch: TextBatch, i: int, batch_size: int):
    """lime's classifier function for text ``i``: placeholder strings "w0 _ w2 ..." -> (n, C) probabilities;
    a removed word puts PAD at all its tokens."""
    keep = batch.attention_mask[i].bool()
    ids = batch.input_ids[i][keep]
    wid = torch.as_tensor(batch.word_ids[i][keep.numpy()])
    n_words = len(batch.words[i])
    mask = batch.attention_mask[i][keep][None, :]

    def classify(texts: list[str]) -> np.ndarray:
        present = torch.tensor([[w != LIME_MASK for w in t.split(" ")] for t in texts], dtype=torch.bool)
        present = present.reshape(len(texts), n_words)
        gone = (wid >= 0) & ~present[:, wid.clamp(min=0)]
        x = torch.where(gone, torch.full_like(gone, batch.pad_token_id, dtype=torch.long), ids.expand(len(texts), -1))
        return torch.softmax(forward_logits(model, x, mask.expand(len(x), -1), batch_size), 1).numpy()

    return classify


def lime_text(model: nn.Module, batch: TextBatch, targets: torch.Tensor, *, num_samples: int = 1000, seed: int = 0,
              batch_size: int = 32, classifier=None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(token maps (N, T), per-text word weights). ``classifier(model, batch, i, batch_size)`` builds
    the classifier function (default :func:`lime_classifier`); lime draws all perturbations first."""
    make = classifier or lime_classifier
    weights = []
    for i in range(len(batch)):
        n_words = len(batch.words[i])
        w = np.zeros(n_words)
        if n_words:
            explainer = LimeTextExplainer(split_expression=" ", bow=False, mask_string=LIME_MASK,
                                          feature_selection="none", random_state=seed)
            label = int(targets[i])
            text = " ".join(f"w{k}" for k in range(n_words))
            explanation = explainer.explain_instance(text, make(model, batch, i, batch_size), labels=(label,),
                                                     num_features=n_words, num_samples=num_samples)
            for k, weight in explanation.as_map()[label]:
                w[k] = weight
        weights.append(w)
    return spread_over_tokens(weights, batch).astype(np.float32), weights
