"""LIME images: xferdiag's vectorised perturbations and large batches against lime's own loop
(one perturbed image at a time, classifier called with lime's default batch_size=10), same
classifier function, segmentation, num_samples and seed.

    python -m benchmarks.bench_lime [--quick]

Two models: a small CNN trained for a few seconds on 32x32 images whose class is the quadrant of
a bright patch (per-call and per-sample overhead matter), and an untrained ResNet-18 at 112x112
(64x64 with --quick), where the network's own compute dominates. xferdiag runs at its default
precision ("auto": bf16 where the CPU has AMX or AVX512-BF16) and, where that is bf16, again in
fp32 so both speed-ups are on record; the target applies to the default.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch
import torchvision
from lime.lime_image import LimeImageExplainer
from torch import nn

from benchmarks.common import print_table
from xferdiag.explainers import lime_images
from xferdiag.explainers.inference import resolve_precision
from xferdiag.explainers.lime import probability_fn, segmenter

FULL = {"samples": 1000, "images": 3, "resnet_images": 1, "resnet_size": 112}
QUICK = {"samples": 300, "images": 2, "resnet_images": 1, "resnet_size": 64}
TOP = 5
TARGET_RATIO = 2.0


def _quadrant_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """32x32 noise with a bright 8x8 patch somewhere in quadrant y (0-3)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.rand(n, 3, 32, 32, generator=g)
    y = torch.arange(n) % 4
    offsets = torch.randint(0, 9, (n, 2), generator=g)
    for i, (r, c) in enumerate(offsets.tolist()):
        r, c = r + 16 * int(y[i] // 2), c + 16 * int(y[i] % 2)
        x[i, :, r:r + 8, c:c + 8] = 0.95
    return x, y


def _trained_small_cnn() -> nn.Module:
    """A small CNN that has learnt the quadrant task, so its explanations carry signal (an untrained
    net's class probabilities barely move, and the top superpixels are near-ties)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4))
    x, y = _quadrant_images(512, seed=10)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(8):
        for batch in torch.randperm(len(x)).split(32):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model


def _lime_default(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, samples: int, seed: int):
    """lime as documented: explain_instance per image, batch_size left at 10."""
    classify = probability_fn(model, 3)
    segment = segmenter("quickshift", seed)
    tops = []
    with contextlib.redirect_stderr(io.StringIO()):  # lime's own progress bar
        for image, target in zip(images, targets.tolist()):
            explanation = LimeImageExplainer(random_state=seed).explain_instance(
                image.permute(1, 2, 0).numpy(), classify, labels=(target,), top_labels=None, num_samples=samples,
                segmentation_fn=segment, random_seed=seed)
            tops.append([sid for sid, _ in explanation.local_exp[target][:TOP]])
    return tops


def _case(name: str, model: nn.Module, images: torch.Tensor, samples: int, seed: int = 0) -> list[dict]:
    model.eval()
    with torch.no_grad():
        targets = model(images).argmax(1)
    start = time.perf_counter()
    peer_tops = _lime_default(model, images, targets, samples, seed)
    peer_s = time.perf_counter() - start
    default = resolve_precision("auto", torch.device("cpu"))
    rows = []
    for precision in dict.fromkeys([default, "fp32"]):
        lime_images(model, images[:1], targets[:1], num_samples=20, seed=seed, precision=precision)  # warm-up
        start = time.perf_counter()
        ours = lime_images(model, images, targets, num_samples=samples, seed=seed, precision=precision)
        ours_s = time.perf_counter() - start
        ours_tops = [list(np.argsort(-np.abs(w), kind="stable")[:TOP]) for w in ours.weights]
        same = all(set(a) == set(b) for a, b in zip(ours_tops, peer_tops))
        is_default = precision == default
        rows.append({
            "name": f"lime {name} {images.shape[-1]}px, {len(images)} images x {samples} samples, "
                    f"{precision}{' (default)' if is_default else ''}",
            "xferdiag_s": ours_s,
            "peer": "lime LimeImageExplainer, batch_size=10, fp32",
            "peer_s": peer_s,
            "ratio": peer_s / ours_s,
            "target": f"ratio >= {TARGET_RATIO:g} and the same top-{TOP} superpixels" if is_default else "-",
            "met": bool(peer_s / ours_s >= TARGET_RATIO and same) if is_default else None,
            "same_top_superpixels": same,
            "superpixels": [len(w) for w in ours.weights],
        })
    return rows


def main(quick: bool = False) -> list[dict]:
    cfg = QUICK if quick else FULL
    torch.manual_seed(0)
    size = cfg["resnet_size"]
    resnet_images = torch.rand(cfg["resnet_images"], 3, size, size, generator=torch.Generator().manual_seed(1))
    rows = (_case("small cnn (trained)", _trained_small_cnn(), _quadrant_images(cfg["images"], seed=1)[0],
                  cfg["samples"])
            + _case("resnet18 (untrained)", torchvision.models.resnet18(weights=None, num_classes=10), resnet_images,
                    cfg["samples"]))
    print_table(rows, ["name", "xferdiag_s", "peer_s", "ratio", "same_top_superpixels", "met"])
    print(f"peer: {rows[0]['peer']}; target: {rows[0]['target']}; {torch.get_num_threads()} threads")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 samples; ResNet-18 at 64x64")
    main(quick=parser.parse_args().quick)
