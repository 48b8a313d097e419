"""How long ``xferdiag report`` takes at real sizes with default settings, and how well its printed plan predicted it.

Each run is what a newcomer makes: an image folder of 224 px PNGs (three Fashion-MNIST classes,
30 images each, from Debian's ``dataset-fashion-mnist``; three other classes as the source data),
a torchvision architecture with a ``--pretrained-checkpoint`` of its own (random weights: no
ImageNet weights install offline, and the timings do not depend on the values), a linear probe
and a scratch arm, 1 seed. Then ``xferdiag report RUN`` with default settings is timed in a fresh
process: analysis, explanations within the default budget and the HTML. The ImageNet
EfficientNet-Lite0 row is the ``imagenet-fashion`` demo's run (64 px, 3 seeds, 300 test images)
with its analysis and explanations deleted and recomputed by ``report`` at default settings.

Besides the time: the explanation plan's estimate against the time its parts took (issue #18
asks for a factor of 1.5 or better), how many examples were explained and whether any section
is missing. Run by hand on an idle machine (minutes per model): ``python -m benchmarks.bench_real_size_report``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from benchmarks.common import timed
from xferdiag.modalities.image.fashion import load_fashion_mnist
from xferdiag.rundir import RunDir, read_json

TARGET_CLASSES, SOURCE_CLASSES = (0, 1, 7), (2, 4, 5)
PER_CLASS = 30
MODELS = {"resnet18": 120.0, "resnet50": None, "vit_b_16": None}
"""torchvision architectures and their time target in seconds (None: measured and published)."""
EFFICIENTNET_TARGET_S = 30.0


def _xferdiag(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "xferdiag", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"xferdiag {' '.join(args)} failed: {result.stderr.strip()[-500:]}")
    return result


def _folder(root: Path, classes: tuple[int, ...], size: int) -> Path:
    images, labels = load_fashion_mnist("test")
    for c in classes:
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i, k in enumerate(np.flatnonzero(labels == c)[:PER_CLASS]):
            pixels = (images[k, 0].numpy() * 255).astype(np.uint8)
            Image.fromarray(pixels).convert("RGB").resize((size, size), Image.BILINEAR).save(folder / f"{i}.png")
    return root


def _report(run: Path, cwd: Path) -> dict:
    """Time ``xferdiag report RUN`` and read back what the explanation plan said and what it cost."""
    result, seconds = timed(_xferdiag, "report", str(run), "--quiet", cwd=cwd)
    budget = read_json(RunDir(run).index_json).get("budget") or {}
    measured = sum((budget.get("measured_s_by_part") or {}).values())
    return {"xferdiag_s": round(seconds, 1), "explain_estimate_s": budget.get("estimated_s"),
            "explain_measured_s": round(measured, 1),
            "plan_ratio": round(measured / budget["estimated_s"], 2) if budget.get("estimated_s") else None,
            "explained": (budget.get("chosen") or {}).get("n"), "cuts": len(budget.get("reductions") or []),
            "missing_sections": result.stdout.count("not in this report")}


def _torchvision_row(name: str, target_s: float | None, work: Path) -> dict:
    data, source = _folder(work / "data", TARGET_CLASSES, 224), _folder(work / "source", SOURCE_CLASSES, 224)
    torch.manual_seed(0)
    checkpoint = work / f"{name}.pt"
    torch.save(getattr(torchvision.models, name)().state_dict(), checkpoint)
    run = work / f"run_{name}"
    _xferdiag("finetune", "--data", str(data), "--source-data", str(source), "--model", name, "--pretrained-checkpoint",
              str(checkpoint), "--strategy", "linear-probe", "--epochs", "5", "--seeds", "1", "--baseline", "scratch",
              "--scratch-epochs", "2", "--out", str(run), "--quiet", cwd=work)
    row = _report(run, work)
    return {"name": f"report, {name} at 224 px, transfer + scratch, 1 seed, 90 images", **row,
            "target": f"<= {target_s:g} s, all sections" if target_s else "measured",
            "met": None if target_s is None else row["xferdiag_s"] <= target_s and row["missing_sections"] == 0}


def _efficientnet_row(work: Path) -> dict | None:
    run = work / "imagenet"
    try:
        _xferdiag("demo", "--scenario", "imagenet-fashion", "--out", str(run), "--quiet", cwd=work)
    except RuntimeError as exc:
        if "needs two real assets" in str(exc):
            return None
        raise
    shutil.rmtree(RunDir(run).analysis)
    shutil.rmtree(RunDir(run).explanations)
    row = _report(run, work)
    return {"name": "report, ImageNet EfficientNet-Lite0 at 64 px, 3 seeds, 300 test images", **row,
            "target": f"<= {EFFICIENTNET_TARGET_S:g} s", "met": row["xferdiag_s"] <= EFFICIENTNET_TARGET_S}


def main(quick: bool = False) -> list[dict]:
    rows = []
    for name, target_s in list(MODELS.items())[:1 if quick else None]:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(_torchvision_row(name, target_s, Path(tmp)))
    if not quick:
        with tempfile.TemporaryDirectory() as tmp:
            row = _efficientnet_row(Path(tmp))
            rows += [row] if row else []
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18 only")
    for row in main(quick=parser.parse_args().quick):
        print(json.dumps(row))
