"""Domain shift: the numbers of shift.json with their meaning, the analyzer's own sentences, the
source-vs-target embedding, the class proportions, for tables the shift of each input feature, and for
detection runs the box statistics and the shift by level (image, objects, background boxes, each class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import RunDirError
from ...rundir import RunDir, read_npz
from ...rundir.documents import BoxShift, InstanceShift, LabelShift, LayerShift, Shift
from .. import fmt, pictures
from ..interpret import BOX_STATISTIC_NAMES, FEATURE_SHIFT_LEGEND, LAYER_SHIFT_LEGEND, SHIFT_LEGEND
from .common import class_name

MAX_FEATURE_ROWS = 30  # per-feature shift table
MAX_FEATURE_BARS = 15  # per-feature shift chart


def domain_shift(rd: RunDir, shift: Shift, classes: list[str], hint: str) -> dict:
    """``hint`` says how to recompute a corrupt embedding."""
    meta = shift["embedding"]
    return {
        "rows": _shift_rows(shift),
        "features": feature_shift(shift),
        "interpretation": shift["interpretation"],
        "caption": f"Features from layer '{shift.get('layer', '?')}' of the {shift.get('model', '?')} model; "
                   f"{fmt.num(shift.get('n_source'))} source and {fmt.num(shift.get('n_target'))} target examples."
                   if "features_skipped" not in shift else "No feature-level test (too few images); box statistics only.",
        "embedding": _embedding(rd, meta, classes, hint), "embedding_method": fmt.display_name(meta.get("method", "")),
        "label_chart": _label_chart(shift["label_shift"], classes),
        "layer_chart": _layer_chart(shift["layers"]),
        "layer_rows": _layer_rows(shift["layers"]), "layer_legend": LAYER_SHIFT_LEGEND,
        "box_rows": _box_rows(shift["boxes"]), "box_alpha": shift["boxes"].get("alpha"),
        "level_rows": _level_rows(shift, shift["instance"]), "instance_layer": shift["instance"].get("layer"),
    }


def _level_row(name: str, level: dict, unit: str) -> dict:
    pad, c2st, mmd = (level.get(k) or {} for k in ("proxy_a_distance", "c2st", "mmd"))
    return {"name": name, "n": f"{fmt.num(level.get('n_source'))} / {fmt.num(level.get('n_target'))} {unit}",
            "c2st": c2st.get("accuracy"), "pad": pad.get("value"), "pad_ci": pad.get("ci95") or [], "mmd_p": mmd.get("p_value")}


def _level_rows(shift: Shift, instance: InstanceShift) -> list[dict]:
    """The shift by level of a detection run with an instance level (empty for other runs): the image, the objects'
    boxes, the background boxes and each class, by measures that do not depend on the number of features."""
    if not instance.get("objects") or not shift["proxy_a_distance"]:
        return []
    rows = [_level_row("Image (pooled last stage)", shift, "images"), _level_row("Objects (all classes)", instance["objects"], "boxes")]
    if instance.get("background"):
        rows.append(_level_row("Background boxes", instance["background"], "boxes"))
    return rows + [_level_row(f"Class {row.get('class')}", row, "boxes") for row in instance["per_class"]]


def _box_rows(boxes: BoxShift) -> list[dict]:
    """The box-statistics table of a detection run (empty for other runs)."""
    keys = ("n_source", "n_target", "median_source", "median_target", "ks_statistic", "p_value", "p_adjusted")
    return [{"name": BOX_STATISTIC_NAMES.get(str(row["name"]), str(row["name"])), "shifted": row.get("shifted") is True,
             **{k: row.get(k) for k in keys}} for row in boxes["statistics"] if "name" in row]


def _layer_rows(layers: list[LayerShift]) -> list[dict]:
    """The per-layer table: every measure shift.json holds for each layer (None where an older file lacks it)."""
    keys = ("mmd2", "p_adjusted", "proxy_a_distance", "c2st_accuracy", "c2st_p_value", "frechet")
    rows = [{"name": str(row["name"]), "shifted": row.get("shifted") is True, **{k: row.get(k) for k in keys}}
            for row in layers if "name" in row]
    return rows if len(rows) > 1 else []


def _layer_chart(layers: list[LayerShift]) -> str | None:
    """MMD² per layer, when shift.json tested more than one layer."""
    rows = [row for row in layers if {"name", "mmd2", "shifted"} <= set(row)]
    return pictures.layer_shift(rows) if len(rows) > 1 else None


def _embedding(rd: RunDir, meta: dict, classes: list[str], hint: str) -> str | None:
    """The 2-D embedding scatter, or None when the analysis wrote no embedding."""
    path = rd.analysis / Path(str(meta["file"])).name if meta.get("file") else rd.embedding_npz
    if not path.is_file():
        return None
    arrays = read_npz(path)
    xy, domain = arrays.get("xy"), arrays.get("domain")
    if xy is None or domain is None or xy.ndim != 2 or xy.shape[1] != 2 or len(domain) != len(xy):
        raise RunDirError(f"{path}: needs 'xy' (n, 2) and 'domain' (n,); delete it and {hint}")
    labels = arrays.get("label")
    labels = labels if labels is not None and len(labels) == len(xy) else np.zeros(len(xy), dtype=np.int64)
    names = classes if labels.max(initial=0) < len(classes) else [str(k) for k in range(int(labels.max()) + 1)]
    method = fmt.display_name(meta.get("method", "2-D"))
    return pictures.embedding_scatter(xy, domain, labels.astype(np.int64), names, method)


def _label_chart(ls: LabelShift, classes: list[str]) -> str | None:
    if not (ls.get("source") and ls.get("target") and len(ls["source"]) == len(ls["target"])):
        return None
    names = [class_name(classes, c) for c in ls.get("classes") or classes]
    return pictures.label_shift(names, ls["source"], ls["target"]) if len(names) == len(ls["source"]) else None


def _mmd_value(mmd: dict) -> str:
    """MMD² and p; an aggregated test (shift.json written since it gained "kernels") names the kernel
    behind the MMD² and how many kernels the p-value covers."""
    kernels = mmd.get("kernels") or []
    where = " (whitened features, median bandwidth)" if mmd.get("features") == "whitened" else ""
    over = f", {len(kernels)} kernels" if len(kernels) > 1 else ""
    return (f"{fmt.num(mmd.get('statistic'))}{where}, p {fmt.pval(mmd.get('p_value'))} "
            f"({fmt.num(mmd.get('n_permutations'))} permutations{over})")


def _shift_rows(shift: Shift) -> list[tuple[str, str, str]]:
    """(measurement, value, what it means) for each measurement shift.json holds."""
    mmd, pad, fr, c2st, ks, ls = (shift[k] for k in ("mmd", "proxy_a_distance", "frechet", "c2st", "ks", "label_shift"))
    rows = []
    if mmd:
        rows.append(("MMD (kernel two-sample test)", _mmd_value(mmd), SHIFT_LEGEND["mmd"]))
    if pad:
        ci = " to ".join(fmt.num(v) for v in pad.get("ci95") or []) or fmt.DASH
        rows.append(("Proxy A-distance", f"{fmt.num(pad.get('value'))} (95% CI {ci})", SHIFT_LEGEND["proxy_a_distance"]))
    if fr:
        rows.append(("Fréchet distance", fmt.num(fr.get("value")), SHIFT_LEGEND["frechet"]))
    if c2st:
        rows.append(("Classifier two-sample test", (f"{fmt.pct(c2st.get('accuracy'))} accuracy, p {fmt.pval(c2st.get('p_value'))} "
                     f"({fmt.num(c2st.get('n_test'))} held-out examples)"), SHIFT_LEGEND["c2st"]))
    if ks:
        rows.append(("Per-feature KS tests",
                     f"{fmt.pct(ks.get('fraction_shifted'))} of {fmt.num(ks.get('n_dimensions'))} features shifted",
                     f"Kolmogorov–Smirnov test per feature at α = {fmt.num(ks.get('alpha'))}"))
    if ls:
        rows.append(("Label shift", f"total variation {fmt.num(ls.get('total_variation'))}", SHIFT_LEGEND["label_shift"]))
    return rows


def feature_shift(shift: Shift) -> dict | None:
    """Per input feature of a table (shift.json "per_feature"), most shifted (largest KS statistic) first."""
    features = [{"name": str(f.get("name")), "ks_statistic": fmt.as_number(f.get("ks_statistic")),
                 "p_value": f.get("p_value"), "p_adjusted": f.get("p_adjusted"), "smd": fmt.as_number(f.get("smd")),
                 "shifted": f.get("shifted") is True}
                for f in shift["per_feature"]]
    features = sorted((f for f in features if f["ks_statistic"] is not None and f["smd"] is not None),
                      key=lambda f: -f["ks_statistic"])
    if not features:
        return None
    return {"rows": features[:MAX_FEATURE_ROWS], "n": len(features), "n_shifted": sum(f["shifted"] for f in features),
            "truncated": len(features) > MAX_FEATURE_ROWS, "chart": pictures.feature_shift(features[:MAX_FEATURE_BARS]),
            "legend": FEATURE_SHIFT_LEGEND}
