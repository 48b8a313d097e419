"""The box explanations of a detection run (``xferdiag explain``): per explained box, the test image with the box,
each arm's D-RISE map and EigenCAM (renormalised in the box) side by side, the pointing score against the box's
area share, and the randomisation check; read from explanations/, never recomputed."""

from __future__ import annotations

import numpy as np

from ....errors import RunDirError
from ....rundir import RunDir, read_npz
from ....rundir.documents import ExplanationIndex, read_document
from ... import pictures
from ...interpret import budget_sentence
from ...interpret_boxes import BOX_FLAT_EIGENCAM, BOX_KINDS, BOX_POINTING_LEGEND, box_explanation_sentences
from ...plots import arm_colour
from ..explanations import MAX_GALLERY, RERUN


def _positive(values: np.ndarray) -> np.ndarray:
    """A D-RISE map's positive part scaled to [0, 1] (its negative part: pixels whose presence lowered the match)."""
    top = float(values.max()) if values.size else 0.0
    return np.clip(values, 0, None) / top if top > 0 else np.zeros_like(values)


def _array(arrays: dict, key: str, path) -> np.ndarray:
    if key not in arrays:
        raise RunDirError(f"{path}: no '{key}' array for a box the explanation index lists; {RERUN}")
    return arrays[key]


def _box(k: int, row: dict, arrays: dict, arms: list[str], names: dict[int, str], path) -> dict:
    """One explained box: its image with the box framed, each arm's D-RISE and EigenCAM tiles, its scores and checks."""
    image = _array(arrays, f"image_{row.get('image_id')}", path).astype(np.float32).transpose(2, 0, 1) / 255
    box = row.get("box") or [0, 0, 0, 0]
    cams = {arm: _array(arrays, f"eigencam_{arm}_{k}", path) for arm in arms}
    tiles = {arm: {"drise": pictures.overlay_tile(image, _positive(_array(arrays, f"drise_{arm}_{k}", path)), box),
                   "eigencam": pictures.overlay_tile(image, cams[arm], box),
                   "eigencam_blank": not np.ptp(cams[arm]) > 0} for arm in arms}
    return {"image": pictures.overlay_tile(image, None, box), "image_id": row.get("image_id"),
            "kind": BOX_KINDS.get(row.get("kind"), str(row.get("kind"))), "class": names.get(row.get("category_id"), "?"),
            "scores": row.get("scores") or {}, "pointing": row.get("pointing") or {}, "passed": row.get("pointing_passed") or {},
            "area": row.get("area_share"), "tiles": tiles}


def box_explanations(rd: RunDir, classes: list[str]) -> dict | None:
    """None where the run has no box explanations (explanations/ without its index or its maps)."""
    if not (rd.index_json.is_file() and rd.maps_npz.is_file()):
        return None
    index = read_document(rd.index_json, ExplanationIndex)
    rows, arms = index.get("boxes") or [], index["arms"]
    arrays = read_npz(rd.maps_npz)
    names = {k + 1: name for k, name in enumerate(classes)}
    check = index.get("randomisation") or None
    boxes = [_box(k, row, arrays, arms, names, rd.maps_npz) for k, row in enumerate(rows[:MAX_GALLERY])]
    blank = any(tile["eigencam_blank"] for box in boxes for tile in box["tiles"].values())
    return {"arms": arms, "colours": {arm: arm_colour(arm, arms) for arm in arms}, "masks": index.get("masks") or {},
            "sentences": box_explanation_sentences(index), "legend": BOX_POINTING_LEGEND,
            "budget": budget_sentence(index.get("budget")), "flagged": bool(check and check.get("flagged")),
            "boxes": boxes, "blank_note": BOX_FLAT_EIGENCAM if blank else None,
            "n_boxes": len(rows), "truncated": len(rows) > MAX_GALLERY, "gradient": pictures.heatmap_gradient()}
