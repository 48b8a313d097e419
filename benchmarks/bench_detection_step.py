"""Where a detector's training step goes on a CPU: torchvision's default sampling against xferdiag's
CPU-scale settings, on the same model, images (128 px) and optimiser.

    python -m benchmarks.bench_detection_step [--quick]

Both settings resize to 128 px (torchvision's 320-800 px would measure the image size, not the sampling);
they differ in what the detection layers sample and keep per image (``xferdiag.tasks.detection.settings``):
RPN 256 vs 128 anchors, 2000 vs 150 proposals kept for training, 512 vs 64 regions for the box head.
Each part of a Faster R-CNN step is timed by wrapping its method (inclusive wall time, parts disjoint):
the backbone body, the FPN, the RPN's head, anchors, matching, sampling, proposal filtering (NMS) and
loss, the RoI heads' matching + sampling, RoI align, box MLP, predictor and loss, then backward and the
optimiser step.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict

import torch
import torchvision.models.detection.roi_heads as tv_roi_heads
from torch.profiler import ProfilerActivity, profile

from xferdiag.engine.strategies import Phase, apply_freezing, make_optimizer, parameter_groups, set_train_mode
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.settings import CPU_SCALE, DetectionSettings

FULL = {"images": 8, "steps": 5, "size": 128}
QUICK = {"images": 4, "steps": 1, "size": 128}
MODELS = (("fasterrcnn_mobilenet_v3_large_320_fpn", None, 256), ("fasterrcnn", "mobilenet_v2", 256), ("fasterrcnn", "mobilenet_v2", 128))
"""(model, --backbone, FPN channels): torchvision's own; on MobileNetV2 at torchvision's FPN width and at xferdiag's."""
SETTINGS = {"torchvision defaults": DetectionSettings(min_size=128, max_size=192), "xferdiag CPU scale": CPU_SCALE}
RUNS = (("torchvision defaults", "full"), ("xferdiag CPU scale", "full"), ("xferdiag CPU scale", "freeze"))
"""(settings, strategy) columns; the frozen-backbone column bounds what caching backbone features could save."""
PARTS = ("transform", "backbone body", "FPN", "RPN head", "RPN anchors", "RPN matching", "RPN sampling", "RPN proposals + NMS",
         "RPN loss", "RoI matching + sampling", "RoI align", "box MLP", "box predictor", "RoI loss", "forward other",
         "backward", "optimizer step")


def _images(n: int, size: int):
    g = torch.Generator().manual_seed(0)
    images, targets = [], []
    for _ in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * size * 0.6
        wh = 12 + torch.rand(k, 2, generator=g) * size * 0.35
        images.append(torch.rand(3, size, size, generator=g))
        targets.append({"boxes": torch.cat([xy, (xy + wh).clamp(max=size - 1)], 1), "labels": torch.randint(1, 3, (k,), generator=g)})
    return images, targets


def _hooks(detector) -> list[tuple[object, str, str]]:
    """(owner, attribute, part) of every timed callable of a torchvision Faster R-CNN."""
    rpn, roi = detector.rpn, detector.roi_heads
    return [(detector.transform, "forward", "transform"), (detector.backbone.body, "forward", "backbone body"),
            (detector.backbone.fpn, "forward", "FPN"), (rpn.head, "forward", "RPN head"),
            (rpn.anchor_generator, "forward", "RPN anchors"), (rpn, "assign_targets_to_anchors", "RPN matching"),
            (rpn, "fg_bg_sampler", "RPN sampling"), (rpn, "filter_proposals", "RPN proposals + NMS"),
            (rpn, "compute_loss", "RPN loss (with sampling)"), (roi, "select_training_samples", "RoI matching + sampling"),
            (roi.box_roi_pool, "forward", "RoI align"), (roi.box_head, "forward", "box MLP"),
            (roi.box_predictor, "forward", "box predictor"), (tv_roi_heads, "fastrcnn_loss", "RoI loss"),
            (detector, "forward", "forward")]


@contextlib.contextmanager
def timing(detector, spent: dict[str, float]):
    """Add each part's wall seconds to ``spent`` while inside; every wrapped attribute restored after."""
    patched = []
    for owner, attr, part in _hooks(detector):
        original = getattr(owner, attr)

        def wrapper(*args, _original=original, _part=part, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_part] += time.perf_counter() - start

        had_own = attr in vars(owner)
        setattr(owner, attr, wrapper)
        patched.append((owner, attr, original, had_own))
    try:
        yield spent
    finally:
        for owner, attr, original, had_own in reversed(patched):
            if had_own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)


def _disjoint(spent: dict[str, float]) -> dict[str, float]:
    """Inclusive times made disjoint: sampling out of the RPN loss, every part out of the forward."""
    parts = {p: spent.get(p, 0.0) for p in PARTS}
    parts["RPN loss"] = spent["RPN loss (with sampling)"] - spent["RPN sampling"]
    inside = sum(v for p, v in parts.items() if p not in ("forward other", "backward", "optimizer step"))
    parts["forward other"] = spent["forward"] - inside
    return parts


def _kind(op: str) -> str:
    for words, kind in (("roi_align", "RoI align"), ("convolution", "convolutions"), ("batch_norm", "BatchNorm"),
                        ("mm", "dense layers")):
        if words in op:
            return kind
    return "other"


def backward_by_kind(model, images, targets) -> dict[str, float]:
    """Seconds of one backward pass by kind of operation (convolutions: backbone, FPN, RPN head; dense
    layers: the box MLP and predictor), from torch.profiler's self CPU times."""
    loss = sum(model(images, targets).values())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss.backward()
    kinds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        kinds[_kind(event.key)] += event.self_cpu_time_total / 1e6
    return dict(kinds)


class Arm:
    """One column: a model under one setting and strategy, its optimiser, and its per-part seconds so far."""

    def __init__(self, model_name: str, backbone: str | None, channels: int, settings: DetectionSettings, strategy: str):
        torch.manual_seed(0)
        self.model = build_detection_model(model_name, 2, backbone=backbone, settings=settings, fpn_channels=channels)
        self.phase = Phase(strategy, 1)
        apply_freezing(self.model, self.phase)
        groups = parameter_groups(self.model, self.phase, 0.01, 1.0, 1.0, 0.0, l2sp=False)
        self.optimizer = make_optimizer("sgd", groups, 0.01, 0.9)
        self.spent: dict[str, float] = defaultdict(float)
        self.steps = 0

    def step(self, images, targets) -> None:
        set_train_mode(self.model, self.phase)
        with timing(self.model.detector, self.spent):
            loss = sum(self.model(images, targets).values())
        start = time.perf_counter()
        self.optimizer.zero_grad()
        loss.backward()
        middle = time.perf_counter()
        self.optimizer.step()
        self.spent["backward"] += middle - start
        self.spent["optimizer step"] += time.perf_counter() - middle
        self.steps += 1

    def result(self, images, targets) -> dict:
        """Mean seconds per step by part, backward by kind, and eval seconds per image."""
        parts = {p: v / self.steps for p, v in _disjoint(self.spent).items()}
        backward = backward_by_kind(self.model, images, targets)
        self.model.eval()
        with torch.no_grad():
            start = time.perf_counter()
            self.model(images)
        return {"parts": parts, "backward": backward, "step_s": sum(parts.values()),
                "eval_s_per_image": (time.perf_counter() - start) / len(images)}


def profile_arms(arms: list[Arm], size: dict) -> list[dict]:
    """Steps taken round-robin over the arms (a busy machine's drift spreads over all of them); one warm-up each."""
    images, targets = _images(size["images"], size["size"])
    for arm in arms:
        arm.step(images, targets)
        arm.spent.clear()
        arm.steps = 0
    for _ in range(size["steps"]):
        for arm in arms:
            arm.step(images, targets)
    return [arm.result(images, targets) for arm in arms]


def _breakdown(label: str, results: dict[str, dict], n: int) -> None:
    print(f"\n{label}: ms per step of {n} images (share of the step); columns: {', '.join(results)}")
    for part in PARTS:
        cells = [f"{1000 * r['parts'][part]:8.1f} ({100 * r['parts'][part] / r['step_s']:4.1f}%)" for r in results.values()]
        print(f"  {part:26s}" + "  ".join(cells))
    for kind in ("convolutions", "BatchNorm", "dense layers", "RoI align", "other"):
        cells = [f"{100 * r['backward'].get(kind, 0.0) / sum(r['backward'].values()):15.0f}%" for r in results.values()]
        print(f"  {'backward: ' + kind:26s}" + "  ".join(cells))
    print(f"  {'step, ms per image':26s}" + "  ".join(f"{1000 * r['step_s'] / n:8.1f}        " for r in results.values()))
    print(f"  {'eval, ms per image':26s}" + "  ".join(f"{1000 * r['eval_s_per_image']:8.1f}        " for r in results.values()))


def _label(model_name: str, backbone: str | None, channels: int) -> str:
    return model_name if backbone is None else f"{model_name} on {backbone}, FPN {channels} channels"


def main(quick: bool = False) -> list[dict]:
    size = QUICK if quick else FULL
    arms = [Arm(*model, SETTINGS[name], strategy) for model in MODELS for name, strategy in RUNS]
    results = iter(profile_arms(arms, size))  # every column of every model in one round-robin
    by_model = {_label(*model): {f"{name}, {strategy}": next(results) for name, strategy in RUNS} for model in MODELS}
    rows = []
    for label, columns in by_model.items():
        _breakdown(label, columns, size["images"])
        peer, ours, frozen = columns.values()
        top = max(PARTS, key=lambda p: peer["parts"][p])
        rows.append({
            "name": f"detection training step, {label}, {size['images']} images at {size['size']} px",
            "xferdiag_s": ours["step_s"], "peer": "torchvision's default sampling, same size", "peer_s": peer["step_s"],
            "ratio": peer["step_s"] / ours["step_s"],
            "ms_per_image": round(1000 * ours["step_s"] / size["images"], 1),
            "peer_ms_per_image": round(1000 * peer["step_s"] / size["images"], 1),
            "eval_ms_per_image": round(1000 * ours["eval_s_per_image"], 1),
            "peer_largest_part": f"{top} {100 * peer['parts'][top] / peer['step_s']:.0f}%",
            "frozen_backbone_ms_per_image": round(1000 * frozen["step_s"] / size["images"], 1),
            "frozen_body_forward_share": round(frozen["parts"]["backbone body"] / frozen["step_s"], 3),
            "threads": torch.get_num_threads(),
        })
    wide, narrow = (by_model[_label(*m)]["xferdiag CPU scale, full"] for m in MODELS[1:])
    rows.append({"name": f"FPN width on mobilenet_v2, CPU scale: 128 channels (xferdiag) vs 256 (torchvision's), "
                         f"{size['images']} images at {size['size']} px",
                 "xferdiag_s": narrow["step_s"], "peer": "256 channels", "peer_s": wide["step_s"],
                 "ratio": wide["step_s"] / narrow["step_s"], "threads": torch.get_num_threads()})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for row in main(args.quick):
        print(row)
