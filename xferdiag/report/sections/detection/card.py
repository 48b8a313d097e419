"""The dataset card: what data.json's ``card`` says of each split (images, boxes, classes, box sizes), where
the data came from, and a histogram of the test boxes' relative sizes from the stored test ground truth."""

from __future__ import annotations

import numpy as np

from ... import detection_plots, fmt
from .evidence import DetectionEvidence

HISTOGRAM_MIN_BOXES = 20  # fewer boxes read better as the quantiles in the table than as a histogram
_QUANTILES = (("q05", "5%"), ("q25", "25%"), ("q50", "median"), ("q75", "75%"), ("q95", "95%"))


def _row(name: str, cards: list[dict], key: str, style: str = "int") -> tuple[str, list[str]]:
    values = [fmt.as_number(card.get(key)) for card in cards]
    shown = [fmt.DASH if v is None else f"{v:.0f}" if style == "int" else f"{v:.2f}" for v in values]
    return name, shown


def _quantile_rows(cards: list[dict], key: str, what: str) -> list[tuple[str, list[str]]]:
    rows = []
    for q, name in _QUANTILES:
        values = [fmt.as_number((card.get(key) or {}).get(q)) for card in cards]
        if any(v is not None for v in values):
            rows.append((f"{what}, {name}", [fmt.DASH if v is None else f"{v:.3f}" for v in values]))
    return rows


def relative_sizes(ground_truth: dict) -> np.ndarray:
    """sqrt(box area / image area) of every non-crowd test box, the card's measure of box size."""
    area = {image["id"]: float(image["width"]) * float(image["height"]) for image in ground_truth.get("images", [])}
    sizes = [np.sqrt(a["bbox"][2] * a["bbox"][3] / area[a["image_id"]]) for a in ground_truth.get("annotations", [])
             if not a.get("iscrowd") and area.get(a.get("image_id"))]
    return np.asarray(sizes, dtype=np.float64)


def dataset_card(data: dict, classes: list[str], evidence: DetectionEvidence | None) -> dict | None:
    """None where data.json holds no card (a run made before cards were kept)."""
    card = data.get("card")
    if not isinstance(card, dict) or not card:
        return None
    splits = [name for name, value in card.items() if isinstance(value, dict)]
    cards = [card[name] for name in splits]
    rows = [_row("images", cards, "images"), _row("boxes", cards, "boxes"),
            _row("boxes per image, mean", cards, "boxes_per_image_mean", "float"),
            _row("boxes per image, most", cards, "boxes_per_image_max"),
            _row("images without boxes", cards, "images_without_boxes"), _row("crowd / ignored regions", cards, "crowd_boxes"),
            _row("boxes clipped to the image (whole dataset)", cards, "clipped_boxes")]
    rows += _quantile_rows(cards, "relative_size_quantiles", "relative box size")
    rows += _quantile_rows(cards, "aspect_ratio_quantiles", "aspect ratio (w / h)")
    counts = [(name, [str((c.get("class_counts") or {}).get(name, fmt.DASH)) for c in cards]) for name in classes]
    sizes = relative_sizes(evidence.ground_truth) if evidence is not None else np.zeros(0)
    notes = [str(n) for n in data.get("notes") or []]
    return {"splits": splits, "rows": rows, "class_counts": counts, "provenance": data.get("provenance") or None,
            "notes": notes, "format": data.get("format"), "spec": data.get("spec"), "n_sizes": len(sizes),
            "histogram": detection_plots.box_size_histogram(sizes) if len(sizes) >= HISTOGRAM_MIN_BOXES else None}
