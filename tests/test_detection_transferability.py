"""Detection transferability before training (issue #29 item 3): the box-classification scores, the regression LogME of
the box-regression targets (TLogME's idea) and ``xferdiag rank`` over detection backbones.

Known answers: regression LogME is the maximised evidence of the standardised targets (a direct optimisation gives the
same number) and prefers features linear in the targets to noise; the detector's box coder decodes each encoded target
back to its ground-truth box; features that decide the class score above shuffled labels; on face scenes an ImageNet
backbone ranks above the same backbone from random weights.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.test_transferability import log_evidence_maximised
from xferdiag.analyzers import logme_regression, transferability_scores
from xferdiag.cli import main
from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
from xferdiag.commands.rank import rank_models
from xferdiag.errors import ConfigError, InputError
from xferdiag.tasks.detection.checkpoints import load_pretrained
from xferdiag.tasks.detection.data import make_scenes, write_coco
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.transferability import (
    NO_ANCHORS,
    SCORES,
    anchor_parts,
    box_score,
    chosen_stage,
    class_scores,
    matched_anchors,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- regression LogME


@pytest.mark.parametrize("n, d", [(80, 6), (20, 30)], ids=["eigh-of-gram", "svd-of-features"])
def test_regression_logme_is_the_maximised_evidence_of_each_standardised_target(n, d):
    rng = np.random.default_rng(0)
    f = rng.normal(size=(n, d))
    targets = f[:, :2] @ rng.normal(size=(2, 3)) + 5.0 + rng.normal(size=(n, 3))  # offset and scale: standardised away
    standard = (targets - targets.mean(axis=0)) / targets.std(axis=0)
    expected = np.mean([log_evidence_maximised(f, standard[:, k]) for k in range(3)]) / n
    assert logme_regression(f, targets) == pytest.approx(expected, rel=1e-7)
    assert logme_regression(f, 7.0 * targets - 3.0) == pytest.approx(logme_regression(f, targets), rel=1e-9)


def test_regression_logme_of_features_linear_in_the_targets_beats_noise_features():
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(120, 4))
    linear = targets @ rng.normal(size=(4, 16)) + 0.1 * rng.normal(size=(120, 16))
    noise = rng.normal(size=(120, 16))
    assert logme_regression(linear, targets) > logme_regression(noise, targets) + 1.0
    # noise features explain nothing: close to the noise-only evidence of a unit-variance target, -1/2 log 2πe
    assert logme_regression(noise, targets) == pytest.approx(-0.5 * np.log(2 * np.pi * np.e), abs=0.05)


def test_a_constant_target_or_mismatched_rows_are_refused_by_name():
    f = np.random.default_rng(2).normal(size=(10, 3))
    with pytest.raises(InputError, match="^targets: column 1 is constant"):
        logme_regression(f, np.c_[np.arange(10.0), np.full(10, 3.0)])
    with pytest.raises(InputError, match="^targets"):
        logme_regression(f, np.arange(9.0))


def test_features_that_decide_the_class_score_above_shuffled_labels():
    rng = np.random.default_rng(3)
    labels = np.arange(90) % 3  # objects of two classes and background, as class_scores labels them
    features = np.c_[np.eye(3)[labels], rng.normal(size=(90, 5))]
    shuffled = rng.permutation(labels)
    true, wrong = transferability_scores(features, labels)["scores"], transferability_scores(features, shuffled)["scores"]
    for score in ("logme", "h_score", "h_score_shrinkage"):
        assert true[score] > wrong[score] + 0.5, score


# ----------------------------------------------------------------------------- on a detector


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(12, seed=5, kinds=("face", "digit"))


@pytest.fixture(scope="module")
def detector():
    """Faster R-CNN on torchvision's ImageNet MobileNetV2 (an installed real asset)."""
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", 2, backbone="mobilenet_v2")
    assert load_pretrained(model, mobilenet_v2_imagenet_weights())["level"] == "backbone"
    return model


def test_the_box_coders_encoding_decodes_back_to_the_ground_truth_box(scenes, detector):
    match = matched_anchors(detector, scenes, range(12))
    boxes = np.concatenate([scenes.images[k].boxes[~scenes.images[k].iscrowd] for k in range(12)])
    assert len(match.targets) == len(boxes) > 10 and np.allclose(match.boxes, boxes)
    _, coder = anchor_parts(detector)
    decoded = coder.decode_single(torch.tensor(match.targets), torch.tensor(match.anchors)).numpy()
    assert np.abs(decoded - boxes).max() < 1e-3  # in the image's pixels, after the anchors were scaled back
    assert match.iou.min() > 0.3 and np.all(np.abs(match.targets[:, :2]) < 0.5)  # the best anchor sits on the box


def test_class_scores_read_the_true_classes_above_shuffled_ones(scenes, detector):
    stage = chosen_stage(detector, scenes, range(12))
    true = class_scores(detector, scenes, range(12), stage=stage)
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.concatenate([img.labels for img in scenes.images]))
    cuts = np.cumsum([len(img.labels) for img in scenes.images])[:-1]
    shuffled = dataclasses.replace(scenes, images=tuple(dataclasses.replace(img, labels=part) for img, part in
                                                       zip(scenes.images, np.split(labels, cuts))))
    wrong = class_scores(detector, shuffled, range(12), stage=stage)
    assert true["boxes"] == wrong["boxes"] == len(labels) and true["background_boxes"] > 0
    assert true["scores"]["logme"] > wrong["scores"]["logme"]
    assert true["scores"]["h_score_shrinkage"] > wrong["scores"]["h_score_shrinkage"]


def test_a_detector_without_anchors_has_no_box_score_and_says_why(scenes):
    torch.manual_seed(0)
    fcos = build_detection_model("fcos", 2, backbone="mobilenet_v2")
    assert anchor_parts(fcos) is None
    assert box_score(fcos, scenes, range(4)) == (None, {"not_applicable": NO_ANCHORS})


# ----------------------------------------------------------------------------- rank


@pytest.mark.slow
def test_rank_puts_an_imagenet_backbone_above_the_same_backbone_at_random_init(tmp_path):
    write_coco(make_scenes(40, seed=0), tmp_path / "faces")
    imagenet = f"mobilenet_v2={mobilenet_v2_imagenet_weights()}"
    rows = rank_models(str(tmp_path / "faces"), ["mobilenet_v2", imagenet], tmp_path / "rank", model="fasterrcnn",
                       include_random=True, quiet=True)
    assert [r["candidate"] for r in rows] == [imagenet, "mobilenet_v2"] and [r["init"] for r in rows] == ["pretrained",
                                                                                                      "random reference"]
    for score in ("logme", "h_score_shrinkage", "logme_box"):
        assert rows[0][score] > rows[1][score], score
    saved = json.loads((tmp_path / "rank" / "ranking.json").read_text())
    assert saved["scores"] == list(SCORES) and saved["detector"] == "fasterrcnn" and saved["n"] == 24
    with open(tmp_path / "rank" / "ranking.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["rank", "candidate", "init", *SCORES, "seconds"]
    assert float(table[0]["logme_box"]) == pytest.approx(rows[0]["logme_box"])


def test_rank_on_detection_data_needs_a_detector_family_and_weights_from_a_file(tmp_path, capsys):
    write_coco(make_scenes(6, seed=0, size=64), tmp_path / "faces")
    with pytest.raises(ConfigError, match="model: rank on detection data puts each candidate backbone under a detector; name its family"):
        rank_models(str(tmp_path / "faces"), ["mobilenet_v2"], tmp_path / "a")
    code = main(["rank", "--data", str(tmp_path / "faces"), "--model", "fasterrcnn", "--candidates", "mobilenet_v2:IMAGENET1K_V1",
                 "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "ARCH=CHECKPOINT" in err[0]
    write_coco(make_scenes(8, seed=0, size=64, max_objects=1, empty_fraction=0.0), tmp_path / "single")
    with pytest.raises(ConfigError, match="1 box in 1 training image;"):  # one shot of one object
        rank_models(str(tmp_path / "single"), ["mobilenet_v2"], tmp_path / "c", model="fasterrcnn", shots=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_then_finetune_trains_each_candidate_as_the_backbone_under_the_family_with_its_weights():
    from xferdiag.commands.rank_finetune import candidate_config
    from xferdiag.config import RunConfig
    from xferdiag.models import ModelSource

    config = RunConfig(data="coco:faces", model="fasterrcnn", epochs=2)
    run = candidate_config(config, "mobilenet_v2=w.pt")
    assert (run.model, run.backbone, run.pretrained_checkpoint, run.baseline, run.epochs) == ("fasterrcnn", "mobilenet_v2",
                                                                                            "w.pt", "scratch", 2)
    shipped = candidate_config(config, "builtin:efficientnet-lite0")
    assert shipped.pretrained_checkpoint == ModelSource.parse("builtin:efficientnet-lite0").shipped_checkpoint()
    classifier = candidate_config(RunConfig(data="digits:rotated"), "resnet18=w.pt")  # a classification candidate is the model
    assert (classifier.model, classifier.backbone, classifier.pretrained_checkpoint) == ("resnet18", None, "w.pt")
