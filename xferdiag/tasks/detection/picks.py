"""Which boxes of a detection run to explain, from the stored test detections and ground truth (COCO formats):
ground-truth boxes an arm missed ("why was this not detected"), the first arm's highest-scoring detections, and
the detections on which the arms disagree most (one arm's score against the other's best match), taken in turn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import box_iou

MATCH_IOU = 0.5
"""A detection of the same class at this IoU or more matches a box (COCO's AP50)."""
DETECTED = 0.5
"""A ground-truth box counts as found by an arm whose best match scores this much or more; below it, as missed."""
CONSIDERED = 0.3
"""Detections scoring below this are no candidates (a detector keeps up to 100 weak ones per image)."""
KINDS = ("missed", "top", "disagreement")
"""The kinds of picked box, in the order they are taken in turn."""


@dataclass(frozen=True)
class Pick:
    """One box to explain: its image, pixels (x1 y1 x2 y2), class (category id), why it was picked, and each
    arm's best-matching score (0: nothing of that class overlaps it at :data:`MATCH_IOU`)."""

    image_id: int
    box: tuple[float, float, float, float]
    category_id: int
    kind: str
    scores: dict[str, float]

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "box": [round(v, 2) for v in self.box], "category_id": self.category_id,
                "kind": self.kind, "scores": {arm: round(s, 4) for arm, s in self.scores.items()}}


def _xyxy(bbox) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, x + w, y + h)


def _iou(box, others: list) -> np.ndarray:
    """IoU of one x1 y1 x2 y2 box with each of ``others`` (same form), as the evaluator computes it."""
    xywh = np.array([box, *others], dtype=np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    return box_iou(xywh[:1], xywh[1:], np.zeros(len(others), dtype=bool))[0]


def _best_scores(box, category: int, results: list[dict]) -> float:
    """The highest score of ``results`` (one image's) of ``category`` overlapping ``box`` at :data:`MATCH_IOU`."""
    same = [r for r in results if r["category_id"] == category]
    if not same:
        return 0.0
    ious = _iou(box, [_xyxy(r["bbox"]) for r in same])
    scores = np.array([r["score"] for r in same])
    return float(scores[ious >= MATCH_IOU].max(initial=0.0))


def _by_image(items: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for item in items:
        out.setdefault(int(item["image_id"]), []).append(item)
    return out


def candidates(ground_truth: dict, results: dict[str, list[dict]]) -> dict[str, list[Pick]]:
    """Every candidate of each kind, best first: missed ground truths (the lowest first-arm score first), the first
    arm's detections by score, both arms' detections by the absolute gap to the other's best match (detections scoring
at least :data:`CONSIDERED`)."""
    arms = list(results)
    found = {arm: _by_image(r) for arm, r in results.items()}

    def scored(box, category, image_id, kind) -> Pick:
        return Pick(image_id, box, category, kind, {a: _best_scores(box, category, found[a].get(image_id, [])) for a in arms})

    truths = [scored(_xyxy(a["bbox"]), int(a["category_id"]), int(a["image_id"]), "missed")
              for a in ground_truth.get("annotations", []) if not a.get("iscrowd")]
    missed = sorted((p for p in truths if min(p.scores.values()) < DETECTED), key=lambda p: p.scores[arms[0]])
    made = {a: [r for r in results[a] if r["score"] >= CONSIDERED] for a in arms}
    top = sorted((scored(_xyxy(r["bbox"]), int(r["category_id"]), int(r["image_id"]), "top") for r in made[arms[0]]),
                 key=lambda p: -p.scores[arms[0]])
    gaps = [scored(_xyxy(r["bbox"]), int(r["category_id"]), int(r["image_id"]), "disagreement") for a in arms for r in made[a]]
    gaps.sort(key=lambda p: -(max(p.scores.values()) - min(p.scores.values())))
    return {"missed": missed, "top": top, "disagreement": [p for p in gaps if len(arms) > 1]}


def _repeats(pick: Pick, chosen: list[Pick]) -> bool:
    """Whether a box of the same image and class already chosen overlaps ``pick`` at :data:`MATCH_IOU`."""
    same = [c.box for c in chosen if c.image_id == pick.image_id and c.category_id == pick.category_id]
    return bool(same) and _iou(pick.box, same).max() >= MATCH_IOU


def pick_boxes(ground_truth: dict, results: dict[str, list[dict]], n: int) -> tuple[list[Pick], dict[str, int]]:
    """Up to ``n`` distinct boxes, one of each kind in turn (:data:`KINDS`), and how many candidates each kind had."""
    pools = candidates(ground_truth, results)
    chosen: list[Pick] = []
    positions = dict.fromkeys(KINDS, 0)
    while len(chosen) < n and any(positions[k] < len(pools[k]) for k in KINDS):
        for kind in KINDS:
            while positions[kind] < len(pools[kind]) and len(chosen) < n:
                pick = pools[kind][positions[kind]]
                positions[kind] += 1
                if not _repeats(pick, chosen):
                    chosen.append(pick)
                    break
    return chosen, {kind: len(pool) for kind, pool in pools.items()}
