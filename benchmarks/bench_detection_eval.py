"""Detection evaluation: xferdiag's COCO evaluator against pycocotools (same numbers, time ratio),
the paired image bootstrap of the mAP difference from match tables against re-running
pycocotools on every resampled test set (time per replicate, same replicates and percentiles),
and the TIDE error breakdown's cost against the mAP evaluation's (issue 29).

    python -m benchmarks.bench_detection_eval [--quick]

Scenes are seeded random sets (xferdiag.tasks.detection.synthetic) with detector-like output: most
objects found once or twice with jittered boxes, some in the wrong class, and background boxes at
lower scores. Scores are distinct within each (image, class), so a duplicated image is the same
test set for both methods (see xferdiag/tasks/detection/average_precision.py). pycocotools is
timed on the first ``peer_reps`` replicates only (it takes seconds each); both score those same
resampled image indices.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.coco_reference import coco_eval, coco_per_class_ap, duplicated
from benchmarks.common import print_table, timed
from xferdiag.tasks.detection.average_precision import metrics_from_table
from xferdiag.tasks.detection.bootstrap import image_weights, paired_map_bootstrap
from xferdiag.tasks.detection.matching import match_tables
from xferdiag.tasks.detection.synthetic import detection_set
from xferdiag.tasks.detection.tide import paired_tide_bootstrap, tide_breakdown, tide_table

FULL = {"n_images": 300, "n_classes": 10, "n_background": 60, "n_boot": 1000, "peer_reps": 30}
QUICK = {"n_images": 30, "n_classes": 4, "n_background": 10, "n_boot": 20, "peer_reps": 2}
SAME = 1e-6
RATIO_TARGET = 50.0


def _sets(size: dict) -> tuple[dict, list, list]:
    """One ground truth and two arms' results on it (a better and a worse detector)."""
    make = {k: size[k] for k in ("n_images", "n_classes", "n_background")}
    gt, good = detection_set(1, quality=0.85, jitter=0.04, distinct_scores=True, model_seed=1, **make)
    _, poor = detection_set(1, quality=0.7, jitter=0.052, distinct_scores=True, model_seed=2, **make)
    return gt, good, poor


def _evaluator_row(gt: dict, results: list) -> dict:
    ours, ours_s = timed(lambda: metrics_from_table(match_tables(gt, results)))
    ref, peer_s = timed(coco_eval, gt, results)
    gaps = [abs(ours.map - ref.stats[0]), abs(ours.ap50 - ref.stats[1]), abs(ours.ap75 - ref.stats[2]),
            float(np.nanmax(np.abs(np.array(list(ours.per_class_ap.values())) - coco_per_class_ap(ref))))]
    return {"name": f"COCO evaluation, {len(gt['images'])} images, {len(results)} detections",
            "xferdiag_s": ours_s, "peer": "pycocotools COCOeval (evaluate + accumulate)", "peer_s": peer_s,
            "ratio": peer_s / ours_s, "target": f"same mAP, AP50, AP75, per-class AP (abs {SAME:g})",
            "met": bool(max(gaps) <= SAME), "max_abs_difference": max(gaps), "map": ours.map, "ap50": ours.ap50}


def _peer_replicates(gt: dict, arms: tuple[list, list], weights: np.ndarray) -> np.ndarray:
    out = []
    for counts in weights:
        g, a = duplicated(gt, arms[0], counts)
        _, b = duplicated(gt, arms[1], counts)
        out.append(coco_eval(g, a).stats[0] - coco_eval(g, b).stats[0])
    return np.array(out)


def _bootstrap_row(gt: dict, good: list, poor: list, size: dict) -> dict:
    n_boot, peer_reps = size["n_boot"], size["peer_reps"]
    (replicates, summary), ours_s = timed(
        lambda: paired_map_bootstrap([match_tables(gt, good)], [match_tables(gt, poor)], n_boot=n_boot, seed=0))
    weights = image_weights(len(gt["images"]), n_boot, 0)[:peer_reps]
    peer, peer_s = timed(_peer_replicates, gt, (good, poor), weights)
    mine = replicates[:peer_reps, 0]
    percentiles = {f"p{q:g}": (float(np.percentile(mine, q)), float(np.percentile(peer, q))) for q in (2.5, 97.5)}
    per_rep, peer_per_rep = ours_s / n_boot, peer_s / peer_reps
    return {"name": f"paired image bootstrap of the mAP difference, {n_boot} replicates, {len(gt['images'])} images",
            "xferdiag_s": per_rep, "peer": f"pycocotools re-run on each resampled set, both arms ({peer_reps} replicates timed)",
            "peer_s": peer_per_rep, "ratio": peer_per_rep / per_rep, "target": f">= {RATIO_TARGET:g}x per replicate, same replicates",
            "met": bool(peer_per_rep / per_rep >= RATIO_TARGET and np.max(np.abs(mine - peer)) <= SAME),
            "notes": "times are seconds per replicate; xferdiag's include matching both arms once",
            "max_abs_difference": float(np.max(np.abs(mine - peer))), "observed_difference": summary.observed[0],
            "interval_95": (float(np.percentile(replicates[:, 0], 2.5)), float(np.percentile(replicates[:, 0], 97.5))),
            "shared_replicates_percentiles_xferdiag_vs_peer": percentiles}


def _tide_row(gt: dict, good: list, poor: list, size: dict) -> dict:
    """The breakdown of one model (error types, then seven AP50 evaluations) against its mAP evaluation."""
    _, map_s = timed(lambda: metrics_from_table(match_tables(gt, good)))
    breakdown, tide_s = timed(lambda: tide_breakdown(tide_table(gt, good)))
    tides = [tide_table(gt, good)], [tide_table(gt, poor)]
    n_boot = max(size["n_boot"] // 10, 2)
    _, boot_s = timed(paired_tide_bootstrap, *tides, n_boot=n_boot, seed=0)
    return {"name": f"TIDE breakdown of one model, {len(gt['images'])} images", "xferdiag_s": tide_s,
            "peer": "xferdiag's own mAP evaluation of the same predictions", "peer_s": map_s, "ratio": map_s / tide_s,
            "notes": (f"TIDE costs {tide_s / map_s:.3g}x the mAP evaluation; paired per-type bootstrap "
                      f"{boot_s / n_boot:.3g} s per replicate ({n_boot} replicates, both arms)"),
            "ap50_lost": {k: round(v, 4) for k, v in breakdown.lost.items()}}


def main(quick: bool = False) -> list[dict]:
    size = QUICK if quick else FULL
    gt, good, poor = _sets(size)
    rows = [_evaluator_row(gt, good), _bootstrap_row(gt, good, poor, size), _tide_row(gt, good, poor, size)]
    print_table(rows, ["name", "xferdiag_s", "peer_s", "ratio", "met", "max_abs_difference"])
    print(f"{rows[2]['notes']}; AP50 lost per error type: {rows[2]['ap50_lost']}")
    for row in rows:
        print(f"{row['name']}: peer {row['peer']}; target {row.get('target', '-')}")
    print(f"bootstrap 95% interval {rows[1]['interval_95']}; on the shared replicates (xferdiag, peer): "
          f"{rows[1]['shared_replicates_percentiles_xferdiag_vs_peer']}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 images, 20 replicates, pycocotools on 2")
    main(quick=parser.parse_args().quick)
