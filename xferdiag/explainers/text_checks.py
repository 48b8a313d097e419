"""Checks of text explanations: word-level agreement of two arms, the cascading randomisation test
(the text MPRT) and ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020).

- Comprehensiveness: delete the top k% of feature tokens (by attribution) and measure how far the
  target-class probability falls; high = the explanation found what the model needs.
- Sufficiency: keep only those tokens (special tokens stay) and measure the fall; low = they
  alone carry the prediction. Both are averaged over k in :data:`ERASER_FRACTIONS` (AOPC).
  A deleted token leaves the attention mask, as if it had been cut from the text.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .agreement import spearman_agreement, topk_overlap
from .arms import ChecksFn, Method, floats, spread_rows
from .faithfulness import cascading_randomisation
from .text_words import TextBatch, forward_logits, word_scores

ERASER_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


def word_agreement(batch: TextBatch, topk: float):
    """Agreement of two arms' token maps over words, |attribution|: Spearman and top-k overlap per text."""
    def agree(a: np.ndarray, b: np.ndarray) -> dict:
        a, b = np.abs(word_scores(a, batch)), np.abs(word_scores(b, batch))
        spearman = [spearman_agreement(a[i:i + 1, :n], b[i:i + 1, :n])[0] if n > 1 else np.nan
                    for i, n in enumerate(batch.n_words)]
        overlap = [topk_overlap(a[i:i + 1, :n], b[i:i + 1, :n], topk)[0] if n else np.nan
                   for i, n in enumerate(batch.n_words)]
        return {"spearman": floats(spearman), "topk_overlap": floats(overlap)}

    return agree


def token_similarity(batch: TextBatch):
    """Signed Spearman per text over its feature tokens (0 where undefined): the randomisation test's
    comparison, which must not count padding as agreement."""
    def compare(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros(len(batch))
        for i in range(len(batch)):
            cols = np.flatnonzero(~batch.fixed[i].numpy())
            if len(cols) > 1:
                out[i] = np.nan_to_num(spearman_agreement(a[i:i + 1, cols], b[i:i + 1, cols]))[0]
        return out

    return compare


def eraser(model: nn.Module, batch: TextBatch, maps: np.ndarray, targets: torch.Tensor, *,
           fractions=ERASER_FRACTIONS, batch_size: int = 32, seed: int = 0) -> dict:
    """Comprehensiveness and sufficiency per fraction (lists, mean over texts) and their AOPC means.

    Ties in the ranking are broken in a seeded random order.
    """
    ids, mask = batch.input_ids, batch.attention_mask
    features = ~batch.fixed
    noise = np.random.default_rng(seed).random(tuple(ids.shape))
    scores = np.where(features.numpy(), np.asarray(maps, dtype=np.float64), -np.inf)
    order = np.lexsort((noise, -scores), axis=-1)
    rank = torch.from_numpy(np.argsort(order, axis=-1))
    n_feat = features.sum(1)
    variants_ids, variants_mask = [ids], [mask]
    for f in fractions:
        k = torch.clamp(torch.ceil(f * n_feat.double()).long(), min=1)
        top = (rank < k[:, None]) & features
        variants_mask += [mask * ~top, mask * ~(features & ~top)]
        variants_ids += [ids, ids]
    logits = forward_logits(model, torch.cat(variants_ids), torch.cat(variants_mask), batch_size)
    probs = torch.softmax(logits, 1).reshape(len(variants_ids), len(ids), -1)
    p = probs.gather(2, targets.reshape(1, -1, 1).expand(len(variants_ids), -1, 1))[..., 0].double().numpy()
    drop = p[0][None, :] - p[1:]
    has = n_feat.numpy() > 0
    comp, suff = drop[0::2][:, has].mean(1), drop[1::2][:, has].mean(1)
    return {"fractions": list(fractions), "comprehensiveness": floats(comp), "sufficiency": floats(suff),
            "comprehensiveness_aopc": float(comp.mean()), "sufficiency_aopc": float(suff.mean())}


def text_checks(batch: TextBatch, *, threshold: float, seed: int, batch_size: int, steps: int = 1,
                examples: int | None = None) -> ChecksFn:
    """Cascading randomisation of the first arm in ``steps`` evenly spaced steps, the last full, on
    ``examples`` of the texts spread over the batch (None: all; maps compared over feature tokens),
    and ERASER for every arm."""
    picked = spread_rows(len(batch), examples)
    resanity = batch.subset(picked)

    def run(method: Method, models: dict, inputs, targets: dict, maps: dict) -> tuple[dict, dict[str, dict]]:
        first = next(iter(models))
        sanity = cascading_randomisation(models[first],
                                         lambda m: method.explain(first, m, resanity, targets[first][picked]).maps,
                                         maps[f"{method.name}__{first}"][picked], threshold=threshold, n_steps=steps,
                                         seed=seed, compare=token_similarity(resanity))
        faithfulness = {arm: eraser(model, batch, maps[f"{method.name}__{arm}"], targets[arm], batch_size=batch_size,
                                    seed=seed) for arm, model in models.items()}
        return ({"similarity_after_randomisation": sanity.similarity_after_randomisation,
                 "flagged": bool(sanity.flagged), "layers": sanity.layers,
                 "similarity": floats(sanity.similarity), "examples": len(picked)}, faithfulness)

    return run
