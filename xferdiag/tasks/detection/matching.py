"""Per-image match tables: COCO's greedy matching, done once, so every later number is numpy.

The table holds, for every kept detection, its image, class, score and, for each of COCO's ten IoU
thresholds (.50:.05:.95), whether it is a true positive or ignored (neither means a false
positive), plus each image's count of non-ignored ground truths per class. Matching happens inside
one (image, class) pair and never looks at another image, so resampling images never changes it:
the paired bootstrap reweights these rows instead of re-running the evaluator.

The rules are pycocotools' (``COCOeval.evaluateImg``, area range 'all', ``maxDets`` 100), to the
tie: per (image, class) the detections in results order, stably sorted by descending score and cut
at 100; ground truths in annotation order with ignored ones (crowd regions, and areas outside
[0, 1e10]) last. Each detection in turn takes the free ground truth of highest IoU at or above the
threshold (``min(t, 1 - 1e-10)``; on equal IoU the later one), a non-ignored one if it has any;
crowd regions stay free. A detection matched to an ignored ground truth is ignored. Rows are stored in
pycocotools' accumulation order: by class, then the per-image lists concatenated in image-id order
and stably sorted by descending score, so its ties fall as they fall there. Results for an
image_id the ground truth lacks are an error (pycocotools asserts); results and annotations of a
category the ground truth does not list are left out, as pycocotools leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xferdiag.errors import InputError
from xferdiag.tasks.detection.boxes import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # bit-identical to pycocotools' Params.iouThrs
MAX_DETS = 100
AREA_ALL = (0.0, 1e5**2)
_CHUNK_CELLS = 1 << 20  # padded IoU cells matched at once: bounds memory, keeps the loop vectorised


@dataclass(frozen=True)
class MatchTable:
    """One model's detections on one test set, matched. ``image`` and ``category`` index
    ``image_ids`` and ``category_ids`` (both sorted, as pycocotools sorts them); ``tp`` and
    ``ignored`` are (n_detections, 10); ``matched`` (n_detections, 10) is the index of the matched
    annotation in the ground truth's list, -1 for none; ``gt_counts`` is (n_images, n_categories)
    non-ignored ground truths; ``result_index`` points back into the results list."""

    image_ids: tuple
    category_ids: tuple
    image: np.ndarray
    category: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    ignored: np.ndarray
    matched: np.ndarray
    gt_counts: np.ndarray
    result_index: np.ndarray

    @property
    def fp(self) -> np.ndarray:
        return ~(self.tp | self.ignored)


def boxes_of(items: list, what: str) -> np.ndarray:
    """(n, 4) float boxes of COCO entries, or one line naming what is wrong."""
    try:
        boxes = np.array([item["bbox"] for item in items], dtype=np.float64).reshape(len(items), 4)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{what}: every entry needs a bbox [x, y, width, height] of four numbers ({exc})") from None
    if not np.isfinite(boxes).all():
        raise InputError(f"{what}: a bbox holds a NaN or infinite value")
    return boxes


def id_index(ground_truth: dict) -> tuple[dict, dict]:
    """{image id: index}, {category id: index}, both in sorted id order (pycocotools' ``imgIds``, ``catIds``)."""
    try:
        image_ids = sorted({image["id"] for image in ground_truth["images"]})
        category_ids = sorted({category["id"] for category in ground_truth["categories"]})
    except (KeyError, TypeError) as exc:
        raise InputError(f"ground truth: needs 'images' and 'categories' lists of objects with an 'id' ({exc})") from None
    return {v: i for i, v in enumerate(image_ids)}, {v: i for i, v in enumerate(category_ids)}


def ground_truth_arrays(ground_truth: dict, images: dict, categories: dict) -> dict:
    """Annotations of listed images and categories, ordered by image, class, then non-ignored first."""
    listed = ground_truth.get("annotations", [])
    if not isinstance(listed, list) or not all(isinstance(a, dict) for a in listed):
        raise InputError("ground truth: 'annotations' must be a list of objects")
    source = np.array([i for i, a in enumerate(listed) if a.get("image_id") in images and a.get("category_id") in categories],
                      dtype=np.int64)
    anns = [listed[i] for i in source]
    boxes = boxes_of(anns, "ground truth annotations")
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    area = np.array([a.get("area", box[2] * box[3]) for a, box in zip(anns, boxes)], dtype=np.float64)
    ignore = crowd | (area < AREA_ALL[0]) | (area > AREA_ALL[1])
    image = np.array([images[a["image_id"]] for a in anns], dtype=np.int64)
    category = np.array([categories[a["category_id"]] for a in anns], dtype=np.int64)
    order = np.lexsort((ignore, category, image))
    return {"key": image[order] * len(categories) + category[order], "boxes": boxes[order], "crowd": crowd[order],
            "ignore": ignore[order], "source": source[order]}


def _detections(results: list, images: dict, categories: dict, max_dets: int) -> dict:
    """Results of listed categories, ordered by image, class, descending score (stable), first ``max_dets``."""
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InputError("results: expected a list of {image_id, category_id, bbox, score} objects")
    unknown = next((r.get("image_id") for r in results if r.get("image_id") not in images), None)
    if unknown is not None or any("image_id" not in r for r in results):
        raise InputError(f"results: image_id {unknown!r} is not among the ground truth's images")
    kept = np.array([i for i, r in enumerate(results) if r.get("category_id") in categories], dtype=np.int64)
    chosen = [results[i] for i in kept]
    boxes = boxes_of(chosen, "results")
    try:
        score = np.array([r["score"] for r in chosen], dtype=np.float64).reshape(len(chosen))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"results: every entry needs a numeric score ({exc})") from None
    if not np.isfinite(score).all():
        raise InputError("results: a score is NaN or infinite")
    key = np.array([images[r["image_id"]] * len(categories) + categories[r["category_id"]] for r in chosen], dtype=np.int64)
    order = np.lexsort((-score, key))
    key, score, boxes, kept = key[order], score[order], boxes[order], kept[order]
    starts = np.searchsorted(key, key, side="left")
    rank = np.arange(len(key)) - starts
    keep = rank < max_dets
    return {"key": key[keep], "score": score[keep], "boxes": boxes[keep], "rank": rank[keep], "result_index": kept[keep]}


def _chunks(sizes_d: np.ndarray, sizes_g: np.ndarray) -> list[np.ndarray]:
    """Groups batched so that each batch's padded (groups, max dets, max gts) grid stays small."""
    order = np.lexsort((sizes_d, sizes_g))
    chunks, current, max_d, max_g = [], [], 0, 0
    for g in order:
        nd, ng = max(max_d, sizes_d[g]), max(max_g, sizes_g[g])
        if current and (len(current) + 1) * nd * ng > _CHUNK_CELLS:
            chunks.append(np.array(current))
            current, nd, ng = [], sizes_d[g], sizes_g[g]
        current.append(g)
        max_d, max_g = nd, ng
    return chunks + ([np.array(current)] if current else [])


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Index of the maximum along the last axis, the last one on ties (pycocotools' ``<`` test)."""
    return values.shape[-1] - 1 - np.argmax(values[..., ::-1], axis=-1)


def _greedy(ious: np.ndarray, n_dets: np.ndarray, ignore: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """Matched ground-truth column, (groups, thresholds, dets), -1 where unmatched; all thresholds
    and groups at once, one step per score rank (the only order the greedy rule needs)."""
    groups, max_d, max_g = ious.shape
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]
    taken = np.zeros((groups, len(IOU_THRESHOLDS), max_g), dtype=bool)
    match = np.full((groups, len(IOU_THRESHOLDS), max_d), -1, dtype=np.int64)
    rows = np.arange(groups)[:, None]
    cols = np.arange(len(IOU_THRESHOLDS))[None, :]
    for r in range(max_d):
        iou = ious[:, None, r, :]
        able = ~(taken & ~crowd[:, None, :]) & (iou >= thresholds)
        regular, ignored = able & ~ignore[:, None, :], able & ignore[:, None, :]
        best = np.where(regular.any(-1), _last_argmax(np.where(regular, iou, -np.inf)),
                        np.where(ignored.any(-1), _last_argmax(np.where(ignored, iou, -np.inf)), -1))
        best[n_dets <= r] = -1
        match[:, :, r] = best
        hit = best >= 0
        taken[np.broadcast_to(rows, hit.shape)[hit], np.broadcast_to(cols, hit.shape)[hit], best[hit]] = True
    return match


def _padded(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = int(counts.max())
    index = starts[:, None] + np.arange(width)[None, :]
    valid = np.arange(width)[None, :] < counts[:, None]
    return np.where(valid, index, 0), valid


def _match(dets: dict, gts: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tp, ignored, matched annotation), each (n_dets, thresholds), for detections in (image, class, rank) order."""
    tp = np.zeros((len(dets["key"]), len(IOU_THRESHOLDS)), dtype=bool)
    ignored = np.zeros_like(tp)
    matched = np.full(tp.shape, -1, dtype=np.int64)
    d_keys, d_starts, d_counts = np.unique(dets["key"], return_index=True, return_counts=True)
    g_keys, g_starts, g_counts = np.unique(gts["key"], return_index=True, return_counts=True)
    _, in_d, in_g = np.intersect1d(d_keys, g_keys, assume_unique=True, return_indices=True)
    d_starts, d_counts, g_starts, g_counts = d_starts[in_d], d_counts[in_d], g_starts[in_g], g_counts[in_g]
    for chunk in _chunks(d_counts, g_counts):
        d_index, d_valid = _padded(d_starts[chunk], d_counts[chunk])
        g_index, g_valid = _padded(g_starts[chunk], g_counts[chunk])
        ious = box_iou(dets["boxes"][d_index], gts["boxes"][g_index], gts["crowd"][g_index])
        ious[~(d_valid[:, :, None] & g_valid[:, None, :])] = -1.0
        match = _greedy(ious, d_counts[chunk], gts["ignore"][g_index], gts["crowd"][g_index])
        matched_ignore = np.take_along_axis(gts["ignore"][g_index][:, None, :], np.maximum(match, 0), axis=-1)
        rows = d_index[d_valid]
        tp[rows] = ((match >= 0) & ~matched_ignore).transpose(0, 2, 1)[d_valid]
        ignored[rows] = ((match >= 0) & matched_ignore).transpose(0, 2, 1)[d_valid]
        source = np.take_along_axis(gts["source"][g_index][:, None, :], np.maximum(match, 0), axis=-1)
        matched[rows] = np.where(match >= 0, source, -1).transpose(0, 2, 1)[d_valid]
    return tp, ignored, matched


def match_tables(ground_truth: dict, results: list, max_dets: int = MAX_DETS) -> MatchTable:
    """Match COCO-format ``results`` against a COCO-format ``ground_truth`` dict (see the module docstring)."""
    images, categories = id_index(ground_truth)
    gts = ground_truth_arrays(ground_truth, images, categories)
    dets = _detections(results, images, categories, max_dets)
    tp, ignored, matched = _match(dets, gts)
    n_cat = len(categories)
    image, category = dets["key"] // n_cat, dets["key"] % n_cat
    by_class = np.lexsort((dets["rank"], image, category))
    order = by_class[np.lexsort((-dets["score"][by_class], category[by_class]))]
    regular = gts["key"][~gts["ignore"]]
    counts = np.bincount(regular, minlength=len(images) * n_cat).reshape(len(images), n_cat)
    return MatchTable(image_ids=tuple(images), category_ids=tuple(categories), image=image[order],
                      category=category[order], score=dets["score"][order], tp=tp[order], ignored=ignored[order],
                      matched=matched[order], gt_counts=counts, result_index=dets["result_index"][order])
