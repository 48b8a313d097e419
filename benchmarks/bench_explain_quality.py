"""Do cheaper explanations say the same thing? LIME and SHAP at fewer samples against a high-budget reference.

The ``--budget`` ladder (xferdiag/explainers/budget.py) draws fewer LIME and SHAP samples when a
model is slow; this measures what that costs in answers, on trained models and images with a
known place to point at (xferdiag/patch_data.py: a coloured patch decides the class):

- a small CNN trained on the 32 px patch images;
- ImageNet EfficientNet-Lite0 with a linear probe trained on the same images at 224 px (the real
  weights of the ``real`` extra; skipped without them).

For each sample count: mean Spearman rho and top-10% overlap of the maps with the reference maps
(same examples, same seed), the pointing game (does the map's maximum land on the patch) and the
randomisation sanity verdict, each next to the reference's. Targets (issue #18): rho >= 0.9 and
overlap >= 0.8, pointing game and sanity verdict unchanged.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch import nn

from benchmarks.common import timed
from xferdiag.explainers import (
    lime_images,
    pointing_game,
    randomisation_test,
    shap_images,
    spearman_agreement,
    topk_overlap,
)
from xferdiag.patch_data import patch_data, trained_patch_cnn

TARGET = "rho >= 0.9, top-10% overlap >= 0.8, pointing and sanity as the reference"
LADDER = {"lime": (64, 128, 256, 512), "shap": (8, 16, 32, 64, 128)}
REFERENCE = {"lime": 2000, "shap": 2000}
"""Samples of the reference maps: twice and ten times as many as the explainers' own defaults (SHAP's
reference needs more: a reference's own noise caps the agreement any rung can show)."""


def _explain(method: str, model: nn.Module, x, y, background, samples: int) -> np.ndarray:
    if method == "lime":
        return lime_images(model, x, y, num_samples=samples, seed=0).maps
    return shap_images(model, x, background, y, n_samples=samples, seed=0).maps


def _evaluate(method: str, model, x, y, masks, background, samples: int, reference: np.ndarray | None) -> dict:
    maps, seconds = timed(_explain, method, model, x, y, background, samples)
    sanity = randomisation_test(model, x, y, lambda m, xs, ts: _explain(method, m, xs, ts, background, samples),
                                n_steps=1, original_maps=maps)
    row = {"samples": samples, "seconds": seconds, "maps": maps, "pointing": pointing_game(maps, masks).accuracy,
           "sanity_flagged": bool(sanity.flagged), "sanity_similarity": sanity.similarity_after_randomisation}
    if reference is not None:
        row["spearman"] = float(np.nanmean(spearman_agreement(maps, reference)))
        row["overlap"] = float(np.mean(topk_overlap(maps, reference, 0.1)))
    return row


def _rows(name: str, model: nn.Module, x, y, masks, background, quick: bool, methods: tuple[str, ...], scale: int = 1):
    """``scale`` divides the reference's samples (and drops the cheapest rung) where passes are dear."""
    for method in methods:
        ladder = LADDER[method][:2] if quick else LADDER[method][1:] if scale > 1 else LADDER[method]
        reference = _evaluate(method, model, x, y, masks, background, REFERENCE[method] // (4 if quick else scale), None)
        for samples in ladder:
            fast = _evaluate(method, model, x, y, masks, background, samples, reference["maps"])
            met = (fast["spearman"] >= 0.9 and fast["overlap"] >= 0.8 and fast["pointing"] >= reference["pointing"]
                   and fast["sanity_flagged"] == reference["sanity_flagged"])
            yield ({"name": f"{name}: {method.upper()} {samples} vs {reference['samples']} samples",
                         "xferdiag_s": round(fast["seconds"], 2), "peer": "high-budget reference",
                         "peer_s": round(reference["seconds"], 2), "ratio": round(reference["seconds"] / fast["seconds"], 1),
                         "target": TARGET, "met": met, "spearman": round(fast["spearman"], 3),
                         "overlap": round(fast["overlap"], 3), "pointing": round(fast["pointing"], 3),
                         "pointing_reference": round(reference["pointing"], 3),
                         "sanity_similarity": round(fast["sanity_similarity"], 3),
                         "sanity_similarity_reference": round(reference["sanity_similarity"], 3)})


def _patch_examples(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` test images of the two patch classes (the third has nothing to point at), at ``size`` px."""
    x, y, masks = patch_data(3 * n, seed=7)
    keep = torch.nonzero(y < 2)[:n, 0]
    x, y, masks = x[keep], y[keep], masks[keep]
    if size != x.shape[-1]:
        x = nn.functional.interpolate(x, size=size, mode="nearest")
        masks = nn.functional.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].bool()
    return x, y, masks


def _efficientnet_probe(size: int) -> nn.Module | None:
    """ImageNet EfficientNet-Lite0 with a linear probe fitted on 96 patch images at ``size`` px."""
    try:
        from xferdiag.models.builtin import efficientnet_lite0, efficientnet_lite0_imagenet_weights

        backbone = efficientnet_lite0()
        backbone.load_state_dict(torch.load(efficientnet_lite0_imagenet_weights(), weights_only=True))
    except Exception:  # the ``real`` extra is not installed
        return None
    backbone._fc = nn.Identity()
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    normalise = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        normalise.weight.copy_(torch.diag(1 / std)[:, :, None, None])
        normalise.bias.copy_(-mean / std)
    features = nn.Sequential(normalise, backbone).eval()
    x, y, _ = patch_data(96, seed=3)
    x = nn.functional.interpolate(x, size=size, mode="nearest")
    with torch.no_grad():
        f = torch.cat([features(b) for b in x.split(32)])
    head = nn.Linear(f.shape[1], 3)
    optimiser = torch.optim.LBFGS(head.parameters(), max_iter=200)

    def loss():
        optimiser.zero_grad()
        value = nn.functional.cross_entropy(head(f), y) + 1e-3 * head.weight.square().sum()
        value.backward()
        return value

    optimiser.step(loss)
    return nn.Sequential(features, head).eval()


def rows(quick: bool = False, models: tuple[str, ...] = ("cnn", "efficientnet"), methods: tuple[str, ...] = ("lime", "shap")):
    """The rows one by one (each model takes minutes on two cores at full size)."""
    torch.manual_seed(0)
    if "cnn" in models:
        x, y, masks = _patch_examples(4 if quick else 8, 32)
        yield from _rows("patch CNN, 32 px", trained_patch_cnn(), x, y, masks, patch_data(32, seed=11)[0], quick,
                         methods)
    model = None if quick or "efficientnet" not in models else _efficientnet_probe(224)
    if model is not None:
        x, y, masks = _patch_examples(4, 224)
        background = nn.functional.interpolate(patch_data(16, seed=11)[0], size=224, mode="nearest")
        # at 224 px the reference has half the samples (1000 each): 2000 LIME samples on 4 examples,
        # twice (sanity), are half an hour of forward passes on two cores
        yield from _rows("EfficientNet-Lite0 ImageNet + probe, 224 px", model, x, y, masks, background, quick, methods,
                         scale=2)


def main(quick: bool = False) -> list[dict]:
    return list(rows(quick))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sample counts, a quarter of the reference, 32 px only")
    parser.add_argument("--models", default="cnn,efficientnet", help="comma-separated: cnn, efficientnet")
    parser.add_argument("--methods", default="lime,shap", help="comma-separated: lime, shap")
    args = parser.parse_args()
    for row in rows(args.quick, tuple(args.models.split(",")), tuple(args.methods.split(","))):
        print(json.dumps(row), flush=True)
