"""A detector fine-tuned the way a user's own script does it, with torchvision alone (no xferdiag): read a COCO
split with json and PIL, put a "pretrained" MobileNetV3 body under torchvision's Faster R-CNN, train a few
steps, save it as torchvision's references do. The audit tests read what this writes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.ops.misc import FrozenBatchNorm2d

SIZE = 96
"""The scenes' side, and the shorter side the detector resizes to (``xferdiag audit --image-size 96``)."""
SETTINGS = dict(min_size=SIZE, max_size=SIZE * 3 // 2, rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
                rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128,
                box_batch_size_per_image=64)
"""Small sampling settings, the kind a user on a CPU passes to torchvision's builder (xferdiag's CPU scale)."""


def build(num_classes: int) -> torch.nn.Module:
    """The user's detector: torchvision's builder, no weights downloaded, ``num_classes`` with the background."""
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes, **SETTINGS)


def freeze_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """What torchvision's builders do to the backbone body when given pretrained weights (``weights_backbone``,
    which would download them): every BatchNorm2d becomes a FrozenBatchNorm2d with its statistics."""
    body = model.backbone.body
    for name, bn in [(n, m) for n, m in body.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]:
        frozen = FrozenBatchNorm2d(bn.num_features)
        for key in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, key).copy_(getattr(bn, key).detach())
        parent, _, child = name.rpartition(".")
        setattr(body.get_submodule(parent) if parent else body, child, frozen)
    return model


def read_split(folder: Path, split: str) -> list[tuple[torch.Tensor, dict]]:
    """(image in [0, 1], target with COCO category ids as labels) per image of ``instances_<split>.json``."""
    doc = json.loads((folder / "annotations" / f"instances_{split}.json").read_text())
    out = []
    for image in sorted(doc["images"], key=lambda i: i["id"]):
        pixels = np.asarray(Image.open(folder / "images" / image["file_name"]).convert("RGB"), dtype=np.float32) / 255
        boxes = [[x, y, x + w, y + h] for a in doc["annotations"] if a["image_id"] == image["id"] for x, y, w, h in [a["bbox"]]]
        labels = [a["category_id"] for a in doc["annotations"] if a["image_id"] == image["id"]]
        out.append((torch.from_numpy(pixels).permute(2, 0, 1).contiguous(),
                    {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.int64),
                     "image_id": image["id"]}))
    return out


def fine_tune(folder: Path, pretrained: Path, steps: int, seed: int = 0) -> torch.nn.Module:
    """The backbone body from ``pretrained`` (a MobileNetV3-Large classifier's state_dict), then ``steps`` SGD steps
    (BatchNorm trainable: the builder without ``weights_backbone`` has it so)."""
    torch.manual_seed(seed)
    classes = len(json.loads((folder / "annotations" / "instances_train.json").read_text())["categories"])
    model = build(classes + 1)
    body = {k.removeprefix("features."): v for k, v in torch.load(pretrained, weights_only=True).items() if k.startswith("features.")}
    model.backbone.body.load_state_dict(body)
    data = read_split(folder, "train")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.02, momentum=0.9, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        batch = [data[int(k)] for k in torch.randperm(len(data))[:4]]
        losses = model([image for image, _ in batch], [{k: t[k] for k in ("boxes", "labels")} for _, t in batch])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    return model.eval()


def save_references(model: torch.nn.Module, optimizer_state: dict, path: Path, epoch: int) -> None:
    """What torchvision's references/detection/train.py saves: the model beside the optimiser, epoch and args."""
    torch.save({"model": model.state_dict(), "optimizer": optimizer_state, "lr_scheduler": {"last_epoch": epoch},
                "epoch": epoch, "args": argparse.Namespace(model="fasterrcnn_mobilenet_v3_large_320_fpn", lr=0.02)}, path)


def save_ddp(model: torch.nn.Module, path: Path) -> None:
    """A DistributedDataParallel model's state_dict: every key under ``module.``."""
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)


@torch.inference_mode()
def predict(model: torch.nn.Module, folder: Path, split: str) -> list[dict]:
    """The model's own eval-mode detections on a split, in COCO's results format."""
    results = []
    for image, target in read_split(folder, split):
        [out] = model([image])
        for box, score, label in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
            results.append({"image_id": target["image_id"], "category_id": label, "score": score,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    return results
