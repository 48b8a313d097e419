"""TIDE error breakdown: each fixture's only error type is the only one that costs AP50, by the
hand-computed amount; the paired bootstrap of per-type differences."""

from __future__ import annotations

import numpy as np
import pytest

from xferdiag.errors import InputError
from xferdiag.tasks.detection.average_precision import evaluate
from xferdiag.tasks.detection.synthetic import detection_set
from xferdiag.tasks.detection.tide import ERROR_TYPES, fixed_table, paired_tide_bootstrap, tide_breakdown, tide_table

BOX = (10.0, 10.0, 20.0, 20.0)
SHIFTED = (22.0, 10.0, 20.0, 20.0)  # IoU with BOX: 8*20 / (800 - 160) = 0.25
HALF_RECALL = 51 / 101  # precision 1 up to recall .50, nothing above
TP_FP_TP = (51 + 50 * 2 / 3) / 101  # TP, FP, TP over two ground truths (see test_detection_eval)


def _gt(objects, n_images=3, categories=(1, 2)):
    """``objects``: (image id, category, box) triples; images 1..n_images."""
    anns = [{"id": k + 1, "image_id": i, "category_id": c, "bbox": list(b), "area": b[2] * b[3], "iscrowd": 0}
            for k, (i, c, b) in enumerate(objects)]
    return {"images": [{"id": i} for i in range(1, n_images + 1)], "annotations": anns,
            "categories": [{"id": c} for c in categories]}


def _det(image, category, box, score):
    return {"image_id": image, "category_id": category, "bbox": list(box), "score": score}


TWO_OBJECTS = [(1, 1, BOX), (2, 1, BOX)]
FIXTURES = {
    # the second object found in the wrong place (IoU .25), at a lower score
    "localisation": (TWO_OBJECTS, [_det(1, 1, BOX, 0.9), _det(2, 1, SHIFTED, 0.8)], 1 - HALF_RECALL),
    # the second object found in the right place with class 2 (which has no ground truth, so no AP)
    "classification": (TWO_OBJECTS, [_det(1, 1, BOX, 0.9), _det(2, 2, BOX, 0.8)], 1 - HALF_RECALL),
    # a second box on the first object, scored above the second object's box
    "duplicate": (TWO_OBJECTS, [_det(1, 1, BOX, 0.9), _det(1, 1, BOX, 0.85), _det(2, 1, BOX, 0.8)], 1 - TP_FP_TP),
    # a box on nothing, scored above the second object's box
    "background": (TWO_OBJECTS, [_det(1, 1, BOX, 0.9), _det(1, 1, (150, 150, 20, 20), 0.85), _det(2, 1, BOX, 0.8)],
                   1 - TP_FP_TP),
    # the second object never detected
    "missed": (TWO_OBJECTS, [_det(1, 1, BOX, 0.9)], 1 - HALF_RECALL),
    # a class-1 box half on a class-2 object (IoU .25): wrong class and badly placed; class 2 found, AP 1
    "both": (TWO_OBJECTS + [(3, 2, BOX)], [_det(1, 1, BOX, 0.9), _det(3, 1, SHIFTED, 0.85), _det(2, 1, BOX, 0.8),
                                           _det(3, 2, BOX, 0.7)], (1 - TP_FP_TP) / 2),
}


@pytest.mark.parametrize("kind", list(FIXTURES))
def test_each_error_type_costs_only_its_own_ap50(kind):
    objects, results, lost = FIXTURES[kind]
    gt = _gt(objects)
    breakdown = tide_breakdown(tide_table(gt, results))
    assert breakdown.ap50 == pytest.approx(evaluate(gt, results).ap50, abs=1e-12)
    expected = {k: (lost if k == kind else 0.0) for k in ERROR_TYPES}
    assert breakdown.lost == pytest.approx(expected, abs=1e-9)
    assert breakdown.counts == {k: int(k == kind) for k in ERROR_TYPES}
    assert breakdown.ap50 + lost == pytest.approx(1.0, abs=1e-9)  # one error, and its oracle makes the set perfect


def test_perfect_predictions_lose_nothing():
    gt = _gt(TWO_OBJECTS)
    breakdown = tide_breakdown(tide_table(gt, [_det(1, 1, BOX, 0.9), _det(2, 1, BOX, 0.8)]))
    assert breakdown.lost == {k: pytest.approx(0.0, abs=1e-12) for k in ERROR_TYPES} and set(breakdown.counts.values()) == {0}


def test_only_the_best_error_on_an_object_is_fixed():
    # two badly placed boxes on the second object: the oracle makes the better-scored one a hit and drops the other
    results = [_det(1, 1, BOX, 0.9), _det(2, 1, SHIFTED, 0.8), _det(2, 1, SHIFTED, 0.7)]
    tide = tide_table(_gt(TWO_OBJECTS), results)
    fixed = fixed_table(tide, "localisation")
    assert fixed.tp[:, 0].tolist() == [True, True] and fixed.score.tolist() == [0.9, 0.8]
    assert tide_breakdown(tide).counts["localisation"] == 2


def test_unknown_error_type_is_an_input_error():
    with pytest.raises(InputError, match="error type 'colour'"):
        fixed_table(tide_table(_gt(TWO_OBJECTS), []), "colour")


def test_losses_on_a_random_set_are_non_negative_and_the_oracles_fix_everything_they_claim():
    gt, results = detection_set(2)
    tide = tide_table(gt, results)
    breakdown = tide_breakdown(tide)
    assert min(breakdown.lost.values()) >= 0 and all(breakdown.counts[k] > 0 for k in ERROR_TYPES)
    # every false positive at IoU .5 got exactly one type
    fp = tide.table.fp[:, 0]
    assert (tide.error[fp] >= 0).all() and (tide.error[~fp] == -1).all()


def test_paired_bootstrap_per_error_type():
    gt, results_a = detection_set(0, quality=0.7, model_seed=1)
    _, results_b = detection_set(0, quality=0.5, model_seed=2)
    a, b = tide_table(gt, results_a), tide_table(gt, results_b)
    n_images = len(a.table.image_ids)
    weights = np.vstack([np.ones(n_images), np.random.default_rng(0).integers(0, 3, (7, n_images))])
    out = paired_tide_bootstrap([a], [b], weights=weights)
    assert set(out) == set(ERROR_TYPES)
    for kind, (replicates, summary) in out.items():
        observed = tide_breakdown(a).lost[kind] - tide_breakdown(b).lost[kind]
        assert summary.observed[0] == pytest.approx(observed, abs=1e-12)
        assert replicates[0, 0] == pytest.approx(observed, abs=1e-12)  # the identity resample
        assert replicates.shape == (8, 1) and summary.variance_per_seed[0] > 0
    same = paired_tide_bootstrap([a], [a], n_boot=5)
    assert all(not r.any() for r, _ in same.values())
