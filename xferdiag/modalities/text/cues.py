"""A synthetic text corpus whose label is a planted cue word: the text modality's known answer.

Each text is ``length`` filler words drawn from the domain's own filler vocabulary with one cue
word of its class put at a random position. Source and target use the same cue words and
different fillers, so an encoder pretrained on the source has learnt exactly what the target
needs (the cue) and nothing about the target's fillers; a model trained from scratch on a few
target texts must find the one informative word among many.
"""

from __future__ import annotations

import numpy as np

CUES = (("apple", "pear"), ("river", "lake"), ("violin", "drum"), ("copper", "silver"))
"""Two cue words per class; class k is named after its first cue."""
FILLERS = {"source": [f"s{i}" for i in range(40)], "target": [f"t{i}" for i in range(40)]}
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def vocabulary() -> list[str]:
    """Every word a cue corpus uses, after BERT's special tokens (a WordPiece vocab.txt, one per line)."""
    return [*SPECIALS, *(w for cues in CUES for w in cues), *FILLERS["source"], *FILLERS["target"]]


def cue_corpus(domain: str, per_class: int, seed: int, length: int = 10) -> list[dict]:
    """``per_class`` rows ``{"text", "label"}`` per class for ``domain`` ("source" or "target"), seeded."""
    rng = np.random.default_rng(seed)
    fillers = FILLERS[domain]
    rows = []
    for label, cues in enumerate(CUES):
        for _ in range(per_class):
            words = list(rng.choice(fillers, size=length))
            words.insert(int(rng.integers(0, length + 1)), cues[int(rng.integers(0, len(cues)))])
            rows.append({"text": " ".join(words), "label": CUES[label][0]})
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]
