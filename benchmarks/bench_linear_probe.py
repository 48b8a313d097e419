"""Linear probe with cached features vs the naive loop (backbone forward every epoch, as in Keras).

Both train the same head from the same initialisation on the same data for the same epochs and
validate every epoch; the naive loop pushes every batch through the frozen backbone each time.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.data import split_target
from xferdiag.engine.trainer import seed_everything
from xferdiag.modalities.loading import load_domain
from xferdiag.models import InputRequest, ModelSource, build_transfer_model, load_pretrained_classifier, resolve_input_spec
from xferdiag.rundir import read_json
from xferdiag.tasks.classification.prepare import split_data


def naive_linear_probe(config: RunConfig) -> float:
    """Keras-style frozen base: every epoch recomputes the backbone on train and validation batches.

    Everything else mirrors xferdiag's run (head initialisation, data order per epoch, AdamW, the
    best epoch by validation loss), so the two differ only in where the features come from.
    """
    source = ModelSource.parse(config.model)
    splits = split_target(load_domain(config.data), config.val_fraction, config.test_fraction, config.split_seed, "all")
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    spec = resolve_input_spec(source, pretrained, InputRequest.of(config))
    data = split_data(splits, spec, augment=False)
    seed_everything(0)  # after loading, as xferdiag does, so the new head starts from the same weights
    model = build_transfer_model(source, 10, pretrained=pretrained, input_spec=spec)
    model.eval().requires_grad_(False)
    model.head.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_loss, best_head = float("inf"), None
    for epoch in range(config.epochs):
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(epoch)).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        for x, y in torch.utils.data.DataLoader(data.train, batch_sampler=batches):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val = [(nn.functional.cross_entropy(model(x), y, reduction="sum").item(), len(y))
                   for x, y in torch.utils.data.DataLoader(data.val, batch_size=256)]
        val_loss = sum(v for v, _ in val) / sum(n for _, n in val)
        if val_loss < best_loss:
            best_loss, best_head = val_loss, copy.deepcopy(model.head.state_dict())
    model.head.load_state_dict(best_head)
    correct = total = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(data.test, batch_size=256):
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def main(quick: bool = False) -> list[dict]:
    torch.set_num_threads(torch.get_num_threads())
    size = 32 if quick else 128
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "resnet18.pt"
        torch.manual_seed(0)
        torch.save(ModelSource.parse("resnet18").build_classifier().state_dict(), checkpoint)
        config = RunConfig(
            data="digits:rotated", model="resnet18", pretrained_checkpoint=str(checkpoint), strategy="linear-probe",
            epochs=10, seeds=1, baseline="none", image_size=size, augment=False, test_fraction=0.1, lr=1e-2, schedule="none",
        )
        start = time.perf_counter()
        out = finetune(config, Path(tmp) / "run", quiet=True)
        cached_s = time.perf_counter() - start
        cached_acc = read_json(out / "arms/transfer/seed-0/metrics.json")["test"]["accuracy"]
        start = time.perf_counter()
        naive_acc = naive_linear_probe(config)
        naive_s = time.perf_counter() - start
    row = {
        "name": f"linear probe, cached features vs naive loop (10 epochs, resnet18 at {size}px)",
        "xferdiag_s": cached_s, "peer": "naive backbone-every-epoch loop", "peer_s": naive_s,
        "ratio": naive_s / cached_s, "target": ">= 10x faster, accuracy within 1 point",
        "accuracy": {"xferdiag": cached_acc, "naive": naive_acc},
        "met": naive_s / cached_s >= 10 and abs(cached_acc - naive_acc) <= 0.01,
    }
    print(f"{row['name']}\n  xferdiag {cached_s:.1f} s (acc {cached_acc:.3f})  naive {naive_s:.1f} s (acc {naive_acc:.3f})  "
          f"ratio {row['ratio']:.1f}x  target met: {row['met']}")
    return [row]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
