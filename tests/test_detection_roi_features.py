"""Box features (:mod:`xferdiag.tasks.detection.roi_features`): what instance-level shift and detection
transferability read. Known answers: background boxes keep their distance from every object, and a convolutional
body's RoI features of the same object are the same wherever it stands (by whole strides, away from the border)."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from xferdiag.tasks.detection.data.core import DetectionData, DetImage
from xferdiag.tasks.detection.models import build_detection_model
from xferdiag.tasks.detection.roi_features import BACKGROUND, BACKGROUND_MAX_IOU, background_boxes, box_features


def test_background_boxes_avoid_objects_take_their_sizes_and_stay_inside():
    rng = np.random.default_rng(0)
    objects = np.array([[10.0, 10.0, 50.0, 40.0], [70.0, 60.0, 90.0, 120.0]])
    found = background_boxes(objects, 128, 128, 40, rng)
    assert len(found) == 40
    assert float(box_iou(torch.from_numpy(found), torch.from_numpy(objects)).max()) <= BACKGROUND_MAX_IOU
    sizes = {tuple(np.round(b[2:] - b[:2], 6)) for b in found}
    assert sizes <= {(40.0, 30.0), (20.0, 60.0)}
    assert (found[:, :2] >= 0).all() and (found[:, 2] <= 128).all() and (found[:, 3] <= 128).all()


def test_no_room_gives_fewer_boxes_and_no_objects_none():
    rng = np.random.default_rng(0)
    whole = np.array([[0.0, 0.0, 64.0, 64.0]])
    assert len(background_boxes(whole, 64, 64, 5, rng)) == 0
    assert background_boxes(np.zeros((0, 4)), 64, 64, 5, rng).shape == (0, 4)


def _scene(patch: np.ndarray, corners: list[tuple[int, int]], size: int = 128) -> DetectionData:
    images = []
    for k, (x, y) in enumerate(corners):
        pixels = np.full((size, size, 3), 120, np.uint8)
        h, w = patch.shape[:2]
        pixels[y:y + h, x:x + w] = patch
        images.append(DetImage(k + 1, f"{k}.png", size, size, np.array([[x, y, x + w, y + h]], np.float64),
                               np.array([0]), np.array([False]), pixels=pixels))
    return DetectionData("scenes", "coco", ("thing",), tuple(images))


@pytest.mark.parametrize(("stage", "bound"), [(0, 0.001), (-1, 0.4)])
def test_same_object_moved_by_whole_strides_gives_the_same_features(stage, bound):
    """Measured: 1e-5 of the gap to another object at stride 8, 0.23 at stride 32 (whose 128 px maps are 4 cells
    wide, so padding reaches every cell); moved by 13 and 19 px instead, 1.2 at both."""
    torch.manual_seed(0)
    model = build_detection_model("fasterrcnn", 1, backbone="mobilenet_v2")
    patch = np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    moved = _scene(patch, [(32, 32), (64, 32), (32, 64)])
    other = _scene(np.random.default_rng(2).integers(0, 255, (32, 32, 3)).astype(np.uint8), [(32, 32)])
    got = box_features(model, moved, range(3), stage=stage)
    assert got.features.shape[0] == 3 and list(got.labels) == [0, 0, 0] and list(got.image) == [0, 1, 2]
    assert got.stride == (8 if stage == 0 else 32)
    different = box_features(model, other, [0], stage=stage).features[0]
    spread = np.abs(got.features - got.features[0]).max()
    assert spread < bound * np.abs(different - got.features[0]).max()


def test_background_boxes_are_labelled_and_owned_by_their_image():
    model = build_detection_model("fasterrcnn", 1, backbone="mobilenet_v2")
    data = _scene(np.zeros((24, 24, 3), np.uint8), [(10, 10), (80, 80)])
    got = box_features(model, data, [1, 0], background=2, seed=0)
    assert list(got.labels) == [0, BACKGROUND, BACKGROUND, 0, BACKGROUND, BACKGROUND]
    assert list(got.image) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(got.boxes[0], [80, 80, 104, 104])
