"""TIDE error breakdown (Bolya et al., ECCV 2020): the AP50 each kind of error costs, from match tables.

Every detection that is not a true positive at IoU .5 (COCO's matching: the match table's first
column) gets one error type, tested in TIDE's order (tidecv's ``TIDERun._eval_image``) against its
image's non-ignored ground truths of every class, foreground IoU 0.5, background IoU 0.1:

* its image has no ground truth: background;
* localisation: its best IoU with a ground truth of its own class lies in [0.1, 0.5];
* classification: IoU >= 0.5 with a ground truth of another class;
* duplicate: IoU >= 0.5 with a ground truth of its class that a higher-scoring detection matched;
* background: IoU <= 0.1 with every ground truth;
* both (wrong class and badly placed): the rest.

A ground truth left unmatched and not the target of a classification or localisation error is missed.

Each loss is the AP50 gained by the oracle that fixes only that type, all else as it was: a
classification or localisation error becomes a true positive (in the ground truth's class) where
that ground truth is unmatched and the error is the highest-scoring one of its type on it, and is
removed otherwise; both, duplicate and background errors are removed; missed ground truths leave
the counts. No fix lowers AP (precision at each recall can only rise), so the losses are >= 0
without TIDE's clipping. They are AP50 differences, as TIDE reports them. Errors are found inside
one image, so the paired image bootstrap (:mod:`.bootstrap`) reweights them, never reclassifies them.

Checked against tidecv 1.0.1 (fetched for the check; not a dependency: unmaintained, it needs cv2,
seaborn and pandas): the same error counts, AP50 and losses to 5e-16 on four seeded random sets with
no tied scores, crowd regions, classes with detections but no ground truth or images with over 100
detections. Where those occur the two differ on purpose: tidecv counts a class without ground truth
as AP 0 where COCO leaves it out; it lists fixed errors before correct detections of the same score,
which lowers its fixed AP and so its losses; its matching ignores crowd regions and caps detections
per image rather than per image and class. It also picks one best error per ground truth across
classification and localisation together, so fixing one type can drop an error of that type whose
ground truth's best is of the other type; here each oracle picks within its own type, so each loss
is about its own type alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xferdiag.errors import InputError
from xferdiag.tasks.detection.bootstrap import PairedBootstrap, paired_result, paired_weights, replicate_map
from xferdiag.tasks.detection.boxes import box_iou
from xferdiag.tasks.detection.matching import MatchTable, boxes_of, ground_truth_arrays, id_index, match_tables

ERROR_TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")
FOREGROUND, BACKGROUND = 0.5, 0.1
_CLS, _LOC, _BOTH, _DUPE, _BKG = range(5)  # TideTable.error codes, in ERROR_TYPES' order; -1: no error
_REMOVED = {"both": _BOTH, "duplicate": _DUPE, "background": _BKG}


@dataclass(frozen=True)
class TideTable:
    """A match table with, per detection, its error code (-1 for a true positive or an ignored
    detection), the annotation (index in the ground truth's list) its classification or
    localisation error points at and that annotation's class index (-1 otherwise), whether its
    type's oracle makes it a true positive; and missed ground truths per (image, class)."""

    table: MatchTable
    error: np.ndarray
    target: np.ndarray
    target_class: np.ndarray
    fixable: np.ndarray
    missed: np.ndarray


def _classify(iou: np.ndarray, same: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(error code, target column or -1) of false positives against one image's ground truths."""
    same_iou, other_iou = np.where(same, iou, 0.0), np.where(same, 0.0, iou)
    best_same, best_other = same_iou.max(1), other_iou.max(1)
    loc = (best_same >= BACKGROUND) & (best_same <= FOREGROUND)
    cls = ~loc & (best_other >= FOREGROUND)
    dupe = ~loc & ~cls & (np.where(same & used[None, :], iou, 0.0).max(1) >= FOREGROUND)
    bkg = ~loc & ~cls & ~dupe & (iou.max(1) <= BACKGROUND)
    code = np.select([loc, cls, dupe, bkg], [_LOC, _CLS, _DUPE, _BKG], _BOTH)
    return code, np.where(loc, same_iou.argmax(1), np.where(cls, other_iou.argmax(1), -1))


def _errors(table: MatchTable, gts: dict, det_boxes: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(error code, target annotation) of every detection, one image at a time."""
    n_cat = len(table.category_ids)
    error, target = np.full(len(table.score), -1), np.full(len(table.score), -1)
    gt_image, gt_class = gts["key"] // n_cat, gts["key"] % n_cat
    starts = np.searchsorted(gt_image, np.arange(len(table.image_ids) + 1))
    false = np.flatnonzero(table.fp[:, 0])
    false = false[np.argsort(table.image[false], kind="stable")]
    images, first = np.unique(table.image[false], return_index=True)
    for image, rows in zip(images, np.split(false, first[1:])):
        g = slice(starts[image], starts[image + 1])
        if g.start == g.stop:
            error[rows] = _BKG
            continue
        iou = box_iou(det_boxes[rows], gts["boxes"][g], np.zeros(g.stop - g.start, dtype=bool))
        code, column = _classify(iou, table.category[rows][:, None] == gt_class[g][None, :], used[gts["source"][g]])
        error[rows], target[rows] = code, np.where(column >= 0, gts["source"][g][np.maximum(column, 0)], -1)
    return error, target


def _fixable(error: np.ndarray, target: np.ndarray, score: np.ndarray, used: np.ndarray) -> np.ndarray:
    """The highest-scoring error of each type (classification, localisation) on each unmatched ground truth."""
    rows = np.flatnonzero(np.isin(error, (_CLS, _LOC)) & (target >= 0))
    rows = rows[~used[target[rows]]]
    rows = rows[np.lexsort((rows, -score[rows], target[rows], error[rows]))]
    first = np.r_[True, (error[rows][1:] != error[rows][:-1]) | (target[rows][1:] != target[rows][:-1])][:len(rows)]
    fixable = np.zeros(len(error), dtype=bool)
    fixable[rows[first]] = True
    return fixable


def tide_table(ground_truth: dict, results: list, table: MatchTable | None = None) -> TideTable:
    """Each detection's TIDE error and each image's missed ground truths (see the module docstring);
    ``table`` is ``match_tables(ground_truth, results)`` when already made."""
    table = match_tables(ground_truth, results) if table is None else table
    images, categories = id_index(ground_truth)
    gts = ground_truth_arrays(ground_truth, images, categories)
    gts = {k: v[~gts["ignore"]] for k, v in gts.items()}
    det_boxes = boxes_of([results[i] for i in table.result_index], "results")
    used = np.zeros(len(ground_truth.get("annotations", [])), dtype=bool)
    used[table.matched[table.tp[:, 0], 0]] = True
    error, target = _errors(table, gts, det_boxes, used)
    annotation_class = np.full(len(used), -1)
    annotation_class[gts["source"]] = gts["key"] % len(categories)
    targeted = np.zeros(len(used), dtype=bool)
    targeted[target[target >= 0]] = True
    missed_keys = gts["key"][~used[gts["source"]] & ~targeted[gts["source"]]]
    missed = np.bincount(missed_keys, minlength=table.gt_counts.size).reshape(table.gt_counts.shape)
    return TideTable(table=table, error=error, target=target, target_class=np.where(target >= 0, annotation_class[target], -1),
                     fixable=_fixable(error, target, table.score, used), missed=missed)


def _at_iou50(t: MatchTable, keep: np.ndarray, category: np.ndarray, tp: np.ndarray, matched: np.ndarray,
              counts: np.ndarray) -> MatchTable:
    """A one-column (IoU .5) table of the kept rows, in pycocotools' order for their classes."""
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((rows, t.image[rows], -t.score[rows], category[rows]))]
    return MatchTable(image_ids=t.image_ids, category_ids=t.category_ids, image=t.image[order], category=category[order],
                      score=t.score[order], tp=tp[order, None], ignored=t.ignored[order, :1], matched=matched[order, None],
                      gt_counts=counts, result_index=t.result_index[order])


def fixed_table(tide: TideTable, kind: str | None) -> MatchTable:
    """The IoU-.5 table after the oracle that fixes only ``kind`` (one of ERROR_TYPES; None: no fix)."""
    t = tide.table
    category, tp, matched = t.category.copy(), t.tp[:, 0].copy(), t.matched[:, 0].copy()
    keep, counts = np.ones(len(category), dtype=bool), t.gt_counts
    if kind == "missed":
        counts = t.gt_counts - tide.missed
    elif kind in ("classification", "localisation"):
        mine = tide.error == (_CLS if kind == "classification" else _LOC)
        fix = mine & tide.fixable
        keep &= ~(mine & ~tide.fixable)
        tp[fix], matched[fix] = True, tide.target[fix]
        if kind == "classification":
            category[fix] = tide.target_class[fix]
    elif kind in _REMOVED:
        keep &= tide.error != _REMOVED[kind]
    elif kind is not None:
        raise InputError(f"TIDE error type {kind!r}: choose from {', '.join(ERROR_TYPES)}")
    return _at_iou50(t, keep, category, tp, matched, counts)


def error_losses(tide: TideTable, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """AP50 gained by each type's oracle, (replicates,) per type, on weighted test sets (default: as is)."""
    weights = np.ones((1, len(tide.table.image_ids))) if weights is None else weights
    base = replicate_map(fixed_table(tide, None), weights)
    return {kind: replicate_map(fixed_table(tide, kind), weights) - base for kind in ERROR_TYPES}


@dataclass(frozen=True)
class TideBreakdown:
    """One model's AP50, the AP50 each error type costs, and how many errors of each type it made
    (for ``missed``, ground truths)."""

    ap50: float
    lost: dict
    counts: dict

    def to_dict(self) -> dict:
        return {"ap50": self.ap50, "lost": dict(self.lost), "counts": dict(self.counts)}


def tide_breakdown(tide: TideTable) -> TideBreakdown:
    """The breakdown of one model's test predictions."""
    counts = {kind: int((tide.error == code).sum()) for code, kind in enumerate(ERROR_TYPES[:5])}
    counts["missed"] = int(tide.missed.sum())
    return TideBreakdown(ap50=float(replicate_map(fixed_table(tide, None), np.ones((1, len(tide.table.image_ids))))[0]),
                         lost={kind: float(v[0]) for kind, v in error_losses(tide).items()}, counts=counts)


def paired_tide_bootstrap(tides_a: list[TideTable], tides_b: list[TideTable], n_boot: int = 1000, seed: int = 0,
                          weights: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, PairedBootstrap]]:
    """Per error type, (replicates (n_boot, S), summary) of loss(A) - loss(B) per seed, on the same
    shared image resamples as :func:`~.bootstrap.paired_map_bootstrap` draws for ``seed``."""
    rows = paired_weights([t.table for t in tides_a], [t.table for t in tides_b], n_boot, seed, weights)
    losses_a, losses_b = [error_losses(t, rows) for t in tides_a], [error_losses(t, rows) for t in tides_b]
    return {kind: paired_result(np.stack([a[kind] - b[kind] for a, b in zip(losses_a, losses_b)], axis=1), rows.shape[1])
            for kind in ERROR_TYPES}
