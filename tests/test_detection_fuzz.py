"""Property-based input validation of the detection readers: random label lines, data.yaml text, COCO
annotations and VOC objects end either in a dataset whose boxes are valid or in one DataError line;
any other exception is a bug. Derandomized, modest ``max_examples``."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.test_detection_data import _coco, _obj, _voc, _yolo
from xferdiag.errors import DataError
from xferdiag.tasks.detection.data import load_detection
from xferdiag.tasks.detection.data.yolo import parse_data_yaml

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TOKENS = st.sampled_from(["0", "1", "2", "-1", "0.5", "0.25", "1.0", "1.5", "0", "nan", "inf", "1e-9", "40", "x", "", "0.99"])
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True) | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=5), max_leaves=8)


def _loads_or_one_line(spec: str) -> None:
    try:
        data = load_detection(spec)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    for img in data.images:
        boxes = img.boxes.astype(np.float64)
        assert np.isfinite(boxes).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= img.width).all() and (boxes[:, 3] <= img.height).all()
        assert ((img.labels >= 0) & (img.labels < len(data.classes))).all()


@FUZZ
@given(lines=st.lists(st.lists(TOKENS, min_size=0, max_size=7).map(" ".join), max_size=4))
def test_random_yolo_label_lines(tmp_path_factory, lines):
    root = _yolo(tmp_path_factory.mktemp("yolo"), {"a": "\n".join(lines)})
    _loads_or_one_line(str(root))


@FUZZ
@given(text=st.lists(st.sampled_from(["names: [a, b]", "names:", "  - a", "  0: a", "  1: 'b'", "nc: 2", "nc: x", "# c",
                                      "  x", "path: .", "names: [a, 'b", "- a", ": b", ""]), max_size=6).map("\n".join))
def test_random_data_yaml(text):
    try:
        names, nc = parse_data_yaml(text, "data.yaml")
    except DataError as exc:
        assert str(exc).startswith("data.yaml")
        return
    assert all(isinstance(name, str) for name in names) and (nc is None or nc >= 0)


@FUZZ
@given(annotations=st.lists(st.fixed_dictionaries({"id": JSON_VALUES, "image_id": st.sampled_from([1, 2, 3, "1", None]),
                                                   "category_id": st.sampled_from([1, 3, 2, 1.0, None]),
                                                   "bbox": st.lists(st.one_of(st.floats(-10, 80), st.sampled_from([math.nan, 0.5])),
                                                                    min_size=3, max_size=5) | JSON_VALUES}), max_size=4))
def test_random_coco_annotations(tmp_path_factory, annotations):
    root = tmp_path_factory.mktemp("coco")
    path = _coco(root, [])
    doc = json.loads(path.read_text())
    doc["annotations"] = annotations
    path.write_text(json.dumps(doc))
    _loads_or_one_line(str(root))


@FUZZ
@given(boxes=st.lists(st.tuples(*[st.sampled_from(["0", "1", "5.5", "0.3", "70", "-4", "nan", "", "x"])] * 4), max_size=3),
       difficult=st.integers(0, 1))
def test_random_voc_objects(tmp_path_factory, boxes, difficult):
    root = tmp_path_factory.mktemp("voc")
    _voc(root, "a", "".join(_obj("cat", box, difficult) for box in boxes))
    _loads_or_one_line(str(root))
