"""Instance-level shift of detection runs and the issue's known answers: changing only the backgrounds moves the image
level far more than the boxes' own features; a corruption of rising severity moves the image level monotonically.
Also the domain classifiers' folds split by group (an image's boxes), which keeps their accuracy honest."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from xferdiag.analyzers.shift import classifier_two_sample_test, frechet_distance, proxy_a_distance, two_sample_shift
from xferdiag.commands.detdemo import mobilenet_v2_imagenet_weights
from xferdiag.errors import InputError
from xferdiag.report.interpret import level_sentences
from xferdiag.tasks.detection.checkpoints import load_pretrained
from xferdiag.tasks.detection.data import make_scenes
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.roi_features import BACKGROUND, BoxFeatures, inner_part
from xferdiag.tasks.detection.settings import settings_for
from xferdiag.tasks.detection.shift import INNER, MIN_BOXES, image_shift, instance_features, instance_shift, pooled_features


def _clustered(n_groups: int, per_group: int, seed: int, dim: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Points in tight clusters around random group centres: one distribution, but each group is easy to recognise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (n_groups, dim))
    groups = np.repeat(np.arange(n_groups), per_group)
    return centres[groups] + rng.normal(0.0, 0.1, (len(groups), dim)), groups


def test_folds_by_group_undo_the_optimism_of_memorised_groups():
    """Source and target draw their groups from the same distribution: split by point, a classifier that memorises each
    group's centre looks like it tells the domains apart; split by group it is at chance."""
    x, gx = _clustered(30, 6, seed=0)
    y, gy = _clustered(30, 6, seed=1)
    by_point = classifier_two_sample_test(x, y, seed=0)
    by_group = classifier_two_sample_test(x, y, seed=0, groups=(gx, gy + 100))
    assert by_point.accuracy >= 0.9 and by_point.p_value < 1e-6
    assert abs(by_group.accuracy - 0.5) <= 0.15 and by_group.p_value > 0.05
    sides = by_group.n_test // 2
    assert by_group.n_test == 2 * sides and 120 <= by_group.n_test <= 180  # one of two group folds of 360 points, balanced
    assert proxy_a_distance(x, y, seed=0).value >= 1.6
    assert proxy_a_distance(x, y, seed=0, groups=(gx, gy + 100)).value <= 0.6
    battery = two_sample_shift(x, y, seed=0, n_permutations=20, groups=(gx, gy + 100))
    assert battery["c2st"]["accuracy"] == by_group.accuracy


def test_groups_are_checked():
    x, gx = _clustered(3, 4, seed=0)
    with pytest.raises(InputError, match="groups: have 11 and 12 ids"):
        classifier_two_sample_test(x, x, groups=(gx[:-1], gx))
    with pytest.raises(InputError, match="at least 5 groups"):
        proxy_a_distance(x, x, groups=(gx, gx))
    with pytest.raises(InputError, match="two arrays"):
        proxy_a_distance(x, x, groups=(gx,))


def test_inner_part_shrinks_a_box_about_its_centre():
    assert inner_part(np.array([[10.0, 20.0, 50.0, 40.0]]), 0.5).tolist() == [[20.0, 25.0, 40.0, 35.0]]


def _features(groups: list[int], labels: list[int], rng, shift: float = 0.0) -> BoxFeatures:
    n = len(groups)
    return BoxFeatures(rng.normal(shift, 1.0, (n, 4)), np.asarray(labels), np.asarray(groups), np.zeros((n, 4)), "0", 8)


def test_instance_shift_compares_classes_with_enough_boxes_and_the_background():
    """Six images of five boxes: class 0 has 15 a side, class 1 only 3, the background 12: class 0 and the background
    are compared, class 1 not; a target moved by two standard deviations is told apart."""
    rng = np.random.default_rng(0)
    images = [k // 5 for k in range(30)]
    labels = [lab for image in range(6) for lab in (0, 0, image % 2, BACKGROUND, BACKGROUND)]
    x, y = _features(images, labels, rng), _features(images, labels, rng, shift=2.0)
    result = instance_shift(x, y, ("a", "b"), n_permutations=50)
    counts = {c: int((x.labels == c).sum()) for c in (0, 1, BACKGROUND)}
    assert counts == {0: 15, 1: 3, BACKGROUND: 12} and counts[0] >= MIN_BOXES > counts[1]
    assert result["objects"]["n_source"] == counts[0] + counts[1] and result["objects"]["n_source_images"] == 6
    assert [row["class"] for row in result["per_class"]] == ["a"] and result["per_class"][0]["n_target"] == counts[0]
    assert result["background"]["n_source"] == counts[BACKGROUND]
    assert result["objects"]["c2st"]["accuracy"] >= 0.9 and result["inner"] == INNER
    few = instance_shift(x.of(x.image < 2), y.of(y.image < 2), ("a", "b"))
    assert "objects" not in few and few["skipped"].startswith("6 and 6 object boxes")


@functools.cache
def pretrained(size: int):
    """A detector whose body has torchvision's ImageNet MobileNetV2 weights, resizing images to ``size`` px."""
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", 1, backbone="mobilenet_v2", norm="frozen", settings=settings_for("cpu", size))
    load_pretrained(model, mobilenet_v2_imagenet_weights())
    return model


@pytest.mark.slow
def test_changing_only_the_backgrounds_moves_the_image_level_far_more_than_the_instance_level(one_thread):
    """The issue's known answer. The same faces at the same places, on photos or on grey textures: the image-level
    domain classifier tells them apart, the one on the boxes' own features (stride 8, central part) far less; the
    background boxes, which hold nothing but background, move as the images do. 192 px scenes: at 128 px a stride-8
    cell's receptive field (about 60 px) is larger than most faces and the gap shrinks (0.12-0.23 over scene seeds
    instead of 0.28-0.34; docs/detection.md)."""
    n, model = 60, pretrained(192)
    photos, textures = (make_scenes(n, seed=0, size=192, backgrounds=b, background_seed=1, empty_fraction=0.0)
                        for b in ("photos", "textures"))
    assert all(np.array_equal(a.boxes, b.boxes) and a.source != b.source for a, b in zip(photos.images, textures.images))
    image = image_shift(pooled_features(model, photos, range(n)), pooled_features(model, textures, range(n)),
                        n_permutations=100, paired=True)
    boxes = instance_shift(instance_features(model, photos, range(n)), instance_features(model, textures, range(n)),
                           photos.classes, n_permutations=100, paired=True)
    assert boxes["stride"] == 8 and boxes["objects"]["n_source"] == boxes["objects"]["n_target"] >= 100
    assert image["c2st"]["accuracy"] >= boxes["objects"]["c2st"]["accuracy"] + 0.15
    assert image["proxy_a_distance"]["ci95"][0] > boxes["objects"]["proxy_a_distance"]["ci95"][1]
    assert boxes["background"]["c2st"]["accuracy"] >= boxes["objects"]["c2st"]["accuracy"] + 0.15


@pytest.mark.slow
@pytest.mark.parametrize("corruption", ["fog", "noise", "blur"])
def test_a_corruption_of_rising_severity_moves_the_image_level_monotonically(one_thread, corruption):
    """The same target scenes at severities 0, 1, 3, 5 against other clean scenes: the Fréchet distance of the pooled
    features rises at every step. Fréchet, because it is deterministic (no classifier split, no permutations) and,
    with the same target scenes at every severity, the sampling noise is common to all of them."""
    n, model = 30, pretrained(128)
    source = pooled_features(model, make_scenes(n, seed=0), range(n))
    distances = [frechet_distance(source, pooled_features(model, make_scenes(n, seed=1, corruption=corruption, severity=s),
                                                          range(n))).value
                 for s in (0, 1, 3, 5)]
    assert all(later > earlier for earlier, later in zip(distances, distances[1:])), distances


def _level(pad: float, ci: tuple[float, float], accuracy: float) -> dict:
    return {"proxy_a_distance": {"value": pad, "ci95": list(ci)}, "c2st": {"accuracy": accuracy}}


@pytest.mark.parametrize(("image", "objects", "says"), [
    ((1.9, (1.8, 2.0), 0.99), (0.9, (0.7, 1.1), 0.7), "The images moved more than the objects in them"),
    ((0.9, (0.7, 1.1), 0.7), (1.9, (1.8, 2.0), 0.99), "The objects moved more than the images as a whole"),
    ((1.2, (1.0, 1.4), 0.8), (1.3, (1.1, 1.5), 0.82), "Both levels moved about as much"),
    ((0.2, (0.0, 0.5), 0.55), (0.4, (0.1, 0.7), 0.6), "Neither level moved much"),
])
def test_the_report_says_which_level_moved_by_the_intervals_of_the_proxy_a_distance(image, objects, says):
    result = {**_level(*image), "instance": {"objects": _level(*objects), "per_class": [{"class": "face", **_level(*objects)}]}}
    numbers, verdict = level_sentences(result)
    assert verdict.startswith(says)
    assert numbers.startswith(f"Proxy A-distance by level: image level {image[0]:.2f} (95% CI {image[1][0]:.2f} to {image[1][1]:.2f}; "
                              f"domain classifier {100 * image[2]:.0f}% accurate); object boxes {objects[0]:.2f}")
    assert "; class face " in numbers and "background" not in numbers
    assert level_sentences({**result, "instance": {"skipped": "3 and 4 object boxes"}}) == ["No instance-level test: 3 and 4 object boxes."]
    assert level_sentences({"proxy_a_distance": result["proxy_a_distance"]}) == []  # a classification run
