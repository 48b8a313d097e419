"""Seeded COCO ground truth and detector-like results with the evaluation's edge cases, for tests
and benchmarks: numbers checked against pycocotools need inputs that reach every branch of its rules.

Edge cases present in every set: an image with no predictions, an image with no ground truth, tied
scores within and across images (``distinct_scores=False``), crowd regions, one image with more
than 100 detections of one class, a class with ground truth but no detections and a class with
detections but no ground truth. Ids are scattered, not 0..n-1, so sorting by id matters.
"""

from __future__ import annotations

import numpy as np


def _jitter(rng: np.random.Generator, box: np.ndarray, scale: float) -> list[float]:
    x, y, w, h = box
    dx, dy, dw, dh = rng.normal(0.0, scale, 4)
    return [float(x + dx * w), float(y + dy * h), float(max(w * np.exp(dw), 1.0)), float(max(h * np.exp(dh), 1.0))]


def _ground_truth(rng: np.random.Generator, n_images: int, n_classes: int, size: int) -> dict:
    image_ids = sorted(int(i) for i in rng.choice(10 * n_images + 10, n_images, replace=False) + 1)
    category_ids = [int(c) for c in np.cumsum(rng.integers(1, 4, n_classes + 1))]  # the last one gets no ground truth
    annotations = []
    for index, image_id in enumerate(image_ids):
        n_boxes = 0 if index == 1 else int(rng.integers(1, 7))
        for _ in range(n_boxes):
            w, h = rng.uniform(8, size / 2, 2)
            x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
            crowd = int(rng.random() < 0.08)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[int(rng.integers(n_classes))],
                                "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": crowd})
    return {"images": [{"id": i, "width": size, "height": size} for i in image_ids],
            "annotations": annotations, "categories": [{"id": c, "name": f"class {c}"} for c in category_ids]}


def _predictions(rng: np.random.Generator, gt: dict, quality: float, n_background: int, size: int, jitter: float) -> list[dict]:
    category_ids = [c["id"] for c in gt["categories"]]
    no_detections = category_ids[0]
    results = []
    for ann in gt["annotations"]:
        for _ in range(int(rng.integers(0, 3))):  # none, one, or a duplicate
            category = ann["category_id"] if rng.random() < 0.85 else category_ids[int(rng.integers(len(category_ids)))]
            results.append({"image_id": ann["image_id"], "category_id": category, "bbox": _jitter(rng, np.array(ann["bbox"]), jitter),
                            "score": float(np.clip(rng.normal(quality, 0.2), 0.01, 1.0))})
    for image in gt["images"][1:]:
        for _ in range(int(rng.integers(0, n_background + 1))):
            w, h = rng.uniform(8, size / 2, 2)
            results.append({"image_id": image["id"], "category_id": category_ids[int(rng.integers(len(category_ids)))],
                            "bbox": [float(rng.uniform(0, size - w)), float(rng.uniform(0, size - h)), float(w), float(h)],
                            "score": float(rng.uniform(0.01, 0.7))})
    crowded = gt["images"][-1]["id"]
    for _ in range(130):
        w, h = rng.uniform(8, size / 2, 2)
        results.append({"image_id": crowded, "category_id": category_ids[1], "score": float(rng.uniform(0.01, 1.0)),
                        "bbox": [float(rng.uniform(0, size - w)), float(rng.uniform(0, size - h)), float(w), float(h)]})
    results = [r for r in results if r["image_id"] != gt["images"][0]["id"] and r["category_id"] != no_detections]
    empty = gt["images"][1]["id"]  # the image without objects gets at least one box
    if not any(r["image_id"] == empty for r in results):
        results.append({"image_id": empty, "category_id": category_ids[-1], "bbox": [5.0, 5.0, 30.0, 30.0], "score": 0.5})
    return results


def _set_scores(results: list[dict], distinct: bool) -> None:
    """Scores on a grid, so that ties happen: two decimals (ties within and across images), or three
    with repeats inside one (image, class) nudged apart by 1e-7 (ties across images only)."""
    seen: dict = {}
    for r in results:
        base = round(r["score"], 3 if distinct else 2)
        key = (r["image_id"], r["category_id"], base)
        r["score"] = base + seen.get(key, 0) * 1e-7 if distinct else base
        seen[key] = seen.get(key, 0) + 1


def detection_set(seed: int, n_images: int = 40, n_classes: int = 4, quality: float = 0.6, n_background: int = 4,
                  distinct_scores: bool = False, size: int = 200, model_seed: int | None = None,
                  jitter: float = 0.1) -> tuple[dict, list[dict]]:
    """(COCO ground-truth dict, COCO results list) of a seeded random scene set (see the module docstring).

    ``quality`` is the mean score of boxes on objects (background boxes score below 0.7), ``jitter`` the
    relative noise of their position and size; ``model_seed`` draws other results on the same ground
    truth (another seed or arm of a detector)."""
    rng = np.random.default_rng(seed)
    gt = _ground_truth(rng, max(n_images, 3), max(n_classes, 2), size)
    if model_seed is not None:
        rng = np.random.default_rng([seed, model_seed])
    results = _predictions(rng, gt, quality, n_background, size, jitter)
    _set_scores(results, distinct_scores)
    return gt, results
