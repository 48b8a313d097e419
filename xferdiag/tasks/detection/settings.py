"""How big a detector's step is (image size, sampled regions, proposals) and which normalisation it uses.

torchvision's defaults are sized for 800 px images on a GPU: 256 anchors and 512 regions sampled per
image, 2000 proposals kept in training. On a CPU the detection layers' per-image work then dominates a
step (``benchmarks/bench_detection_step.py``), so xferdiag trains at a CPU scale and records both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from ...config import DETECTOR_NORMS
from ...errors import ModelError

NORMS = DETECTOR_NORMS
"""``batch``: trainable BatchNorm in both arms (the fair default); ``group``: GroupNorm everywhere (He et al.
2019, trainable normalisation for detectors from scratch); ``frozen``: torchvision's fine-tuning recipe,
the backbone's BatchNorm frozen at its loaded statistics (unfair to a scratch arm: only on request)."""


@dataclass(frozen=True)
class DetectionSettings:
    """What a detector samples and keeps per image; None leaves the builder's own value."""

    min_size: int | None = None
    max_size: int | None = None
    rpn_batch_size_per_image: int | None = None
    rpn_pre_nms_top_n_train: int | None = None
    rpn_post_nms_top_n_train: int | None = None
    rpn_pre_nms_top_n_test: int | None = None
    rpn_post_nms_top_n_test: int | None = None
    box_batch_size_per_image: int | None = None
    detections_per_img: int | None = None


TORCHVISION = DetectionSettings()
CPU_SCALE = DetectionSettings(min_size=128, max_size=192, rpn_batch_size_per_image=128, rpn_pre_nms_top_n_train=300,
                              rpn_post_nms_top_n_train=150, rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=100,
                              box_batch_size_per_image=64, detections_per_img=100)
SCALES = {"cpu": CPU_SCALE, "torchvision": TORCHVISION}
"""``--detector-scale``'s names (:data:`xferdiag.config.DETECTOR_SCALES`)."""


def settings_for(scale: str, image_size: int | None = None) -> DetectionSettings:
    """The settings ``--detector-scale`` names, with ``--image-size`` (if given) as the shorter side; the longer
    side's cap keeps the scale's proportion (the builder's own where the scale leaves it)."""
    settings = SCALES[scale]
    if image_size is None:
        return settings
    cap = None if settings.max_size is None else round(image_size * settings.max_size / settings.min_size)
    return replace(settings, min_size=image_size, max_size=cap)


def apply_settings(detector: nn.Module, settings: DetectionSettings) -> None:
    """Set ``settings`` on a torchvision-style detector in place (the parts it has)."""
    s = settings
    transform = getattr(detector, "transform", None)
    if transform is not None and s.min_size is not None:
        ratio = transform.max_size / min(transform.min_size)  # the builder's own cap, kept in proportion when not given
        transform.min_size = (s.min_size,)
        transform.max_size = s.max_size if s.max_size is not None else round(s.min_size * ratio)
        if getattr(transform, "fixed_size", None) is not None:  # SSD resizes to a fixed square
            transform.fixed_size = (s.min_size, s.min_size)
    rpn = getattr(detector, "rpn", None)
    if rpn is not None:
        for attr, train, test in (("_pre_nms_top_n", s.rpn_pre_nms_top_n_train, s.rpn_pre_nms_top_n_test),
                                  ("_post_nms_top_n", s.rpn_post_nms_top_n_train, s.rpn_post_nms_top_n_test)):
            old = getattr(rpn, attr)
            setattr(rpn, attr, {"training": train or old["training"], "testing": test or old["testing"]})
        if s.rpn_batch_size_per_image is not None:
            rpn.fg_bg_sampler.batch_size_per_image = s.rpn_batch_size_per_image
    roi = getattr(detector, "roi_heads", None)
    if roi is not None and s.box_batch_size_per_image is not None:
        roi.fg_bg_sampler.batch_size_per_image = s.box_batch_size_per_image
    if s.detections_per_img is not None:
        owner = roi if roi is not None else detector
        if hasattr(owner, "detections_per_img"):
            owner.detections_per_img = s.detections_per_img


def settings_in_effect(detector: nn.Module) -> dict[str, int | None]:
    """The values the detector really runs with, read back from it (for run.json): None where it has no such part."""
    transform = getattr(detector, "transform", None)
    rpn, roi = getattr(detector, "rpn", None), getattr(detector, "roi_heads", None)
    out = dict.fromkeys(asdict(TORCHVISION))
    if transform is not None:
        out["min_size"] = int(transform.min_size[0])
        out["max_size"] = int(transform.max_size)
    if rpn is not None:
        out["rpn_batch_size_per_image"] = rpn.fg_bg_sampler.batch_size_per_image
        for key, attr, mode in (("rpn_pre_nms_top_n_train", "_pre_nms_top_n", "training"),
                                ("rpn_post_nms_top_n_train", "_post_nms_top_n", "training"),
                                ("rpn_pre_nms_top_n_test", "_pre_nms_top_n", "testing"),
                                ("rpn_post_nms_top_n_test", "_post_nms_top_n", "testing")):
            out[key] = getattr(rpn, attr)[mode]
    if roi is not None:
        out["box_batch_size_per_image"] = roi.fg_bg_sampler.batch_size_per_image
    owner = roi if roi is not None else detector
    out["detections_per_img"] = getattr(owner, "detections_per_img", None)
    return out


def group_count(channels: int) -> int:
    """Groups for a GroupNorm over ``channels``: Wu and He's 32 where it fits, else the largest power of two
    that divides the channels and leaves at least 4 per group (1 when none does)."""
    return next((g for g in (32, 16, 8, 4, 2) if channels % g == 0 and channels // g >= 4), 1)


def _replacement(bn: nn.BatchNorm2d, norm: str) -> nn.Module:
    if norm == "frozen":
        new = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name).detach())
        return new
    new = nn.GroupNorm(group_count(bn.num_features), bn.num_features, eps=bn.eps, affine=bn.affine)
    if bn.affine:
        new.weight.data.copy_(bn.weight.detach())
        new.bias.data.copy_(bn.bias.detach())
    return new


def convert_norm(module: nn.Module, norm: str) -> int:
    """Replace every BatchNorm2d in ``module`` (``group``: GroupNorm, ``frozen``: FrozenBatchNorm2d, affine
    weights and, for frozen, statistics carried over); the number replaced."""
    if norm not in NORMS:
        raise ModelError(f"norm {norm!r}: choose one of {', '.join(NORMS)}")
    if norm == "batch":
        return 0
    targets = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.BatchNorm2d)]
    for name, bn in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, _replacement(bn, norm))
    return len(targets)
