"""Detection transferability before training: how well a backbone's pretrained features suit a detection target,
from the two things a detector learns on top of them (what is in a box, and where the box is).

- **Classification** (LogME, H-score): the RoI-aligned body features of the ground-truth boxes
  (:func:`.roi_features.box_features`) against their classes, with one object-sized background box per object as one
  more class. The background class is kept because a detector's classifier separates objects from background as much
  as classes from each other, and because a one-class target (faces) has nothing else to score.
- **Box regression** (TLogME's idea, regression LogME): each ground-truth box is encoded against its best-matching
  anchor by the detector's own anchor generator and box coder, as the RPN (Faster R-CNN) or RetinaNet forms their
  regression targets (the Matcher keeps each box's best anchor: ``allow_low_quality_matches``); the features of the
  anchor's region are scored against the four targets (``dx, dy, dw, dh``), the mean LogME over the four.

Both read the body's stages only: the pyramid and detection layers start random in both arms, so the features say
what pretraining brings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import box_iou

from ...analyzers.transferability import logme_regression, transferability_scores
from ...errors import ModelError
from .data import DetectionData
from .models import DetectionModel
from .roi_features import BACKGROUND, box_features, stage_maps

CLASS_SCORES = ("logme", "h_score", "h_score_shrinkage")
"""The classification scores of the box features (transferability_scores' names)."""
SCORES = (*CLASS_SCORES, "logme_box")
"""Every score of a detection candidate, ranking.json's and ranking.csv's columns; LogME ranks."""
NO_ANCHORS = "the detector has no anchor generator and box coder of torchvision's kind (FCOS regresses from points, SSD has its own)"


@dataclass(frozen=True)
class AnchorMatch:
    """Per ground-truth box (crowd regions left out, in :func:`.roi_features.box_features`' order): ``image`` (n,; the
    position in the indices asked for), ``boxes`` and ``anchors`` (n, 4; x1 y1 x2 y2 in the image's pixels), the box's
    IoU with its anchor, and ``targets`` (n, 4): the box encoded against the anchor by the detector's box coder."""

    image: np.ndarray
    boxes: np.ndarray
    anchors: np.ndarray
    iou: np.ndarray
    targets: np.ndarray


def anchor_parts(model: DetectionModel) -> tuple[AnchorGenerator, BoxCoder] | None:
    """The anchor generator and box coder the detector forms its box-regression targets with (the RPN's for Faster
    R-CNN, the detector's own for RetinaNet); None for a detector that has none of torchvision's kind."""
    owner = getattr(model.detector, "rpn", model.detector)
    generator, coder = getattr(owner, "anchor_generator", None), getattr(owner, "box_coder", None)
    return (generator, coder) if isinstance(generator, AnchorGenerator) and isinstance(coder, BoxCoder) else None


def _images(data: DetectionData, chunk: list[int], device) -> tuple[list[torch.Tensor], list[dict]]:
    """The chunk's images as the detector takes them, with their non-crowd boxes."""
    images, targets = [], []
    for k in chunk:
        image = data.images[k]
        images.append(torch.from_numpy(np.array(image.load())).permute(2, 0, 1).float().div_(255).to(device))
        boxes = np.asarray(image.boxes, dtype=np.float64).reshape(-1, 4)[~np.asarray(image.iscrowd, dtype=bool)]
        targets.append({"boxes": torch.as_tensor(boxes, dtype=torch.float32, device=device)})
    return images, targets


@torch.no_grad()
def matched_anchors(model: DetectionModel, data: DetectionData, indices, *, batch_size: int = 8,
                    device: torch.device | str = "cpu") -> AnchorMatch:
    """Each ground-truth box of the images at ``indices``, its best anchor (highest IoU) among the anchors the detector
    lays on the image after its own resize, and the box encoded against that anchor (in the resized image, as the
    detector's loss sees it; the encoding does not change under the resize, so the anchor scaled back to the image's
    pixels decodes to the box)."""
    generator, coder = anchor_parts(model) or (None, None)
    if generator is None:
        raise ModelError(f"model {model.name!r}: {NO_ANCHORS}")
    model = model.to(device).eval()
    indices = [int(k) for k in indices]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("image", "boxes", "anchors", "iou", "targets")}
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        images, targets = _images(data, chunk, device)
        batch, resized = model.detector.transform(images, targets)
        anchors = generator(batch, list(model.detector.backbone(batch.tensors).values()))
        for offset, (image, target, truth, laid) in enumerate(zip(images, resized, targets, anchors)):
            boxes = target["boxes"]
            if not len(boxes):
                continue
            iou, best = box_iou(boxes, laid).max(dim=1)
            matched = laid[best]
            height, width = batch.image_sizes[offset]
            back = torch.tensor([image.shape[2] / width, image.shape[1] / height] * 2, dtype=boxes.dtype, device=boxes.device)
            for name, value in (("image", torch.full((len(boxes),), start + offset)), ("boxes", truth["boxes"]),
                                ("anchors", matched * back), ("iou", iou), ("targets", coder.encode_single(boxes, matched))):
                parts[name].append(value.cpu().numpy().astype(np.float64))
    joined = {name: np.concatenate(rows) if rows else np.zeros((0, 4) if name in ("boxes", "anchors", "targets") else 0)
              for name, rows in parts.items()}
    return AnchorMatch(**{**joined, "image": joined["image"].astype(np.int64)})


@torch.no_grad()
def chosen_stage(model: DetectionModel, data: DetectionData, indices, *, device: torch.device | str = "cpu") -> int:
    """The deepest body stage whose stride is at most half the median ground-truth box side as the detector sees it
    (after its own resize; the boxes of the first eight images at ``indices``), as an index into the stages; the first
    stage when none is that fine. A coarser stage
    blurs a typical box into a cell or two: on 128 px face scenes (faces of about 40 px) MobileNetV2's stride-32
    stage gave the ImageNet backbone a lower LogME than random weights, its stride-16 stage a much higher one."""
    model = model.to(device).eval()
    chunk = [int(k) for k in indices][:8]
    images, targets = _images(data, chunk, device)
    batch, resized = model.detector.transform(images, targets)
    strides = [round(batch.tensors.shape[-1] / m.shape[-1]) for m in stage_maps(model, batch.tensors).values()]
    boxes = torch.cat([t["boxes"] for t in resized]) if resized else torch.zeros(0, 4)
    if not len(boxes):
        return 0
    side = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt().median())
    fine = [k for k, stride in enumerate(strides) if stride <= side / 2]
    return fine[-1] if fine else 0


def anchors_as_boxes(data: DetectionData, indices, match: AnchorMatch) -> DetectionData:
    """``data`` with the images at ``indices`` holding their matched anchors (clipped to the image) as their only
    boxes, so :func:`.roi_features.box_features` reads the features of each anchor's region, in the match's order."""
    images = list(data.images)
    for position, k in enumerate(int(k) for k in indices):
        image = images[k]
        anchors = match.anchors[match.image == position]
        clipped = np.clip(anchors, 0, [image.width, image.height, image.width, image.height])
        images[k] = dataclasses.replace(image, boxes=clipped, labels=np.zeros(len(clipped), np.int64),
                                        iscrowd=np.zeros(len(clipped), dtype=bool))
    return dataclasses.replace(data, images=tuple(images))


def class_scores(model: DetectionModel, data: DetectionData, indices, *, stage: int = -1, seed: int = 0,
                 device: torch.device | str = "cpu") -> dict:
    """LogME and H-score (plain and shrunk) of the ground-truth boxes' features against their classes, one background
    box per object as one more class: :func:`xferdiag.analyzers.transferability.transferability_scores`' record,
    with ``boxes`` (the objects scored) and ``stage``."""
    boxes = box_features(model, data, indices, stage=stage, background=1, seed=seed, device=device)
    classes = np.where(boxes.labels == BACKGROUND, len(data.classes), boxes.labels)
    _, labels = np.unique(classes, return_inverse=True)
    result = transferability_scores(boxes.features, labels)
    scores = {name: result["scores"][name] for name in CLASS_SCORES}
    return {"scores": scores, "notes": result["notes"], "boxes": int((boxes.labels != BACKGROUND).sum()),
            "background_boxes": int((boxes.labels == BACKGROUND).sum()), "stage": boxes.stage}


def box_score(model: DetectionModel, data: DetectionData, indices, *, stage: int = -1,
              device: torch.device | str = "cpu") -> tuple[float | None, dict]:
    """The regression LogME of the matched anchors' features against the boxes' regression targets (mean over the
    four), and what a reader needs beside it (the anchors' median IoU with their boxes; or why there is no score)."""
    if anchor_parts(model) is None:
        return None, {"not_applicable": NO_ANCHORS}
    match = matched_anchors(model, data, indices, device=device)
    if len(match.targets) < 3:
        return None, {"not_applicable": f"{len(match.targets)} ground-truth boxes: too few to score"}
    anchored = box_features(model, anchors_as_boxes(data, indices, match), indices, stage=stage, device=device)
    return logme_regression(anchored.features, match.targets), {"anchor_iou_median": float(np.median(match.iou))}
