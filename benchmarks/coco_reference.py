"""pycocotools as the reference for the detection tests and benchmark: COCOeval on in-memory dicts
(pycocotools is in the test extra; importing this module does not need it)."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np


def coco_eval(ground_truth: dict, results: list):
    """A finished pycocotools COCOeval ('bbox'), its printing swallowed; inputs are not modified."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def coco_per_class_ap(evaluator) -> np.ndarray:
    """AP@[.5:.95] per category from ``eval['precision'][t, :, k, area all, 100 dets]``, NaN where -1."""
    precision = evaluator.eval["precision"][:, :, :, 0, 2]
    return np.array([precision[:, :, k].mean() if (precision[:, :, k] > -1).all() else np.nan
                     for k in range(precision.shape[2])])


def duplicated(ground_truth: dict, results: list, counts) -> tuple[dict, list]:
    """The test set in which image ``i`` (in id order) appears ``counts[i]`` times, copies given
    consecutive ids so they stay together in pycocotools' image order."""
    ids = sorted(image["id"] for image in ground_truth["images"])
    copies = {i: [rank * 10_000 + c + 1 for c in range(int(n))] for rank, (i, n) in enumerate(zip(ids, counts))}
    pairs = [(a, new) for a in ground_truth["annotations"] for new in copies[a["image_id"]]]
    annotations = [dict(a, id=k, image_id=new) for k, (a, new) in enumerate(pairs, 1)]
    return ({"images": [{"id": new} for i in ids for new in copies[i]], "annotations": annotations,
             "categories": ground_truth["categories"]},
            [dict(r, image_id=new) for r in results for new in copies[r["image_id"]]])
