"""A hand-made detection run directory with known detections, for the report's detection sections.

Four 64 px images in a COCO folder (readable, so the gallery draws them); classes ``face`` and ``<b>x</b>``
(a name that must reach the page only as text). The transfer arm finds every box exactly (score 0.9). The
scratch arm finds every box of images 1 and 4 exactly, and on images 2 and 3 puts a box of the right class
beside each object (IoU 0.25: localisation errors, TIDE's only error type here): image 3 holds only such
boxes (per-image AP50 0), image 2 one exact ``face`` and a misplaced ``<b>x</b>`` (per-image AP50 0.5). So
the gallery must show image 3 first, then image 2, and no other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xferdiag.rundir import RunDir, write_json
from xferdiag.tasks.detection.average_precision import evaluate
from xferdiag.tasks.detection.data import DetectionData, DetImage, load_detection, to_coco, write_coco

CLASSES = ("face", "<b>x</b>")
OBJECTS = {1: [(0, (4, 4, 24, 24)), (1, (34, 30, 58, 54))], 2: [(0, (8, 8, 28, 28)), (1, (30, 30, 50, 50))],
           3: [(0, (20, 10, 40, 30))], 4: [(1, (10, 34, 30, 54))]}  # image id: (class index, x1 y1 x2 y2)
MISPLACED = {2: {1}, 3: {0}}  # image id: the classes scratch puts beside their object
SEEDS = (0, 1)


def _data() -> DetectionData:
    rng = np.random.default_rng(0)
    images = []
    for image_id, objects in OBJECTS.items():
        boxes = np.array([b for _, b in objects], dtype=np.float32)
        images.append(DetImage(image_id, f"img{image_id}", 64, 64, boxes, np.array([c for c, _ in objects], dtype=np.int64),
                               np.zeros(len(objects), dtype=bool), pixels=rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    return DetectionData("hand-made", "coco", CLASSES, tuple(images))


def _result(image_id: int, label: int, box, score: float, shift: float = 0.0) -> dict:
    x1, y1, x2, y2 = box
    return {"image_id": image_id, "category_id": label + 1, "bbox": [x1 + shift, y1, x2 - x1, y2 - y1], "score": score}


def arm_results(arm: str, ground_truth: dict, nothing: bool = False) -> list[dict]:
    """The arm's detections: exact boxes, or for scratch's misplaced ones the box moved right by 0.6 of its
    width (IoU 0.4 / 1.6 = 0.25), scored below every exact box; none for a scratch arm that finds ``nothing``."""
    out = []
    if nothing and arm == "scratch":
        return out
    for image in ground_truth["images"]:
        for label, box in OBJECTS[image["id"]]:
            wrong = arm == "scratch" and label in MISPLACED.get(image["id"], set())
            out.append(_result(image["id"], label, box, 0.7 if wrong else 0.9, 0.6 * (box[2] - box[0]) if wrong else 0.0))
    return out


def write_detection_run(root: Path, scratch_finds_nothing: bool = False) -> Path:
    """The run directory (data in ``root / "data"``, the run in ``root / "run"``) with no verdict yet."""
    data_dir = write_coco(_data(), root / "data")
    data = load_detection(str(data_dir))
    ground_truth = to_coco(data)
    rd = RunDir(root / "run")
    write_json(rd.run_json, {"schema": 1, "xferdiag_version": "0.1.0", "created": "2026-01-01T00:00:00Z",
                             "command": ["xferdiag", "finetune", "--data", str(data_dir)],
                             "config": {"data": str(data_dir), "task": "detection", "model": "fasterrcnn", "seeds": len(SEEDS)}})
    write_json(rd.data_json, {"classes": list(CLASSES), "kind": "detection", "spec": str(data_dir), "format": "coco",
                              "splits": {"target": {"train": 0, "val": 0, "test": len(OBJECTS)}},
                              "card": {"test": {"images": 4, "boxes": 6, "class_counts": {"face": 3, "<b>x</b>": 3},
                                                "relative_size_quantiles": {"q50": 0.3125}}},
                              "notes": [], "provenance": "four hand-made images of random pixels"})
    write_json(rd.test_annotations_json, ground_truth)
    for arm in ("transfer", "scratch"):
        results = arm_results(arm, ground_truth, scratch_finds_nothing)
        metrics = evaluate(ground_truth, results).to_dict()
        for seed in SEEDS:
            folder = rd.seed(arm, seed)
            write_json(folder.detections_json, results)
            write_json(folder.metrics_json, {"test": metrics, "epochs_run": 1})
    return rd.root
