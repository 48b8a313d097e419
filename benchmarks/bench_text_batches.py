"""Training on texts of mixed lengths: batches grouped by length (``--group-by-length``) vs random batches.

Both runs fine-tune the same model (all-MiniLM-L6-v2, all layers; ``--quick``: the tiny BERT of the
text-cues demo) from the same seed on the same texts: BBC News articles cut to a random 4..120
words (4..28 in ``--quick``), so lengths spread the way reviews or messages do. A batch costs what its longest text costs
(padding no text of the batch needs is trimmed), so grouping similar lengths should save about the
ratio of the mean batch maximum to the mean length. Reported: training time and test accuracy of
both. (The tiny BERT knows only the cue words, so in ``--quick`` every word is one unknown token:
the lengths, and so the cost, are still those of the texts.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import print_table, timed
from xferdiag.commands.finetune import finetune
from xferdiag.commands.textdemo import make_tiny_bert, write_jsonl
from xferdiag.config import RunConfig
from xferdiag.modalities.loading import load_domain
from xferdiag.rundir import read_json


def mixed_length_corpus(folder: Path, n: int, longest: int, seed: int = 0) -> Path:
    """``n`` BBC News articles, each cut to a random 4..``longest`` of its words."""
    domain = load_domain("bbc-news")
    rng = np.random.default_rng(seed)
    rows = []
    for i in rng.choice(len(domain), n, replace=False):
        words = str(domain.payload.texts[i]).split()
        rows.append({"text": " ".join(words[: int(rng.integers(4, longest + 1))]), "label": domain.classes[domain.labels[i]]})
    return write_jsonl(folder / "mixed.jsonl", rows)


def _run(config: RunConfig, out: Path) -> dict:
    run, seconds = timed(finetune, config, out, quiet=True)
    metrics = read_json(run / "arms/transfer/seed-0/metrics.json")
    return {"seconds": seconds, "train_seconds": metrics["train_seconds"], "accuracy": metrics["test"]["accuracy"]}


def main(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = f"hf:{make_tiny_bert(tmp / 'tiny')}" if quick else "builtin:minilm"
        longest = 28 if quick else 120  # the tiny BERT has 32 positions
        data = mixed_length_corpus(tmp, 120 if quick else 400, longest)
        config = RunConfig(data=str(data), model=model, strategy="full", epochs=1 if quick else 2, seeds=1, baseline="none",
                           max_length=longest + 4, batch_size=16, lr=5e-5)
        plain = _run(config, tmp / "plain")
        grouped = _run(config.replace(group_by_length=True), tmp / "grouped")
    ratio = plain["train_seconds"] / grouped["train_seconds"]
    row = {"name": f"text fine-tuning on mixed lengths, {model.split(':')[-1] if not quick else 'tiny BERT'}: "
                   "batches grouped by length vs random",
           "xferdiag_s": grouped["train_seconds"], "peer": "random batches (the default)", "peer_s": plain["train_seconds"],
           "ratio": ratio, "target": "faster, accuracy within noise",
           "accuracy": {"grouped": grouped["accuracy"], "random": plain["accuracy"]}, "met": ratio > 1}
    print_table([row], ["name", "xferdiag_s", "peer_s", "ratio", "accuracy"])
    return [row]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny BERT, 120 texts, 1 epoch")
    main(quick=parser.parse_args().quick)
