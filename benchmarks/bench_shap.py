"""SHAP for images: xferdiag's stratified expected gradients against shap's GradientExplainer.

    python -m benchmarks.bench_shap [--quick]

Both estimate the same expectation (gradient x (input - reference) over background references
and interpolation points) with the same number of gradient samples and the same background.
shap draws references and points independently and differentiates the model as given;
xferdiag stratifies both and differentiates a batch-norm-folded, channels-last copy.

- Agreement: on the patch CNN trained for the explanation tests (32 px, 8 images), the mean
  Spearman rho of each estimator's maps with a 2000-sample reference, at the same sample count.
- Speed: the seconds each takes, on that CNN and on an untrained torchvision ResNet-18 at 224 px
  (where the network's own compute dominates).
"""

from __future__ import annotations

import argparse

import numpy as np
import shap
import torch
import torchvision
from torch import nn

from benchmarks.common import print_table, timed
from xferdiag.explainers import shap_images, spearman_agreement
from xferdiag.explainers._common import normalise
from xferdiag.patch_data import patch_data, trained_patch_cnn

FULL = {"samples": (32, 64), "images": 8, "reference": 2000, "resnet_images": 2}
QUICK = {"samples": (32,), "images": 4, "reference": 500, "resnet_images": 1}
TARGET = "ratio >= 1 and rho at least shap's"


class _TargetLogit(nn.Module):
    """One class's logit as an (n, 1) output, so shap explains only that class."""

    def __init__(self, model: nn.Module, target: int):
        super().__init__()
        self.model, self.target = model, target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.target:self.target + 1]


def _shap_default(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, background: torch.Tensor,
                  samples: int) -> np.ndarray:
    """shap as documented: a GradientExplainer per target class, nsamples per image, seeded."""
    maps = []
    for image, target in zip(images, targets.tolist()):
        explainer = shap.GradientExplainer(_TargetLogit(model, target), background)
        values = np.asarray(explainer.shap_values(image[None], nsamples=samples, rseed=0)).reshape(image.shape)
        maps.append(values.sum(0))
    return normalise(torch.from_numpy(np.stack(maps))).numpy()


def _row(name: str, model: nn.Module, images, targets, background, samples: int, reference=None) -> dict:
    peer, peer_s = timed(_shap_default, model, images, targets, background, samples)
    ours, ours_s = timed(shap_images, model, images, background, targets, n_samples=samples, seed=0)
    row = {"name": f"shap {name}, {len(images)} images x {samples} samples", "xferdiag_s": ours_s,
           "peer": "shap GradientExplainer, model as given", "peer_s": peer_s, "ratio": peer_s / ours_s}
    if reference is None:
        return {**row, "target": "ratio >= 1", "met": bool(peer_s >= ours_s)}
    rho, peer_rho = (float(np.nanmean(spearman_agreement(m, reference))) for m in (ours.maps, peer))
    return {**row, "target": TARGET, "met": bool(peer_s >= ours_s and rho >= peer_rho),
            "rho": round(rho, 3), "peer_rho": round(peer_rho, 3)}


def main(quick: bool = False) -> list[dict]:
    cfg = QUICK if quick else FULL
    torch.manual_seed(0)
    cnn = trained_patch_cnn()
    images, labels, _ = patch_data(3 * cfg["images"], seed=7)
    images, labels = images[labels < 2][:cfg["images"]], labels[labels < 2][:cfg["images"]]
    background = patch_data(32, seed=11)[0]
    reference = shap_images(cnn, images, background, labels, n_samples=cfg["reference"], seed=1).maps
    rows = [_row("patch CNN (trained) 32px", cnn, images, labels, background, n, reference) for n in cfg["samples"]]
    resnet = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    g = torch.Generator().manual_seed(1)
    photos, references = torch.rand(cfg["resnet_images"], 3, 224, 224, generator=g), torch.rand(16, 3, 224, 224, generator=g)
    with torch.no_grad():
        targets = resnet(photos).argmax(1)
    rows.append(_row("resnet18 (untrained) 224px", resnet, photos, targets, references, cfg["samples"][0]))
    print_table(rows, ["name", "xferdiag_s", "peer_s", "ratio", "rho", "peer_rho", "met"])
    print(f"peer: {rows[0]['peer']}; rho: agreement with {cfg['reference']} samples; {torch.get_num_threads()} threads")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 samples, 4 images, 1 ResNet image")
    main(quick=parser.parse_args().quick)
