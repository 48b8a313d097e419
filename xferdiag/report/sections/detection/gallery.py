"""The test images where the arms differ most: per image the AP50 of each arm's detections on that image
alone (one seed, the first both arms have), ranked by the absolute difference, each drawn once as a small
thumbnail with the ground truth and both arms' boxes on it. Images are read from the run's data as
data.json names it; where they cannot be read any more, the section says so instead."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw

from ....errors import XferdiagError
from ....tasks.detection.bootstrap import replicate_map
from ....tasks.detection.data import load_detection
from ....tasks.detection.matching import MatchTable
from ...interpret import GALLERY_IMAGES, GALLERY_MAX_BOXES, GALLERY_MIN_SCORE, GALLERY_THUMB_PX
from ...plots import arm_colour, data_uri
from .evidence import DetectionEvidence

TRUTH_COLOUR = "#ffffff"
_BLOCK = 256  # images scored at once (one weight row each)


def per_image_ap50(table: MatchTable) -> np.ndarray:
    """(images,) AP50 of the detections on each image alone; NaN for an image without ground truth."""
    one = dataclasses.replace(table, tp=table.tp[:, :1], ignored=table.ignored[:, :1], matched=table.matched[:, :1])
    n = len(table.image_ids)
    return np.concatenate([replicate_map(one, np.eye(n)[i:i + _BLOCK]) for i in range(0, n, _BLOCK)]) if n else np.zeros(0)


def ranked_images(evidence: DetectionEvidence, arms: list[str], seed: int) -> list[tuple[int, dict, float]]:
    """(image index, {arm: AP50}, difference first minus second) for images with ground truth where the
    arms differ, largest absolute difference first (ties: image order)."""
    ap = {arm: per_image_ap50(evidence.tables[arm][seed]) for arm in arms}
    diff = ap[arms[0]] - ap[arms[1]]
    order = [int(i) for i in np.argsort(-np.abs(np.nan_to_num(diff)), kind="stable") if np.isfinite(diff[i]) and diff[i] != 0]
    return [(i, {arm: float(ap[arm][i]) for arm in arms}, float(diff[i])) for i in order]


def _thumbnail(pixels: np.ndarray, truth: list[list[float]], boxes: dict[str, list[dict]], names: dict[int, str],
               arms: list[str]) -> str:
    """The image scaled to the thumbnail size, ground truth in white, each arm's boxes in its colour with
    class and score; a PNG data URI."""
    image = Image.fromarray(pixels)
    scale = GALLERY_THUMB_PX / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for x, y, w, h in truth:
        draw.rectangle([x * scale, y * scale, (x + w) * scale, (y + h) * scale], outline=TRUTH_COLOUR, width=3)
    for arm, results in boxes.items():
        for r in results:
            x, y, w, h = (v * scale for v in r["bbox"])
            colour = arm_colour(arm, arms)
            draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
            draw.text((x + 2, y + 1), f"{names.get(r['category_id'], '?')} {r['score']:.2f}", fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return data_uri(buffer.getvalue())


def _drawn(results: list, image_id: int, n_objects: int) -> list[dict]:
    """The arm's boxes on the image scoring at least the floor, or among its top ``n_objects`` (the boxes
    that decide a per-image AP even where every score is low), highest first."""
    mine = sorted((r for r in results if r.get("image_id") == image_id), key=lambda r: -r["score"])
    return [r for k, r in enumerate(mine) if r["score"] >= GALLERY_MIN_SCORE or k < n_objects][:GALLERY_MAX_BOXES]


def _pixels(spec: object) -> tuple[dict | None, str | None]:
    """{image id: DetImage} of the run's data, or None and why it cannot be read."""
    if not isinstance(spec, str) or not spec:
        return None, "the run names no data to read them from"
    try:
        data = load_detection(spec)
    except XferdiagError as exc:
        return None, str(exc)
    return {img.image_id: img for img in data.images}, None


def gallery(evidence: DetectionEvidence | None, data: dict, classes: list[str]) -> dict | None:
    """None without two arms of stored detections on a common seed."""
    arms = [a for a in ("transfer", "scratch") if a in (evidence.tables if evidence else {})]
    arms = arms if len(arms) == 2 else list(evidence.tables)[:2] if evidence else []
    seeds = evidence.common_seeds(arms) if len(arms) == 2 else []
    if not seeds:
        return None
    seed = seeds[0]
    ranked = ranked_images(evidence, arms, seed)
    out = {"arms": arms, "colours": {arm: arm_colour(arm, arms) for arm in arms},
           "seed": seed, "n_different": len(ranked),
           "n_scored": int((evidence.tables[arms[0]][seed].gt_counts.sum(axis=1) > 0).sum()),
           "min_score": GALLERY_MIN_SCORE, "max_boxes": GALLERY_MAX_BOXES, "images": [], "unreadable": None}
    if not ranked:
        return out
    images, why = _pixels(data.get("spec"))
    if images is None:
        out["unreadable"] = f"The test images could not be read from {data.get('spec')!r} ({why}), so none are drawn."
        return out
    names = {k + 1: name for k, name in enumerate(classes)}
    info = evidence.ground_truth["images"]
    image_ids = evidence.tables[arms[0]][seed].image_ids
    for index, values, diff in ranked[:GALLERY_IMAGES]:
        image_id = image_ids[index]
        truth = [a for a in evidence.ground_truth.get("annotations", []) if a.get("image_id") == image_id]
        meta = next((i for i in info if i["id"] == image_id), {})
        try:
            pixels = images[image_id].load()
        except (KeyError, XferdiagError) as exc:
            out["unreadable"] = f"Test image {image_id} could not be read from {data.get('spec')!r} ({exc}), so none are drawn."
            out["images"] = []
            return out
        counts = Counter(names.get(a.get("category_id"), "?") for a in truth if not a.get("iscrowd"))
        boxes = {arm: _drawn(evidence.results[arm][seed], image_id, sum(counts.values())) for arm in arms}
        out["images"].append({"uri": _thumbnail(pixels, [a["bbox"] for a in truth], boxes, names, arms), "image_id": image_id,
                              "file_name": str(meta.get("file_name", "")), "values": values, "diff": diff,
                              "truth": ", ".join(f"{n} × {name}" for name, n in sorted(counts.items())),
                              "drawn": {arm: len(b) for arm, b in boxes.items()}})
    return out
