"""EigenCAM per box (Muhammad & Yeasin 2020, as pytorch-grad-cam applies it to detectors): the first principal
component of the backbone body's last stage, one forward per image and arm, with no gradient and no class, so it
works on any detector; each box's map is the image's map renormalised to [0, 1] inside the box and 0 outside
(pytorch-grad-cam's ``renormalize_cam_in_bounding_boxes``), which shows where inside the box the features peak."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ModelError
from .models import DetectionModel


def _last_stage(model: DetectionModel, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """(C, h, w) activations of the body's last stage for the image as the detector resizes it, the resized
    size and the padded size the activations cover."""
    device = next(model.parameters()).device
    detector = model.detector
    pyramid = detector.backbone
    with torch.inference_mode():
        batch, _ = detector.transform([image.to(device)])
        # a pyramid on a classifier's body taps its stages (the body itself pools); torchvision's bodies return them
        out = pyramid.stage_features(batch.tensors) if hasattr(pyramid, "stage_features") else model.backbone(batch.tensors)
    last = list(out.values())[-1] if isinstance(out, dict) else out
    if last.ndim != 4:
        raise ModelError(f"model {model.name!r}: EigenCAM needs the backbone's last stage as feature maps; its body "
                         f"returns shape {tuple(last.shape)}")
    return last[0].float().cpu(), tuple(batch.image_sizes[0]), tuple(batch.tensors.shape[-2:])


def eigencam(model: DetectionModel, image: torch.Tensor) -> np.ndarray:
    """(H, W) map in [0, 1] of a (C, H, W) image: the activations projected on their first principal direction
    (signed so that it agrees with the mean activation), negative parts cut, upsampled to the image."""
    acts, (rh, rw), (ph, pw) = _last_stage(model, image)
    c, h, w = acts.shape
    rows = acts.reshape(c, -1).T.double()
    rows = rows - rows.mean(0)
    _, _, vh = torch.linalg.svd(rows, full_matrices=False)
    projection = rows @ vh[0]
    if torch.dot(projection, acts.reshape(c, -1).mean(0).double() - acts.mean().double()) < 0:
        projection = -projection
    cam = projection.clamp(min=0).reshape(h, w)
    cam = cam[: max(1, round(h * rh / ph)), : max(1, round(w * rw / pw))]  # the image, not the padding
    up = F.interpolate(cam[None, None].float(), size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    top = up.max()
    return (up / top if top > 0 else up).numpy()


def in_boxes(cam: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T, H, W): ``cam`` renormalised to [0, 1] inside each box (x1 y1 x2 y2 pixels), 0 outside."""
    height, width = cam.shape
    out = np.zeros((len(boxes), height, width), dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        r0, c0 = int(np.clip(np.floor(y1), 0, height - 1)), int(np.clip(np.floor(x1), 0, width - 1))
        r1, c1 = int(np.clip(np.ceil(y2), r0 + 1, height)), int(np.clip(np.ceil(x2), c0 + 1, width))
        part = cam[r0:r1, c0:c1]
        span = part.max() - part.min()
        out[k, r0:r1, c0:c1] = (part - part.min()) / span if span > 0 else 0.0
    return out
