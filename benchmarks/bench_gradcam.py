"""Grad-CAM: xferdiag (captum, gradient stopped at the target layer) against pytorch-grad-cam's
GradCAM (a full backward pass through the network) on the same torchvision ResNet-18, layer4 and
targets.

    python -m benchmarks.bench_gradcam [--quick]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torchvision
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from xferdiag.explainers import grad_cam

FULL = {"batch": 64, "size": 224, "repeats": 2}
QUICK = {"batch": 16, "size": 112, "repeats": 1}
SAME_MAP_ATOL = 1e-4


def _minmax(maps: np.ndarray) -> np.ndarray:
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    return ((flat - lo) / np.where(span > 0, span, 1)).reshape(maps.shape)


def _best_of(repeats: int, fn):
    """Best wall time of ``repeats`` runs after one warm-up run, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def main(quick: bool = False) -> list[dict]:
    size = QUICK if quick else FULL
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    peer_model = copy.deepcopy(model)  # pytorch-grad-cam leaves its hooks on the model it is given
    x = torch.rand(size["batch"], 3, size["size"], size["size"], generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 1000, (size["batch"],), generator=torch.Generator().manual_seed(2))

    ours, ours_s = _best_of(size["repeats"], lambda: grad_cam(model, x, "layer4", targets, batch_size=64))
    cam = GradCAM(model=peer_model, target_layers=[peer_model.layer4])
    peer_targets = [ClassifierOutputTarget(int(t)) for t in targets]
    peer, peer_s = _best_of(size["repeats"], lambda: cam(input_tensor=x, targets=peer_targets))
    diff = float(np.abs(_minmax(ours) - _minmax(peer)).max())
    row = {
        "name": f"grad-cam resnet18 layer4, {size['batch']}x3x{size['size']}x{size['size']}",
        "xferdiag_s": ours_s,
        "peer": "pytorch-grad-cam GradCAM",
        "peer_s": peer_s,
        "ratio": peer_s / ours_s,
        "target": f"ratio >= 1 and maps equal within {SAME_MAP_ATOL:g} after min-max",
        "met": bool(peer_s / ours_s >= 1 and diff <= SAME_MAP_ATOL),
        "max_abs_diff": diff,
        "threads": torch.get_num_threads(),
    }
    print(f"{'benchmark':<44} {'xferdiag s':>10} {'peer s':>8} {'ratio':>6} {'max |diff|':>11}  met")
    print(f"{row['name']:<44} {ours_s:>10.2f} {peer_s:>8.2f} {row['ratio']:>6.2f} {diff:>11.2e}  {row['met']}")
    print(f"peer: {row['peer']}; target: {row['target']}; {row['threads']} threads")
    return [row]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16 at 112x112")
    main(quick=parser.parse_args().quick)
