"""Tokenised texts as the text explainers see them: which positions may be perturbed, which word each
token belongs to, per-word scores merged from subwords, and the batched forward pass they share.

A text model takes ``(input_ids (N, T), attention_mask (N, T))`` and returns logits (N, C). Special
tokens ([CLS], [SEP], ...) and padding are never perturbed; every other position is a feature.
Words come from the fast tokenizer's ``word_ids`` and offsets: the explained tokens are decoded and
encoded again, and where that gives back the same ids, each word is the text its tokens span.
Where it does not (a tokenizer whose decoding is lossy), every token is its own word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ._common import device_of, explaining


@dataclass(frozen=True)
class TextBatch:
    """Token ids and masks of N texts, padded to T, with what the explainers need to perturb them.

    ``fixed``: (N, T) positions never perturbed (special tokens, padding). ``word_ids``: (N, T) the
    word of each feature token (0..W_i-1), -1 at fixed positions. ``tokens`` and ``words``: per text,
    the attended tokens and the words, as strings. ``exact_words``: per text, whether the words come
    from the tokenizer's offsets (True) or are single tokens (False).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    fixed: torch.Tensor
    word_ids: np.ndarray
    tokens: list[list[str]]
    words: list[list[str]]
    exact_words: list[bool]
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def subset(self, rows) -> TextBatch:
        """The texts at ``rows`` (a slice or index array), padded as before; also ``batch[rows]``."""
        idx = np.arange(len(self))[rows]
        return TextBatch(self.input_ids[idx], self.attention_mask[idx], self.fixed[idx], self.word_ids[idx],
                         [self.tokens[i] for i in idx], [self.words[i] for i in idx],
                         [self.exact_words[i] for i in idx], self.pad_token_id)

    __getitem__ = subset

    @property
    def n_words(self) -> np.ndarray:
        return np.array([len(w) for w in self.words], dtype=np.int64)


def text_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, tokenizer, pad_token_id: int) -> TextBatch:
    """Mark fixed positions and merge subwords into words for checked (N, T) ids and mask."""
    special = set(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
    special.discard(getattr(tokenizer, "unk_token_id", None))  # an unknown word is still a word of the text
    special.add(int(pad_token_id))
    ids = input_ids.tolist()
    fixed = torch.tensor([[m == 0 or t in special for t, m in zip(row, mrow)]
                          for row, mrow in zip(ids, attention_mask.tolist())], dtype=torch.bool).reshape(input_ids.shape)
    word_ids = np.full(tuple(input_ids.shape), -1, dtype=np.int64)
    tokens, words, exact = [], [], []
    for i, row in enumerate(ids):
        attended = [t for t, m in zip(row, attention_mask[i].tolist()) if m]
        tokens.append([str(t) for t in tokenizer.convert_ids_to_tokens(attended)])
        positions = np.flatnonzero(~fixed[i].numpy())
        content = [row[p] for p in positions]
        merged = _words(tokenizer, content)
        exact.append(merged is not None)
        if merged is None:
            merged = (list(range(len(content))), [str(t) for t in tokenizer.convert_ids_to_tokens(content)])
        word_ids[i, positions] = merged[0]
        words.append(merged[1])
    return TextBatch(input_ids, attention_mask, fixed, word_ids, tokens, words, exact, int(pad_token_id))


def _words(tokenizer, content: list[int]) -> tuple[list[int], list[str]] | None:
    """(word of each content token, the words) from offsets, or None when re-encoding differs."""
    if not content:
        return [], []
    text = tokenizer.decode(content, clean_up_tokenization_spaces=False)
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        raw = enc.word_ids()
    except (ValueError, TypeError, AttributeError):  # a slow tokenizer has no word ids
        return None
    if list(enc["input_ids"]) != list(content) or any(w is None for w in raw):
        return None
    order: dict[int, int] = {}
    spans: list[list[int]] = []
    for w, (start, end) in zip(raw, enc["offset_mapping"]):
        if w not in order:
            order[w] = len(order)
            spans.append([start, end])
        spans[order[w]][1] = max(spans[order[w]][1], end)
    return [order[w] for w in raw], [text[a:b] for a, b in spans]


def word_scores(token_maps: np.ndarray, batch: TextBatch) -> np.ndarray:
    """Per-word sums of token attributions, (N, W) with W the most words of any text, zero-padded."""
    maps = np.asarray(token_maps, dtype=np.float64)
    out = np.zeros((len(batch), max(1, int(batch.n_words.max(initial=0)))), dtype=np.float64)
    rows, cols = np.nonzero(batch.word_ids >= 0)
    np.add.at(out, (rows, batch.word_ids[rows, cols]), maps[rows, cols])
    return out


def spread_over_tokens(word_values: list[np.ndarray], batch: TextBatch) -> np.ndarray:
    """(N, T) token maps from per-word values, each word's value shared equally by its tokens."""
    maps = np.zeros(tuple(batch.input_ids.shape), dtype=np.float64)
    for i, values in enumerate(word_values):
        wid = batch.word_ids[i]
        counts = np.bincount(wid[wid >= 0], minlength=len(values))
        cols = np.flatnonzero(wid >= 0)
        maps[i, cols] = np.asarray(values)[wid[cols]] / counts[wid[cols]]
    return maps


def forward_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   batch_size: int) -> torch.Tensor:
    """Logits (n, C) on the CPU as float32, ``batch_size`` texts per forward pass, without a graph."""
    device = device_of(model)
    out = []
    with explaining(model), torch.inference_mode():
        for i in range(0, len(input_ids), batch_size):
            out.append(model(input_ids[i:i + batch_size].to(device),
                             attention_mask[i:i + batch_size].to(device)).float().cpu())
    logits = torch.cat(out) if out else torch.zeros(0, 0)
    if logits.ndim != 2:
        raise InputError(f"model: expected logits of shape (N, n_classes), got {tuple(logits.shape)}")
    return logits
