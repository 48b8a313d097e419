"""Layer by layer, how far fine-tuning moved the pretrained model: CKA of features, relative weight change."""

from __future__ import annotations

from ...rundir.documents import Similarity
from .. import plots
from ..interpret import cka_sentences
from ..recommend import FROZEN_STRATEGIES


def similarity(s: Similarity, strategy: object = None) -> dict | None:
    """``strategy`` is the run's, used when similarity.json does not name its own."""
    layers = s["layers"]
    if not layers:
        return None
    strategy = s.get("strategy", strategy)
    skipped = [f"{layer.get('name')}: {layer['skipped']}" for layer in layers if layer.get("skipped")]
    sentences = cka_sentences(layers, strategy if strategy in FROZEN_STRATEGIES else None)
    if skipped:
        sentences.append("Not compared: " + "; ".join(skipped) + ".")
    changes = [layer["weight_change"] for layer in layers if layer.get("weight_change") is not None]
    moved = not changes or any(changes)
    # a frozen backbone's chart is flat lines at CKA 1 and empty bars: the sentence says it, the table shows it
    return {"chart": plots.layer_similarity(layers) if moved else None, "layers": layers, "sentences": sentences,
            "caption": f"Arm '{s.get('arm', 'transfer')}', seed {s.get('seed', '?')}, compared with the pretrained model."}
