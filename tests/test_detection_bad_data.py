"""Every bad annotation ends in one DataError line (the CLI's exit 2) that names the file and the line or id,
before anything is written."""

from __future__ import annotations

import re

import pytest

from tests.test_detection_data import _ann, _coco, _obj, _png, _voc, _yolo
from xferdiag.errors import DataError
from xferdiag.tasks.detection.data import load_detection


def _fails(spec: str, *parts: str) -> str:
    """Loading ``spec`` raises one line that contains every part, in order."""
    with pytest.raises(DataError) as info:
        load_detection(spec)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(".*".join(re.escape(p) for p in parts), message), message
    return message


# --- COCO ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bbox", [[10, 10, 0, 5], [10, 10, 5, -3]])
def test_coco_zero_or_negative_area(tmp_path, bbox):
    path = _coco(tmp_path, [_ann(1, [1, 1, 4, 4]), _ann(7, bbox)])
    _fails(str(tmp_path), str(path), "annotation id 7", "zero or negative area")


def test_coco_box_mostly_outside_the_image(tmp_path):
    path = _coco(tmp_path, [_ann(4, [50, 10, 30, 10])])
    _fails(str(tmp_path), str(path), "annotation id 4", "mostly outside the 64x48 image", "47% inside")


def test_coco_normalised_boxes_where_pixels_are_expected(tmp_path):
    path = _coco(tmp_path, [_ann(3, [0.1, 0.2, 0.3, 0.4])])
    _fails(str(tmp_path), str(path), "annotation id 3", "within [0, 1] on a 64x48 image", "normalised")


def test_coco_category_outside_the_classes(tmp_path):
    path = _coco(tmp_path, [_ann(5, [1, 1, 4, 4], category_id=2)])
    _fails(str(tmp_path), str(path), "annotation id 5", "category_id 2 is outside the classes", "[1, 3]")


def test_coco_missing_image(tmp_path):
    path = _coco(tmp_path, [], images=[{"id": 1, "file_name": "a.png", "width": 64, "height": 48}])
    (tmp_path / "images" / "a.png").unlink()
    _fails(str(tmp_path), str(path), "image id 1", "'a.png' is missing")


def test_coco_unreadable_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    _coco(tmp_path, [], images=[{"id": 1, "file_name": "a.png", "width": 64, "height": 48}])
    _fails(str(tmp_path), str(tmp_path / "images" / "a.png"), "not a readable image")


def test_coco_image_size_differs_from_the_annotation(tmp_path):
    _png(tmp_path / "images" / "a.png", 30, 20)
    path = _coco(tmp_path, [], images=[{"id": 1, "file_name": "a.png", "width": 64, "height": 48}])
    _fails(str(tmp_path), str(path), "image id 1", "64x48", "is 30x20")


def test_coco_duplicate_image_id(tmp_path):
    path = _coco(tmp_path, [], images=[{"id": 9, "file_name": "a.png", "width": 64, "height": 48},
                                       {"id": 9, "file_name": "b.png", "width": 64, "height": 48}])
    _fails(str(tmp_path), str(path), "image id 9", "duplicate image id")


def test_coco_duplicate_image_id_across_split_files(tmp_path):
    for split in ("train", "val"):
        _coco(tmp_path, [], images=[{"id": 2, "file_name": f"{split}.png", "width": 64, "height": 48}])
        (tmp_path / "instances.json").rename(tmp_path / f"instances_{split}.json")
    _fails(f"coco:{tmp_path}", "instances_val.json", "image id 2", "duplicate image id", "instances_train.json")


def test_coco_malformed_json_names_the_line(tmp_path):
    (tmp_path / "instances.json").write_text('{"images": [],\n "annotations": [\n  {"id": 1,, }\n]}')
    _fails(f"coco:{tmp_path / 'instances.json'}", "instances.json", "malformed JSON at line 3")


def test_coco_annotation_of_an_unknown_image(tmp_path):
    path = _coco(tmp_path, [_ann(8, [1, 1, 4, 4], image_id=42)])
    _fails(str(tmp_path), str(path), "annotation id 8 (image id 42)", "not among the file's images")


# --- VOC ----------------------------------------------------------------------------------------------------


def test_voc_malformed_xml_names_the_line(tmp_path):
    path = _voc(tmp_path, "a", "")
    path.write_text("<annotation>\n<filename>a.png</filename>\n<object></annotation>")
    _fails(str(tmp_path), str(path), "malformed XML", "line 3")


def test_voc_zero_area_box(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (5, 5, 20, 20)) + _obj("dog", (10, 10, 9, 30)))
    _fails(str(tmp_path), str(path), "object 2 ('dog')", "zero or negative area")


def test_voc_normalised_box(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (0.1, 0.1, 0.5, 0.6)))
    _fails(str(tmp_path), str(path), "object 1 ('cat')", "normalised")


def test_voc_box_mostly_outside(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (40, 30, 100, 90)))
    _fails(str(tmp_path), str(path), "object 1 ('cat')", "mostly outside")


def test_voc_class_outside_the_class_list(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (1, 1, 9, 9)) + _obj("emu", (1, 1, 9, 9)))
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    _fails(str(tmp_path), str(path), "object 2 ('emu')", "outside the classes")


def test_voc_missing_image(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (1, 1, 9, 9)))
    (tmp_path / "JPEGImages" / "a.png").unlink()
    _fails(str(tmp_path), str(path), "a.png is missing")


def test_voc_duplicate_image_id_in_the_split_lists(tmp_path):
    _voc(tmp_path, "a", _obj("cat", (1, 1, 9, 9)))
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\n")
    (main / "test.txt").write_text("\na\n")
    _fails(str(tmp_path), str(main / "test.txt") + ":2", "duplicate image id 'a'")


def test_voc_split_list_names_an_image_without_annotation(tmp_path):
    _voc(tmp_path, "a", _obj("cat", (1, 1, 9, 9)))
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    _fails(str(tmp_path), "train.txt:2", "'b' has no Annotations/b.xml")


def test_voc_non_numeric_coordinate(tmp_path):
    path = _voc(tmp_path, "a", _obj("cat", (1, "one", 9, 9)))
    _fails(str(tmp_path), str(path), "object 1 ('cat')", "<ymin> is 'one', not a number")


# --- YOLO ---------------------------------------------------------------------------------------------------


def test_yolo_pixel_values(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n1 32 16 10 8\n"})
    _fails(str(tmp_path), str(tmp_path / "labels" / "a.txt") + ":2", "not normalised to [0, 1]", "pixel coordinates")


def test_yolo_class_id_outside_the_classes(tmp_path):
    _yolo(tmp_path, {"a": "2 0.5 0.5 0.1 0.1\n"})
    _fails(str(tmp_path), str(tmp_path / "labels" / "a.txt") + ":1", "class id 2 is outside the classes (0..1")


@pytest.mark.parametrize("line, why", [("0 0.5 0.5 0.1", "expected 5 values"), ("0 0.5 0.5 0.1 0.2 0.3 0.4", "polygons"),
                                       ("cat 0.5 0.5 0.1 0.1", "not a whole number"), ("0 0.5 x 0.1 0.1", "not four numbers")])
def test_yolo_malformed_line(tmp_path, line, why):
    _yolo(tmp_path, {"a": f"\n{line}\n"})
    _fails(str(tmp_path), str(tmp_path / "labels" / "a.txt") + ":2", why)


def test_yolo_zero_area_box(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.0 0.2\n"})
    _fails(str(tmp_path), "a.txt:1", "zero or negative area")


def test_yolo_box_mostly_outside(tmp_path):
    _yolo(tmp_path, {"a": "0 1.0 1.0 0.5 0.5\n"})
    _fails(str(tmp_path), "a.txt:1", "mostly outside", "25% inside")


def test_yolo_label_without_its_image(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n"})
    (tmp_path / "labels" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    _fails(str(tmp_path), str(tmp_path / "labels" / "b.txt"), "its image is missing")


def test_yolo_unreadable_image(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n"})
    (tmp_path / "images" / "a.png").write_bytes(b"garbage")
    _fails(str(tmp_path), str(tmp_path / "images" / "a.png"), "not a readable image")


def test_yolo_duplicate_image_id(tmp_path):
    _yolo(tmp_path, {"a": "0 0.5 0.5 0.1 0.1\n"})
    _png(tmp_path / "images" / "a.jpg")
    _fails(str(tmp_path), "images/a.", "duplicate image id 'a'")


@pytest.mark.parametrize("yaml, why", [("names: [cat, dog\n", "must close on its line"), ("nc: 3\nnames: [a, b]\n", "nc is 3"),
                                       ("names:\n  0: a\n  2: b\n", "ids must run 0..1"), ("nc: 2\n", "no 'names:'"),
                                       ("names:\n  - a\n  b\n", ":3: under 'names:'")])
def test_yolo_bad_data_yaml(tmp_path, yaml, why):
    _yolo(tmp_path, {"a": ""}, names=yaml)
    _fails(str(tmp_path), str(tmp_path / "data.yaml"), why)


def test_coco_image_id_of_the_wrong_type(tmp_path):
    path = _coco(tmp_path, [_ann(6, [1, 1, 4, 4], image_id=[1])])
    _fails(str(tmp_path), str(path), "annotation id 6 (image id [1])", "not among the file's images")


def test_a_dataset_without_a_single_box(tmp_path):
    _yolo(tmp_path, {"a": None, "b": ""})
    _fails(str(tmp_path), "2 images but not one box")
