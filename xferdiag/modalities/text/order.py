"""A synthetic text corpus whose label is the order of two words: the text modality's known answer
for negative transfer.

Each text is one pair of words with ``length`` target filler words between them, ``A ... B`` or
``B ... A``; the class is the pair in that order (``apple-river`` or ``river-apple``, and likewise
for the second pair). Which words occur tells the pair; only their order tells the class within
it. An encoder that reads a text as a bag of words (``--scenario text-hurts`` pretrains the tiny
BERT on the cue corpus with its position embeddings held at zero) can at best tell the pair:
half the texts right at four classes, however it is probed. The same BERT trained from scratch
has position embeddings and learns the order. The words and fillers are the cue corpus's
(:mod:`.cues`), so one tiny BERT vocabulary covers both corpora.
"""

from __future__ import annotations

import numpy as np

from .cues import FILLERS

PAIRS = (("apple", "river"), ("violin", "copper"))
"""Two pairs of cue words from different source classes, so a cue-pretrained encoder tells the pairs apart."""


def order_classes() -> list[str]:
    """The four class names: each pair in both orders."""
    return [f"{a}-{b}" for pair in PAIRS for a, b in (pair, pair[::-1])]


def order_corpus(per_class: int, seed: int, length: int = 6) -> list[dict]:
    """``per_class`` rows ``{"text", "label"}`` per class, seeded: ``first`` fillers ``second``, labelled
    ``first-second``."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in order_classes():
        first, second = label.split("-")
        for _ in range(per_class):
            rows.append({"text": " ".join([first, *rng.choice(FILLERS["target"], size=length), second]), "label": label})
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]
