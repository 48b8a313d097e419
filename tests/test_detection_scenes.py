"""Semi-synthetic scenes (exact boxes, seeded, corruptions), splits by image, K shots per class, the dataset card
and box-aware augmentation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from xferdiag.errors import DataError, InputError
from xferdiag.tasks.detection.data import DetectionData, DetImage, dataset_card, make_scenes, split_images, take_shots
from xferdiag.tasks.detection.data.augment import BoxAugment
from xferdiag.tasks.detection.data.scenes import BACKGROUNDS, _crop


@pytest.fixture(scope="module")
def scenes() -> DetectionData:
    return make_scenes(60, 11, size=64, kinds=("face", "digit"))


def test_nothing_of_an_object_shows_outside_its_box_and_each_box_is_tight(scenes):
    for k, img in enumerate(scenes.images[:20]):
        rng = np.random.default_rng([11, k])
        pool = BACKGROUNDS["photos"]
        canvas, source = _crop(pool[rng.integers(len(pool))], 64, rng)
        assert source == img.source
        plain = np.round(canvas * 255).astype(np.uint8)
        changed = (img.load() != plain).any(axis=2)
        inside = np.zeros_like(changed)
        for x1, y1, x2, y2 in img.boxes.astype(int):
            inside[y1:y2, x1:x2] = True
            box = changed[y1:y2, x1:x2]
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
        assert not (changed & ~inside).any()


def test_scenes_are_seeded_and_hold_zero_to_three_objects(scenes):
    again = make_scenes(60, 11, size=64, kinds=("face", "digit"))
    for a, b in zip(scenes.images, again.images):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.boxes, b.boxes)
    counts = [len(img.boxes) for img in scenes.images]
    assert min(counts) == 0 and max(counts) == 3 and set(np.concatenate([i.labels for i in scenes.images])) == {0, 1}
    other = make_scenes(5, 12, size=64)
    assert not np.array_equal(other.images[0].pixels, scenes.images[0].pixels)
    assert scenes.classes == ("face", "digit") and "not real-world detection" in scenes.provenance


def test_background_pools_and_corruption_severity():
    textures = make_scenes(10, 2, size=64, backgrounds="textures")
    assert all(img.source.split()[0] in ("brick", "grass", "gravel") for img in textures.images)
    clean = make_scenes(8, 4, size=64)
    gaps = []
    for severity in (1, 3, 5):
        foggy = make_scenes(8, 4, size=64, corruption="fog", severity=severity)
        assert all(np.array_equal(a.boxes, b.boxes) for a, b in zip(clean.images, foggy.images))
        gaps.append(np.mean([np.abs(a.pixels.astype(float) - b.pixels).mean() for a, b in zip(clean.images, foggy.images)]))
    assert gaps[0] < gaps[1] < gaps[2]
    assert "fog of severity 5" in foggy.provenance


@pytest.mark.parametrize("kwargs", [{"kinds": ("car",)}, {"kinds": ()}, {"backgrounds": "moon"}, {"corruption": "rain"},
                                    {"severity": 6}, {"scale": (0.5, 0.2)}])
def test_bad_scene_options_are_refused(kwargs):
    with pytest.raises(InputError):
        make_scenes(2, 0, **kwargs)


def test_seeded_split_is_a_partition_stratified_by_image(scenes):
    splits = split_images(scenes, 0.2, 0.3, seed=1)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [30, 12, 18]
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(60))
    for split in splits.values():  # both classes and some negatives reach every split
        present = np.array([scenes.annotated(int(k)) for k in split])
        assert present.any(axis=0).all()
    assert all(np.array_equal(splits[s], split_images(scenes, 0.2, 0.3, seed=1)[s]) for s in splits)


def test_the_format_split_is_kept_and_a_missing_val_or_test_is_carved_from_train(scenes):
    own = {"train": np.arange(40), "val": np.zeros(0, dtype=np.int64), "test": np.arange(40, 60)}
    splits = split_images(dataclasses.replace(scenes, splits=own), 0.25, 0.2, seed=0)
    np.testing.assert_array_equal(splits["test"], own["test"])
    assert len(splits["val"]) == 12 and sorted(np.concatenate([splits["train"], splits["val"]]).tolist()) == list(range(40))
    no_test = {"train": np.arange(45), "val": np.arange(45, 60), "test": np.zeros(0, dtype=np.int64)}
    splits = split_images(dataclasses.replace(scenes, splits=no_test), 0.25, 0.2, seed=0)
    np.testing.assert_array_equal(splits["val"], no_test["val"])
    assert len(splits["test"]) == 12 and sorted(np.concatenate([splits["train"], splits["test"]]).tolist()) == list(range(45))


def test_k_shots_keep_k_images_per_class_and_negatives_at_their_rate(scenes):
    train = np.arange(60)
    selection = take_shots(scenes, train, 4, seed=3)
    present = np.array([scenes.annotated(int(k)) for k in selection.indices])
    held = present.sum(axis=0)
    assert held.tolist() == [4, 4]  # images holding both classes are avoided once one class has its 4
    assert selection.per_class == dict(zip(scenes.classes, held.tolist()))
    negatives_all = sum(not scenes.annotated(k).any() for k in range(60))
    annotated = int(present.any(axis=1).sum())
    assert selection.negatives == round(annotated * negatives_all / (60 - negatives_all)) == int((~present.any(axis=1)).sum())
    assert "without boxes (negatives)" in selection.describe()
    assert np.array_equal(take_shots(scenes, train, 4, seed=3).indices, selection.indices)
    with pytest.raises(DataError, match="^shots 99: "):
        take_shots(scenes, train, 99, seed=0)
    three = dataclasses.replace(scenes, classes=scenes.classes + ("unused",))
    assert take_shots(three, train, 4, seed=3).per_class == {**selection.per_class, "unused": 0}


def test_dataset_card_known_answer():
    def img(k, boxes, labels, crowd=None):
        boxes = np.array(boxes, np.float32).reshape(-1, 4)
        return DetImage(k, f"{k}.png", 100, 100, boxes, np.array(labels, np.int64),
                        np.zeros(len(labels), bool) if crowd is None else np.array(crowd))
    data = DetectionData("t", "scenes", ("a", "b"), (img(1, [[0, 0, 10, 10], [0, 0, 20, 40]], [0, 1]), img(2, [], []),
                                                      img(3, [[0, 0, 5, 5]], [1], [True])), clipped=2)
    card = dataset_card(data)
    assert (card.images, card.boxes, card.crowd_boxes, card.boxes_per_image_max, card.images_without_boxes) == (3, 2, 1, 2, 2)
    assert card.boxes_per_image_mean == pytest.approx(2 / 3) and card.class_counts == {"a": 1, "b": 1}
    assert card.relative_size_quantiles["q50"] == pytest.approx((0.1 + np.sqrt(800) / 100) / 2)
    assert card.aspect_ratio_quantiles["q50"] == pytest.approx(0.75) and card.clipped_boxes == 2
    assert json.loads(json.dumps(card.to_dict())) == card.to_dict()
    assert dataset_card(data, np.array([1])).relative_size_quantiles == {}


# --- box-aware augmentation ---------------------------------------------------------------------------------


def _white_boxes(boxes: list, size=(48, 64)) -> torch.Tensor:
    image = torch.zeros(3, *size)
    for x1, y1, x2, y2 in boxes:
        image[:, y1:y2, x1:x2] = 1.0
    return image


def test_augmented_boxes_follow_the_pixels():
    augment = BoxAugment(flip=0.5, scale=(0.8, 1.2))
    flips = 0
    for index in range(12):
        image, boxes, labels, crowd = augment(_white_boxes([(6, 8, 20, 30)]), [[6, 8, 20, 30]], [1], [False],
                                              seed=3, epoch=0, index=index)
        bright = (image[0] > 0.5).nonzero()
        found = [bright[:, 1].min(), bright[:, 0].min(), bright[:, 1].max() + 1, bright[:, 0].max() + 1]
        np.testing.assert_allclose(boxes[0].numpy(), np.array(found, dtype=np.float32), atol=1.0)
        assert labels.tolist() == [1] and crowd.tolist() == [False]
        flips += bool(boxes[0, 0] > 32)
    assert 0 < flips < 12


def test_augmentation_depends_only_on_seed_epoch_and_index_and_leaves_the_global_rng_alone():
    image, box = _white_boxes([(10, 10, 30, 40)]), [[10, 10, 30, 40]]
    first, second = BoxAugment(), BoxAugment()
    keys = [(0, k) for k in range(6)] + [(1, 0)]
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    outputs = {key: first(image, box, [0], [False], seed=5, epoch=key[0], index=key[1]) for key in keys}
    assert torch.equal(torch.rand(3), expected)
    for key in reversed(keys):  # the other arm, in another order
        again = second(image, box, [0], [False], seed=5, epoch=key[0], index=key[1])
        assert all(torch.equal(a, b) for a, b in zip(outputs[key], again))
    assert not torch.equal(outputs[(0, 0)][1], outputs[(1, 0)][1]) or not torch.equal(outputs[(0, 1)][1], outputs[(0, 0)][1])


def test_a_box_pushed_out_of_the_image_is_dropped_with_its_label_and_crowd_flag():
    augment = BoxAugment(flip=0.0, scale=(1.5, 1.5))
    image, boxes, labels, crowd = augment(_white_boxes([(0, 0, 3, 3), (20, 15, 40, 30)]), [[0, 0, 3, 3], [20, 15, 40, 30]],
                                          [0, 1], [True, False], seed=0, epoch=0, index=0)
    assert labels.tolist() == [1] and crowd.tolist() == [False]
    np.testing.assert_allclose(boxes.numpy(), [[14, 10.5, 44, 33]], atol=1e-4)
