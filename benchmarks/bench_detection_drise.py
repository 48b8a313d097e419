"""How many D-RISE masks a box needs, and which masks: plain random (the paper's) against stratified and Sobol masks.

One detector (Faster R-CNN on ImageNet MobileNetV2, fine-tuned for 6 epochs on 60 easy 128 px face scenes,
``commands/detdemo.py`` EASY; or the transfer arm of ``--run-dir``) explains the ground-truth boxes of the test
image with the most boxes (one image: a detector forward costs about 0.1 s of CPU, and the reference alone is 2000
of them). The reference map of each box is D-RISE with 2000 plain random masks (its own seed). Each design's map
at 128..1024 masks is compared with it: Spearman rho over pixels and the overlap of the top 10% of pixels (the shared
agreement measures of :mod:`xferdiag.explainers.agreement`), and the energy pointing game (share of the positive
map inside the box against the box's share of the area). Random and Sobol maps at n masks are the first n of one
1024-mask run (a random prefix is a random sample; a Sobol prefix of 2^k points is balanced); stratified masks are
drawn afresh for every count (their balance holds for the whole set only). The floor is the smallest count at
which a design's mean rho reaches 0.9 (the worst box is printed beside it). Time per box: one detector forward per
mask and arm.

    nice -n 5 python -m benchmarks.bench_detection_drise [--quick] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import print_table, timed
from xferdiag.explainers.agreement import spearman_agreement, topk_overlap
from xferdiag.tasks.detection.drise import CELLS, KEEP, MASK_DESIGNS, detector_fn, drise, masks, pointing_shares

COUNTS, QUICK_COUNTS = (128, 256, 512, 1024), (16, 32)
REFERENCE, QUICK_REFERENCE = 2000, 64
IMAGES, QUICK_IMAGES = 1, 1
BATCH = 16


def _trained(folder: Path):
    """(detector, test images with their boxes): the transfer arm of a run in ``folder`` (made when absent)."""
    from xferdiag.api import finetune
    from xferdiag.commands.detdemo import EASY, mobilenet_v2_imagenet_weights
    from xferdiag.tasks.detection.data import make_scenes, write_coco

    run = folder / "run"
    if not (run / "arms" / "transfer").is_dir():
        write_coco(make_scenes(80, seed=2, backgrounds="textures", **EASY), folder / "scenes")
        finetune(data=str(folder / "scenes"), model="fasterrcnn", backbone="mobilenet_v2", epochs=6, scratch_epochs=1,
                 seeds=1, batch_size=2, test_fraction=0.25, threads=2, quiet=True, out=str(run),
                 pretrained_checkpoint=mobilenet_v2_imagenet_weights())
    return run


def _run_detector(run: Path):
    """The run's transfer detector (seed 0) and its test images with their ground-truth boxes."""
    from xferdiag import rundir
    from xferdiag.config import RunConfig
    from xferdiag.tasks.detection.checkpoints import load_finetuned
    from xferdiag.tasks.detection.data import load_detection, split_images
    from xferdiag.tasks.detection.dataset import DetectionSet
    from xferdiag.tasks.detection.prepare import new_detector

    rd = rundir.RunDir(run)
    config = RunConfig.from_dict(rundir.read_json(rd.run_json)["config"])
    data = load_detection(config.data)
    model = new_detector(config, len(data.classes), False, 0)
    load_finetuned(model, rd.seed("transfer", rd.seeds("transfer")[0]).model_pt)
    test = DetectionSet(data, split_images(data, config.val_fraction, config.test_fraction, config.split_seed)["test"])
    pairs = [test[k] for k in range(len(test))]
    return model.eval(), sorted((p for p in pairs if len(p[1]["boxes"])), key=lambda p: -len(p[1]["boxes"]))  # most boxes first


def _prefix_maps(weights: np.ndarray, stack: torch.Tensor, n: int) -> np.ndarray:
    """The centred D-RISE maps of the first ``n`` masks (as :func:`drise` computes them for n masks)."""
    w = torch.from_numpy(weights[:n])
    flat = stack[:n].reshape(n, -1)
    return ((w - w.mean(0)).T @ flat / (n * KEEP)).reshape(weights.shape[1], *stack.shape[1:]).numpy()


def _scores(maps: np.ndarray, reference: np.ndarray, boxes: np.ndarray) -> dict:
    share, area = pointing_shares(maps, boxes)
    return {"rho": np.nan_to_num(spearman_agreement(maps, reference)), "top10": topk_overlap(maps, reference, 0.1),
            "pointing": share > area}


def _design_rows(detect, image, target, counts, seed, cells) -> dict[str, dict[int, np.ndarray]]:
    """{design: {count: (T, H, W) maps}} of one image's target boxes."""
    boxes, labels = target["boxes"], target["labels"]
    out = {}
    for design in MASK_DESIGNS:
        if design == "stratified":
            out[design] = {n: drise({"a": detect}, image, boxes, labels, n_masks=n, batch_size=BATCH, design=design,
                                    seed=seed + n, cells=cells)[0]["a"] for n in counts}
            continue
        _, weights = drise({"a": detect}, image, boxes, labels, n_masks=max(counts), batch_size=BATCH, design=design, seed=seed,
                           cells=cells)
        stack = masks(max(counts), tuple(image.shape[-2:]), design=design, seed=seed, cells=cells)
        out[design] = {n: _prefix_maps(weights["a"], stack, n) for n in counts}
    return out


def main(quick: bool = False, run_dir: str | None = None, cells: int = CELLS) -> list[dict]:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # two shared cores: one thread each for this and the machine's other work
    counts, reference_n = (QUICK_COUNTS, QUICK_REFERENCE) if quick else (COUNTS, REFERENCE)
    folder = Path(os.environ.get("XFERDIAG_DRISE_RUN", Path(tempfile.gettempdir()) / "xferdiag-drise-bench"))
    model, tests = _run_detector(Path(run_dir) if run_dir else _trained(folder))
    detect = detector_fn(model)
    per = {(d, n): [] for d in MASK_DESIGNS for n in counts}
    seconds, boxes_done = 0.0, 0
    for k, (image, target) in enumerate(tests[:QUICK_IMAGES if quick else IMAGES]):
        (ref, _), took = timed(drise, {"a": detect}, image, target["boxes"], target["labels"], n_masks=reference_n,
                               batch_size=BATCH, design="random", seed=10**6 + k, cells=cells)
        seconds, boxes_done = seconds + took, boxes_done + 1
        for design, by_count in _design_rows(detect, image, target, counts, 1000 * k, cells).items():
            for n, maps in by_count.items():
                per[(design, n)].append(_scores(maps, ref["a"], target["boxes"].numpy()))
    rows = []
    for (design, n), parts in per.items():
        rho = np.concatenate([p["rho"] for p in parts])
        rows.append({"name": f"{design} {n} masks, {cells} x {cells} cells", "design": design, "masks": n, "boxes": len(rho),
                     "rho_mean": round(float(rho.mean()), 3), "rho_min": round(float(rho.min()), 3),
                     "top10_mean": round(float(np.concatenate([p["top10"] for p in parts]).mean()), 3),
                     "pointing": round(float(np.concatenate([p["pointing"] for p in parts]).mean()), 3)})
    per_forward = seconds / (boxes_done * reference_n)
    floors = {d: min((r["masks"] for r in rows if r["design"] == d and r["rho_mean"] >= 0.9), default=None) for d in MASK_DESIGNS}
    rows.append({"name": "floor (mean rho >= 0.9)", **{f"floor_{d}": floors[d] for d in MASK_DESIGNS},
                 "forward_ms": round(per_forward * 1000, 1),
                 "seconds_per_box_per_arm_at_stratified_floor": round(per_forward * (floors["stratified"] or 0), 1)})
    print_table(rows[:-1], ["name", "boxes", "rho_mean", "rho_min", "top10_mean", "pointing"])
    print(rows[-1])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one image, 16 and 32 masks against 64")
    parser.add_argument("--run-dir", default=None, help="a finished detection run whose transfer arm is explained")
    parser.add_argument("--cells", type=int, default=CELLS, help="the masks' grid (cells per side)")
    args = parser.parse_args()
    main(quick=args.quick, run_dir=args.run_dir, cells=args.cells)
