"""Detection models: torchvision's detectors by name, a detector on any classification backbone, a user's own.

Every detector is built with ``weights=None, weights_backbone=None`` (never a download) and trainable
BatchNorm, so the transferred arm and the scratch arm differ only in their initial weights
(:mod:`.checkpoints` loads a local file into one of them). :class:`DetectionModel` is what the engine
trains: the detector is its only child; ``backbone`` is the classification body inside it, ``head`` every
other weight (the pyramid, the proposal network, the box heads), so the fine-tuning strategies of
:mod:`xferdiag.engine.strategies` work on detectors as they do on classifiers.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import RunConfig
from ...errors import ModelError
from ...models import ModelSource
from ...models.layers import blocks_of, trace
from .backbones import PyramidBackbone, anchor_sizes, pyramid_backbone
from .settings import CPU_SCALE, DetectionSettings, apply_settings, convert_norm, settings_in_effect

TORCHVISION_DETECTORS = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "mobilenet_v3_large",
    "fasterrcnn_mobilenet_v3_large_fpn": "mobilenet_v3_large",
    "fasterrcnn_resnet50_fpn": "resnet50",
    "fasterrcnn_resnet50_fpn_v2": "resnet50",
    "retinanet_resnet50_fpn": "resnet50",
    "retinanet_resnet50_fpn_v2": "resnet50",
    "fcos_resnet50_fpn": "resnet50",
    "ssdlite320_mobilenet_v3_large": "mobilenet_v3_large (reduced tail)",
}
"""Detector name -> the torchvision classifier its backbone body comes from (what a backbone checkpoint must be)."""
FAMILIES = ("fasterrcnn", "retinanet", "fcos")
"""Detectors that can sit on any backbone's pyramid (``--backbone``); SSD's backbone is specific to it."""
FPN_CHANNELS = RunConfig.fpn_channels
"""Width of the pyramid xferdiag puts on a --backbone by default (torchvision's own detectors use 256): RoI align and
the box MLP, whose input is channels x 7 x 7, dominate a CPU step, and 128 channels halve a step of Faster R-CNN on
MobileNetV2 at 128 px (benchmarks/bench_detection_step.py). The speed has a price where measured: 10.7 points of
mAP on one seed at a fixed 3-epoch budget (reports/benchmarks.md); the report names the width. Both arms get the same."""
BODY_PATHS = ("backbone.body", "backbone.features", "backbone")
"""Where the classification body lives: torchvision's FPN backbones, SSD's feature extractor, anything else."""


class HeadView(nn.Module):
    """The detection layers of a detector, seen together; not registered in :class:`DetectionModel`, so a
    state_dict holds each weight once (under ``detector.``)."""

    def __init__(self, parts: dict[str, nn.Module]):
        super().__init__()
        self.parts = nn.ModuleDict(parts)


def _head_parts(detector: nn.Module, body_path: str) -> dict[str, nn.Module]:
    """The detector's parameterised modules outside the body, as high up the tree as they can be taken."""
    parts: dict[str, nn.Module] = {}

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = prefix + name
            if path == body_path:
                continue
            if body_path.startswith(path + "."):
                visit(path + ".", child)
            elif any(True for _ in child.parameters()):
                parts[path.replace(".", "/")] = child

    visit("", detector)
    return parts


class DetectionModel(nn.Module):
    """A torchvision-contract detector with its backbone body, detection layers and body blocks named.

    ``forward(images, targets=None)`` is the detector's: a list of CHW float images in [0, 1]; with targets
    in train mode a dict of losses, else ``[{boxes, scores, labels}]`` per image. ``blocks`` are the body's
    blocks as :func:`xferdiag.models.layers.blocks_of` finds them for classifiers (``partial`` trains the
    last k of them); ``num_classes`` counts the target's classes, without the background.
    """

    def __init__(self, detector: nn.Module, name: str, num_classes: int, body_path: str, norm: str = "batch", size: int = 64):
        super().__init__()
        self.detector = detector
        self.name = name
        self.norm = norm
        self.num_classes = num_classes
        self.body_path = body_path
        object.__setattr__(self, "_head", HeadView(_head_parts(detector, body_path)))
        counted = sum(p.numel() for p in self.backbone.parameters()) + sum(p.numel() for p in self.head.parameters())
        if counted != sum(p.numel() for p in detector.parameters()):
            raise ModelError(f"model {name!r}: its backbone body ({body_path}) shares weights with its detection layers; "
                             "give the detector a backbone of its own")
        seen, _ = trace(self.backbone, torch.zeros(1, 3, size, size))
        self.blocks = blocks_of(self.backbone, seen)

    @property
    def backbone(self) -> nn.Module:
        return self.detector.get_submodule(self.body_path)

    @property
    def head(self) -> nn.Module:
        return self._head

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        return self.detector(images, targets)

    def describe(self) -> dict:
        """The architecture and settings as plain values, for run.json."""
        pyramid = self.detector.get_submodule("backbone")
        out = {"model": self.name, "classes": self.num_classes, "outputs": self.num_classes + 1, "body": self.body_path,
               "blocks": len(self.blocks), "norm": self.norm, "settings": settings_in_effect(self.detector)}
        if isinstance(pyramid, PyramidBackbone):
            out.update(stages=list(pyramid.stage_names), strides=list(pyramid.strides), fpn_channels=pyramid.out_channels)
        return out


def family_of(model: str) -> str:
    """``fasterrcnn`` for ``fasterrcnn_mobilenet_v3_large_320_fpn`` or ``fasterrcnn``; one error otherwise."""
    family = model.split("_", 1)[0]
    if family not in FAMILIES:
        raise ModelError(f"model {model!r}: a detector on --backbone is one of {', '.join(FAMILIES)} (or a torchvision "
                         f"name starting with one); SSD's backbone is its own")
    return family


def _on_pyramid(family: str, pyramid: PyramidBackbone, num_classes: int, mean, std) -> nn.Module:
    """A torchvision detector of ``family`` on ``pyramid``, anchors matched to its levels' strides."""
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    sizes = anchor_sizes(pyramid.strides)
    common = {"image_mean": list(mean), "image_std": list(std)}
    if family == "fcos":  # FCOS's "anchors" are its levels' strides (one point per location)
        anchors = AnchorGenerator(tuple((s,) for s in (*pyramid.strides, 2 * pyramid.strides[-1])), ((1.0,),) * len(sizes))
        return FCOS(pyramid, num_classes, anchor_generator=anchors, **common)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    if family == "retinanet":
        return RetinaNet(pyramid, num_classes, anchor_generator=anchors, **common)
    roi_pool = MultiScaleRoIAlign([str(i) for i in range(len(pyramid.strides))], output_size=7, sampling_ratio=2)
    return FasterRCNN(pyramid, num_classes, rpn_anchor_generator=anchors, box_roi_pool=roi_pool, **common)


def _backbone_detector(model: str, backbone: str, num_classes: int, stages: int, fpn_channels: int) -> nn.Module:
    family = family_of(model)
    source = ModelSource.parse(backbone)
    if source.from_directory:
        raise ModelError(f"backbone {backbone!r} takes text; a detector needs an image backbone")
    pre = source.preprocessing() if source.kind in ("torchvision", "timm") else None
    mean, std = (pre.mean, pre.std) if pre is not None and pre.mean else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    pyramid = pyramid_backbone(source.build_classifier(), source.canonical, stages=stages, out_channels=fpn_channels)
    return _on_pyramid(family, pyramid, num_classes + 1, mean, std)


def _torchvision_detector(model: str, num_classes: int) -> nn.Module:
    import torchvision.models as tvm

    return tvm.get_model(model, weights=None, weights_backbone=None, num_classes=num_classes + 1)


def _user_detector(model: str, num_classes: int) -> nn.Module:
    source = ModelSource.parse(model)
    if source.kind not in ("callable", "file"):
        names = ", ".join(TORCHVISION_DETECTORS)
        raise ModelError(f"model {model!r}: not a detector; name one of {names}, or a module:function returning a "
                         "torchvision-contract detector (a classifier goes in --backbone)")
    detector = source.build_classifier(num_classes + 1)
    check_contract(detector, source.canonical)
    return detector


def build_detection_model(model: str, num_classes: int, *, backbone: str | None = None,
                          settings: DetectionSettings = CPU_SCALE, norm: str = "batch", stages: int = 3,
                          fpn_channels: int = FPN_CHANNELS) -> DetectionModel:
    """A detector for ``num_classes`` target classes (labels 1..C; 0 is the background) with random weights.

    ``model`` is a torchvision detector name or a user's ``module:function``; with ``backbone`` (any classifier
    spec ``--model`` takes), ``model`` names the family (``fasterrcnn``, ``retinanet``, ``fcos``, or a torchvision
    name of one) put on that backbone's pyramid. ``norm`` as in :data:`.settings.NORMS`.
    """
    if num_classes < 1:
        raise ModelError(f"a detector needs at least one class, got {num_classes}")
    if backbone is not None:
        detector = _backbone_detector(model, backbone, num_classes, stages, fpn_channels)
        name = f"{family_of(model)}:{ModelSource.parse(backbone).canonical}"
    elif model in TORCHVISION_DETECTORS:
        detector, name = _torchvision_detector(model, num_classes), model
    else:
        detector = _user_detector(model, num_classes)
        name = ModelSource.parse(model).canonical
    apply_settings(detector, settings)
    body_path = next(p for p in BODY_PATHS if _has_module(detector, p)) if _has_module(detector, "backbone") else None
    if body_path is None:
        raise ModelError(f"model {name!r}: the detector has no .backbone module; torchvision's detectors keep their "
                         "classification body there, and the fine-tuning strategies need it")
    # GroupNorm replaces BatchNorm everywhere (SSD's heads have it too); frozen statistics belong to the body only
    convert_norm(detector if norm == "group" else detector.get_submodule(body_path), norm)
    return DetectionModel(detector, name, num_classes, body_path, norm)


def _has_module(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _contract_images() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 64, generator=generator)]
    return images, [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}]


def _contract_broken(detector: nn.Module) -> str | None:
    """What is wrong with ``detector``'s outputs on one dummy image, or None when it keeps the contract."""
    images, targets = _contract_images()
    with torch.no_grad():
        detector.train()
        losses = detector(images, targets)
        if not isinstance(losses, dict) or not losses or not all(
                isinstance(v, torch.Tensor) and v.numel() == 1 for v in losses.values()):
            return f"in train mode given targets it returned {type(losses).__name__}, not a dict of scalar losses"
        detector.eval()
        out = detector(images)
    if not isinstance(out, (list, tuple)) or len(out) != 1 or not isinstance(out[0], dict):
        return f"in eval mode it returned {type(out).__name__}, not one dict per image"
    missing = [k for k in ("boxes", "scores", "labels") if k not in out[0]]
    if missing:
        return f"in eval mode its per-image dict lacks {', '.join(missing)}"
    n = out[0]["boxes"].shape[0]
    if tuple(out[0]["boxes"].shape) != (n, 4) or out[0]["scores"].shape != (n,) or out[0]["labels"].shape != (n,):
        return "in eval mode its boxes are not (N, 4) with N scores and N labels"
    return None


def check_contract(detector: nn.Module, name: str) -> None:
    """One clear line unless ``detector`` keeps torchvision's contract on a dummy 64 px image: a dict of
    losses in train mode given targets, ``[{boxes (N, 4), scores (N,), labels (N,)}]`` in eval mode.
    Its buffers (BatchNorm statistics) and train/eval flags are left as they were."""
    saved = [b.detach().clone() for b in detector.buffers()]
    flags = {m: m.training for m in detector.modules()}
    try:
        problem = _contract_broken(detector)
    except Exception as exc:  # a user's model failing in any way on a valid input breaks the contract
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        problem = f"it failed on a 64 px image with one box ({type(exc).__name__}: {reason})"
    finally:
        for buffer, value in zip(detector.buffers(), saved):
            buffer.copy_(value)
        for m, flag in flags.items():
            m.training = flag
    if problem:
        raise ModelError(f"model {name!r} does not follow torchvision's detection contract: {problem}")
