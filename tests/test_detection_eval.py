"""The detection evaluator against pycocotools (to 1e-6, with its edge cases) and hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.coco_reference import coco_eval, coco_per_class_ap
from xferdiag.errors import InputError
from xferdiag.tasks.detection.average_precision import evaluate, metrics_from_table
from xferdiag.tasks.detection.boxes import box_iou
from xferdiag.tasks.detection.matching import match_tables
from xferdiag.tasks.detection.synthetic import detection_set


def _gt(boxes, categories=(1,), crowd=()):
    """One image (id 7) with the given boxes of category 1; indices in ``crowd`` are crowd regions."""
    anns = [{"id": k + 1, "image_id": 7, "category_id": 1, "bbox": list(b), "area": b[2] * b[3], "iscrowd": int(k in crowd)}
            for k, b in enumerate(boxes)]
    return {"images": [{"id": 7}], "annotations": anns, "categories": [{"id": c} for c in categories]}


def _det(box, score, category=1, image=7):
    return {"image_id": image, "category_id": category, "bbox": list(box), "score": score}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("distinct", [False, True])
def test_equals_pycocotools_on_random_sets_with_edge_cases(seed, distinct):
    pytest.importorskip("pycocotools")
    gt, results = detection_set(seed, distinct_scores=distinct)
    table = match_tables(gt, results)
    # the edge cases are really there: crowd-ignored detections, a >100 (image, class) group cut at 100,
    # a class with no detections and one with no ground truth, tied scores within one (image, class)
    assert table.ignored.any() and len(table.score) < len(results)
    assert table.gt_counts.sum(0)[-1] == 0 and (table.category == 0).sum() == 0 and table.gt_counts.sum(0)[0] > 0
    assert 0 not in table.image and table.gt_counts[0].sum() > 0  # an image with ground truth and no predictions
    assert 1 in table.image and table.gt_counts[1].sum() == 0  # an image with predictions and no ground truth
    keys = [(r["image_id"], r["category_id"], r["score"]) for r in results]
    assert (len(set(keys)) < len(keys)) != distinct
    ours, ref = metrics_from_table(table), coco_eval(gt, results)
    assert ours.map == pytest.approx(ref.stats[0], abs=1e-6) and ours.map > 0.02
    assert ours.ap50 == pytest.approx(ref.stats[1], abs=1e-6)
    assert ours.ap75 == pytest.approx(ref.stats[2], abs=1e-6)
    assert ours.ar100 == pytest.approx(ref.stats[8], abs=1e-6)
    np.testing.assert_allclose(list(ours.per_class_ap.values()), coco_per_class_ap(ref), atol=1e-6)
    _same_matches(table, gt, ref)


def _same_matches(table, gt, ref):
    """Every detection's match at every threshold is the annotation pycocotools matched it to."""
    theirs = {}
    for e in ref.evalImgs:
        if e is not None and e["aRng"] == [0, 1e10]:
            for k, dt_id in enumerate(e["dtIds"]):
                theirs[dt_id - 1] = (e["dtMatches"][:, k], e["dtIgnore"][:, k])
    assert sorted(theirs) == sorted(table.result_index.tolist())
    ann_ids = np.array([a["id"] for a in gt["annotations"]] + [0])  # -1 (no match) reads pycocotools' 0
    for row, index in enumerate(table.result_index):
        np.testing.assert_array_equal(ann_ids[table.matched[row]], theirs[index][0])
        np.testing.assert_array_equal(table.ignored[row], theirs[index][1].astype(bool))


def test_perfect_predictions_score_one():
    boxes = [(10, 10, 20, 30), (50, 40, 25, 25), (0, 0, 5, 5)]
    metrics = evaluate(_gt(boxes), [_det(b, 0.5 + 0.1 * k) for k, b in enumerate(boxes)])
    # precision is TP / (TP + FP + eps), as in pycocotools, so "1" is 1 - 1e-16
    assert [metrics.map, metrics.ap50, metrics.ap75, metrics.ar100] == pytest.approx([1.0] * 4, abs=1e-12)
    assert metrics.to_dict()["per_class_ap"] == {"1": pytest.approx(1.0, abs=1e-12)}


def test_one_false_positive_above_one_true_positive_halves_precision():
    # recall 0 at precision 0, then recall 1 at precision 1/2: every recall threshold reads 1/2
    metrics = evaluate(_gt([(10, 10, 20, 20)]), [_det((100, 100, 20, 20), 0.9), _det((10, 10, 20, 20), 0.8)])
    assert metrics.map == pytest.approx(0.5, abs=1e-12) and metrics.ar100 == 1.0


def test_hand_computed_envelope():
    # TP, FP, TP over two boxes: precision 1 up to recall .50 (51 thresholds), then the envelope 2/3 (50 thresholds)
    boxes = [(10, 10, 20, 20), (60, 60, 20, 20)]
    results = [_det(boxes[0], 0.9), _det((120, 10, 20, 20), 0.8), _det(boxes[1], 0.7)]
    assert evaluate(_gt(boxes), results).map == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-12)


def test_detection_inside_a_crowd_region_is_ignored_not_false():
    gt = _gt([(10, 10, 20, 20), (100, 100, 80, 80)], crowd=(1,))
    results = [_det((110, 110, 10, 10), 0.95), _det((120, 120, 10, 10), 0.93), _det((10, 10, 20, 20), 0.9)]
    table = match_tables(gt, results)
    assert table.ignored[:2].all() and table.tp[2].all() and table.gt_counts.tolist() == [[1]]
    assert evaluate(gt, results).map == pytest.approx(1.0, abs=1e-12)


def test_localisation_error_counts_at_loose_thresholds_only():
    # IoU of a 20x20 box shifted by 4 px: 16*20 / (2*400 - 320) = 2/3: a hit at .50-.65, a miss from .70 on
    metrics = evaluate(_gt([(10, 10, 20, 20)]), [_det((14, 10, 20, 20), 0.9)])
    assert metrics.ap50 == pytest.approx(1.0, abs=1e-12) and metrics.ap75 == 0.0 and metrics.map == pytest.approx(0.4, abs=1e-12)


def test_class_without_ground_truth_is_left_out():
    metrics = evaluate(_gt([(10, 10, 20, 20)], categories=(1, 2)), [_det((10, 10, 20, 20), 0.9), _det((50, 50, 9, 9), 0.8, 2)])
    assert metrics.map == pytest.approx(1.0, abs=1e-12) and np.isnan(metrics.per_class_ap[2])
    assert metrics.to_dict()["per_class_ap"]["2"] is None


def test_no_results_scores_zero():
    metrics = evaluate(_gt([(10, 10, 20, 20)]), [])
    assert metrics.map == 0.0 and metrics.ar100 == 0.0 and metrics.n_detections == 0


def test_box_iou_known_values():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    gts = np.array([[1.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0], [5.0, 5.0, 1.0, 1.0], [2.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(box_iou(a, gts, np.zeros(4, bool))[0], [2 / 6, 4 / 16, 0.0, 0.0])
    np.testing.assert_allclose(box_iou(a, gts, np.array([False, True, False, False]))[0], [2 / 6, 1.0, 0.0, 0.0])


@pytest.mark.parametrize(("results", "message"), [
    ([_det((10, 10, 20, 20), 0.9, image=99)], "image_id 99"),
    ([_det((10, 10, 20, 20), float("nan"))], "score is NaN"),
    ([_det((10, 10, 20), 0.9)], "four numbers"),
    ([{"image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]}], "numeric score"),
    ([[7, 1, 0.9]], "list of"),
])
def test_unusable_results_are_one_line_input_errors(results, message):
    with pytest.raises(InputError, match=message):
        match_tables(_gt([(10, 10, 20, 20)]), results)
