"""Detection data readers: known answers per format, round trips through the writers, and every bad annotation
ending in one DataError that names the file and the line or id."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xferdiag.errors import DataError
from xferdiag.tasks.detection.data import (
    DetectionData,
    DetImage,
    detect_format,
    load_detection,
    make_scenes,
    split_images,
    to_coco,
    write_coco,
    write_voc,
    write_yolo,
)
from xferdiag.tasks.detection.data.yolo import parse_data_yaml


def _png(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(path)
    return path


def _coco(root: Path, annotations: list[dict], images: list[dict] | None = None, categories=None) -> Path:
    """A COCO folder with two 64x48 images (ids 1, 2) unless ``images`` says otherwise."""
    images = images if images is not None else [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                                                {"id": 2, "file_name": "b.png", "width": 64, "height": 48}]
    for entry in images:
        if not (root / "images" / entry["file_name"]).exists():
            _png(root / "images" / entry["file_name"], entry["width"], entry["height"])
    categories = categories or [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _ann(aid: int, bbox: list, image_id: int = 1, category_id: int = 1, **extra) -> dict:
    return {"id": aid, "image_id": image_id, "category_id": category_id, "bbox": bbox, **extra}


def _voc(root: Path, stem: str, objects: str, size: tuple[int, int] = (64, 48)) -> Path:
    _png(root / "JPEGImages" / f"{stem}.png", *size)
    path = root / "Annotations" / f"{stem}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{stem}.png</filename><size><width>{size[0]}</width>"
                    f"<height>{size[1]}</height></size>{objects}</annotation>")
    return path


def _obj(name: str, box: tuple, difficult: int = 0) -> str:
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>{coords}</bndbox></object>"


def _yolo(root: Path, labels: dict[str, str], names: str = "names: [cat, dog]", size=(64, 32)) -> Path:
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(names + "\n")
    for stem, text in labels.items():
        _png(root / "images" / f"{stem}.png", *size)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        if text is not None:
            (root / "labels" / f"{stem}.txt").write_text(text)
    return root


def _by_name(data: DetectionData) -> dict[str, DetImage]:
    return {Path(img.name).stem: img for img in data.images}


# --- known answers ------------------------------------------------------------------------------------------


def test_coco_reads_boxes_in_pixels_and_maps_gappy_category_ids_to_classes(tmp_path):
    _coco(tmp_path, [_ann(1, [10, 5, 20, 30]), _ann(2, [0, 0, 8, 8], image_id=2, category_id=3, iscrowd=1)])
    data = load_detection(str(tmp_path))
    assert data.fmt == "coco" and data.classes == ("cat", "dog") and data.splits is None
    a, b = data.images
    assert (a.image_id, a.width, a.height) == (1, 64, 48)
    np.testing.assert_array_equal(a.boxes, [[10, 5, 30, 35]])
    np.testing.assert_array_equal(b.labels, [1])
    assert b.iscrowd.tolist() == [True] and a.load().shape == (48, 64, 3)


def test_to_coco_gives_xywh_area_and_categories_one_to_c():
    img = DetImage(7, "x.png", 100, 80, np.array([[10, 20, 30, 60], [0, 0, 5, 5]], np.float32),
                   np.array([1, 0]), np.array([False, True]))
    doc = to_coco(DetectionData("t", "scenes", ("a", "b"), (img,)))
    assert doc["images"] == [{"id": 7, "file_name": "x.png", "width": 100, "height": 80}]
    assert doc["annotations"][0] == {"id": 1, "image_id": 7, "category_id": 2, "bbox": [10.0, 20.0, 20.0, 40.0],
                                     "area": 800.0, "iscrowd": 0}
    assert doc["annotations"][1]["iscrowd"] == 1 and doc["annotations"][1]["category_id"] == 1
    assert [c["id"] for c in doc["categories"]] == [1, 2]


def test_to_coco_is_ground_truth_pycocotools_scores_perfectly(tmp_path):
    pycocotools = pytest.importorskip("pycocotools.coco")
    from pycocotools.cocoeval import COCOeval

    data = make_scenes(6, 3, size=64, kinds=("face", "digit"))
    gt = pycocotools.COCO()
    gt.dataset = to_coco(data)
    gt.createIndex()
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt.dataset["annotations"]]
    evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_voc_is_one_based_and_difficult_boxes_are_ignored_regions(tmp_path):
    _voc(tmp_path, "img1", _obj("dog", (11, 6, 30, 40)) + _obj("cat", (1, 1, 10, 10), difficult=1))
    data = load_detection(f"voc:{tmp_path}")
    assert data.classes == ("cat", "dog")
    np.testing.assert_array_equal(data.images[0].boxes, [[10, 5, 30, 40], [0, 0, 10, 10]])
    assert data.images[0].iscrowd.tolist() == [False, True]
    assert any("1 boxes marked 'difficult'" in note for note in data.notes)


def test_yolo_converts_normalised_centres_to_pixels_and_keeps_images_without_labels(tmp_path):
    _yolo(tmp_path, {"a": "1 0.5 0.5 0.25 0.5\n\n", "b": None})
    (tmp_path / "labels" / "classes.txt").write_text("cat\ndog\n")  # labelImg writes one; it is not a label file
    data = load_detection(str(tmp_path))
    assert data.fmt == "yolo" and data.classes == ("cat", "dog")
    a, b = data.images
    np.testing.assert_allclose(a.boxes, [[24, 8, 40, 24]])
    assert a.labels.tolist() == [1] and len(b.boxes) == 0 and b.name == "images/b.png"


def test_a_box_a_pixel_over_the_edge_is_clipped_and_counted(tmp_path):
    _coco(tmp_path, [_ann(1, [50, 40, 15, 9]), _ann(2, [-1, 0, 10, 10])])
    data = load_detection(str(tmp_path))
    np.testing.assert_array_equal(data.images[0].boxes, [[50, 40, 64, 48], [0, 0, 9, 10]])
    assert data.clipped == 2


@pytest.mark.parametrize("text", ["names: [cat, 'dog, big', \"emu\"]  # three\nnc: 3\n",
                                  "path: ../x\nnames:\n  - cat\n  - 'dog, big'\n  - emu\n",
                                  "names:\n  2: emu\n  0: cat\n  1: \"dog, big\"\ndownload: |\n  some script\n"])
def test_the_data_yaml_parser_reads_the_three_spellings_as_pyyaml_does(text):
    names, _ = parse_data_yaml(text, "data.yaml")
    assert names == ["cat", "dog, big", "emu"]
    yaml = pytest.importorskip("yaml")
    loaded = yaml.safe_load(text)["names"]
    assert names == (list(loaded) if isinstance(loaded, list) else [loaded[i] for i in range(3)])


def test_yolo_splits_come_from_the_folders(tmp_path):
    (tmp_path / "data.yaml").write_text("names:\n  0: face\n")
    for split in ("train", "valid"):
        _png(tmp_path / split / "images" / f"{split}1.png")
        (tmp_path / split / "labels").mkdir(parents=True)
        (tmp_path / split / "labels" / f"{split}1.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = load_detection(str(tmp_path))
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0], "val": [1], "test": []}


# --- round trips --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenes() -> DetectionData:
    data = make_scenes(14, 5, size=64, kinds=("face", "digit"), empty_fraction=0.2)
    return dataclasses.replace(data, splits=split_images(data, 0.25, 0.25, seed=0))


@pytest.mark.parametrize("fmt, writer", [("coco", write_coco), ("voc", write_voc), ("yolo", write_yolo)])
def test_write_then_read_gives_the_same_boxes_classes_and_splits(tmp_path, scenes, fmt, writer):
    writer(scenes, tmp_path)
    assert detect_format(tmp_path) == fmt
    back = load_detection(str(tmp_path))
    assert back.classes == scenes.classes and back.clipped == 0 and len(back) == len(scenes)
    mine, theirs = _by_name(scenes), _by_name(back)
    for stem, img in mine.items():
        np.testing.assert_allclose(theirs[stem].boxes, img.boxes, atol=1e-4)
        np.testing.assert_array_equal(theirs[stem].labels, img.labels)
        np.testing.assert_array_equal(theirs[stem].load(), img.load())
    for split, idx in scenes.splits.items():
        assert sorted(Path(back.images[k].name).stem for k in back.splits[split]) == sorted(
            Path(scenes.images[k].name).stem for k in idx)


@pytest.mark.parametrize("fmt, writer", [("coco", write_coco), ("voc", write_voc)])
def test_crowd_regions_survive_coco_and_voc(tmp_path, scenes, fmt, writer):
    k = next(k for k, img in enumerate(scenes.images) if len(img.boxes))
    crowded = list(scenes.images)
    crowded[k] = dataclasses.replace(crowded[k], iscrowd=np.ones(len(crowded[k].boxes), dtype=bool))
    writer(dataclasses.replace(scenes, images=tuple(crowded)), tmp_path)
    back = _by_name(load_detection(f"{fmt}:{tmp_path}"))
    assert back[Path(crowded[k].name).stem].iscrowd.all()


def test_detect_format_says_none_for_a_classification_folder(tmp_path):
    _png(tmp_path / "cat" / "a.png")
    assert detect_format(tmp_path) is None and detect_format(tmp_path / "nowhere") is None
    with pytest.raises(DataError, match="not a detection dataset"):
        load_detection(str(tmp_path))


def test_coco_reads_instances_beside_captions_and_keypoints_files(tmp_path):
    _coco(tmp_path, [_ann(1, [1, 1, 4, 4])])
    (tmp_path / "annotations").mkdir()
    (tmp_path / "instances.json").rename(tmp_path / "annotations" / "instances_train.json")
    (tmp_path / "annotations" / "captions_train.json").write_text('{"images": [], "annotations": []}')
    data = load_detection(str(tmp_path))
    assert detect_format(tmp_path) == "coco" and len(data) == 2 and data.splits is None
