"""Layer by layer, how far fine-tuning moved the pretrained model: CKA of features, relative weight change."""

from __future__ import annotations

from .. import plots
from ..interpret import cka_sentences
from ..recommend import FROZEN_STRATEGIES


def similarity(s: dict, strategy: object = None) -> dict | None:
    """``strategy`` is the run's, used when similarity.json does not name its own."""
    layers = [layer for layer in s.get("layers") or [] if isinstance(layer, dict)]
    if not layers:
        return None
    strategy = s.get("strategy", strategy)
    skipped = [f"{layer.get('name')}: {layer['skipped']}" for layer in layers if layer.get("skipped")]
    sentences = cka_sentences(layers, strategy if strategy in FROZEN_STRATEGIES else None)
    if skipped:
        sentences.append("Not compared: " + "; ".join(skipped) + ".")
    return {"chart": plots.layer_similarity(layers), "layers": layers, "sentences": sentences,
            "caption": f"Arm '{s.get('arm', 'transfer')}', seed {s.get('seed', '?')}, compared with the pretrained model."}
