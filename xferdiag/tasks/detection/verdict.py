"""Detection's side of the verdict: the difference in COCO mAP@[.5:.95] between the arms, seed by seed, its
test-set noise from a paired bootstrap over test images (images are the unit: boxes in one image are
correlated; matching never changes when images are resampled, so replicates reweight the match tables),
combined over seeds by :func:`xferdiag.negative.bootstrap_components_verdict`; AP50 beside it; and did
each arm learn: a seed whose AP50 is not above a box-prior baseline (per class, the mean training box
at a constant score) is flagged and not counted as evidence; and the TIDE error breakdown of both arms
(:mod:`.tide`) with the difference per error type on the same image resamples. Pure, like classification's."""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import RunDirError
from ...negative import bootstrap_components, bootstrap_components_verdict, paired_metric_verdict
from ..base import Judged
from .average_precision import evaluate, metrics_from_table
from .bootstrap import paired_map_bootstrap
from .matching import match_tables
from .tide import BACKGROUND, ERROR_TYPES, FOREGROUND, paired_tide_bootstrap, tide_breakdown, tide_table

ROLES = ("transfer-did-not-learn", "baseline-did-not-learn")  # warning codes of arm A and arm B
N_BOOT = 1000  # paired image resamples: the interval's edges move by well under a point between seeds of the draw


def box_prior(data_record: dict, ground_truth: dict) -> list[dict]:
    """The box-prior baseline's detections on the test images: for every class its mean training box
    (centre and size relative to the image) with the class's share of training boxes as its score."""
    prior = data_record.get("box_prior") or {}
    results = []
    for image in ground_truth["images"]:
        w, h = image["width"], image["height"]
        for category, (cx, cy, bw, bh, share) in prior.items():
            results.append({"image_id": image["id"], "category_id": int(category), "score": float(share),
                            "bbox": [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]})
    return results


def _detections(seed: dict) -> list:
    if "detections" not in seed["records"]:
        raise RunDirError(f"{seed['name']}: holds no test detections; a detection verdict needs them")
    return seed["records"]["detections"]


def _learning_warnings(arms, seeds, tables, prior_ap50: float | None) -> list[dict]:
    """One warning per arm with a seed whose test AP50 is not above the box prior's."""
    warnings = []
    for arm, code in zip(arms, ROLES):
        ap50 = [metrics_from_table(t).ap50 for t in tables[arm]]
        flagged = [s for s, v in zip(seeds, ap50) if prior_ap50 is not None and not v > prior_ap50]
        if flagged:
            which = "its only seed" if len(seeds) == 1 else f"{len(flagged)} of its {len(seeds)} seeds"
            warnings.append({"code": code, "arm": arm, "message": (
                f"the {arm} arm did not learn in {which}: test AP50 {min(ap50):.3f} is not above the {prior_ap50:.3f} of "
                "predicting each class's mean training box everywhere"),
                "evidence": {"seeds_flagged": flagged, "seeds": len(seeds), "ap50": [float(v) for v in ap50],
                             "ap50_min": float(min(ap50)), "box_prior_ap50": prior_ap50}})
    return warnings


def _ap50(tables: dict, arms, alpha: float) -> dict:
    """AP50 per seed and its gap, by the paired t over seeds where there are two or more (shown beside mAP)."""
    values = {arm: [float(metrics_from_table(t).ap50) for t in tables[arm]] for arm in arms}
    out = {"per_seed": values, "gap": float(np.mean(values[arms[0]]) - np.mean(values[arms[1]]))}
    if len(values[arms[0]]) > 1:
        verdict = paired_metric_verdict(values[arms[0]], values[arms[1]], alpha).to_dict()
        out.update({key: verdict[key] for key in ("ci95", "p_value", "verdict", "method")})
    return out


def _mean_breakdown(breakdowns: list) -> dict:
    """An arm's AP50, AP50 lost and error counts per type, each the mean over its seeds; a loss is NaN (null in
    the file) where it has no value: fixing every missed object of a model that found none leaves no ground truth."""
    return {"ap50": float(np.mean([b.ap50 for b in breakdowns])),
            "lost": {kind: float(np.mean([b.lost[kind] for b in breakdowns])) for kind in ERROR_TYPES},
            "counts": {kind: float(np.mean([b.counts[kind] for b in breakdowns])) for kind in ERROR_TYPES},
            "per_seed": [b.to_dict() for b in breakdowns]}


def _difference(replicates: np.ndarray, observed: tuple, n_images: int, alpha: float) -> dict:
    """One error type's difference: mean over seeds, interval and p by the mAP's seeds x images logic; no
    interval where a seed's difference is undefined or fewer than two resamples have one."""
    replicates = replicates[np.isfinite(replicates).all(axis=1)]
    if not np.isfinite(observed).all() or len(replicates) < 2:
        return {"gap": None, "per_seed": list(observed), "ci95": [None, None], "p_value": None}
    verdict = bootstrap_components_verdict(observed, replicates, n_test=n_images, alpha=alpha).to_dict()
    return {"gap": verdict["gap"], "per_seed": list(observed), "ci95": verdict["ci95"], "p_value": verdict["p_value"]}


def _tide(ground_truth: dict, results: dict, tables: dict, arms, alpha: float) -> dict:
    """verdict.json's ``tide``: each arm's breakdown and, per error type, the difference in AP50 lost (arm A
    minus arm B, mean over seeds) with its interval by the verdict's seeds x images logic, on the same
    image resamples as the mAP's bootstrap (a negative difference: arm A lost less to that type)."""
    tides = {arm: [tide_table(ground_truth, r, t) for r, t in zip(results[arm], tables[arm])] for arm in arms}
    with warnings.catch_warnings():  # a type without value (see _mean_breakdown) has only NaN replicates: numpy's empty-mean warning
        warnings.simplefilter("ignore", RuntimeWarning)
        paired = paired_tide_bootstrap(tides[arms[0]], tides[arms[1]], n_boot=N_BOOT, seed=0)
    n_images = len(ground_truth["images"])
    return {"foreground_iou": FOREGROUND, "background_iou": BACKGROUND, "types": list(ERROR_TYPES), "n_boot": N_BOOT,
            "arms": {arm: _mean_breakdown([tide_breakdown(t) for t in tides[arm]]) for arm in arms},
            "difference": {kind: _difference(replicates, boot.observed, n_images, alpha) for kind, (replicates, boot) in paired.items()}}


def judge(a: list[dict], b: list[dict], *, arms: tuple[str, str], seeds: list[int], data: dict, run_records: dict,
          alpha: float) -> Judged:
    """mAP from the stored COCO results of both arms against the run's test ground truth."""
    ground_truth = run_records.get("test_ground_truth")
    if ground_truth is None:
        raise RunDirError("the run holds no test ground truth (COCO annotations); a detection verdict needs it")
    results = {arm: [_detections(s) for s in runs] for arm, runs in zip(arms, (a, b))}
    tables = {arm: [match_tables(ground_truth, r) for r in results[arm]] for arm in arms}
    replicates, boot = paired_map_bootstrap(tables[arms[0]], tables[arms[1]], n_boot=N_BOOT, seed=0)
    replicates = replicates[np.isfinite(replicates).all(axis=1)]
    n_images = len(ground_truth["images"])
    verdict = bootstrap_components_verdict(boot.observed, replicates, n_test=n_images, alpha=alpha)
    maps = {arm: [float(metrics_from_table(t).map) for t in tables[arm]] for arm in arms}
    per_seed = [{"seed": s, arms[0]: ma, arms[1]: mb, "gap": g} for s, ma, mb, g in zip(seeds, maps[arms[0]], maps[arms[1]], boot.observed)]
    prior = box_prior(data, ground_truth)
    prior_ap50 = float(evaluate(ground_truth, prior).ap50) if prior else None
    components = bootstrap_components(boot.observed, replicates) if len(seeds) > 1 else None
    small = f"mAP@[.5:.95] over {n_images} test images; below about 100 images AP50 is the steadier number"
    note = verdict.note or (small if n_images < 100 else None)
    extra = {"ap50": _ap50(tables, arms, alpha), "box_prior_ap50": prior_ap50, "tide": _tide(ground_truth, results, tables, arms, alpha)}
    return Judged(verdict, "map", per_seed, extra,
                  _learning_warnings(arms, seeds, tables, prior_ap50), components, note)
