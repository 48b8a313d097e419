"""Write detection data as COCO, VOC or YOLO folders, so that the demo and the tests reach the readers
the way a user's data does. Images are written as PNG (lossless: boxes and pixels survive a round trip)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from ....atomic import atomic_path, make_dir, write_text
from ....errors import InputError
from .core import SPLITS, DetectionData, to_coco


def _stems(data: DetectionData) -> list[str]:
    """One file stem per image, from its name; they must not collide."""
    stems = [Path(img.name).stem for img in data.images]
    if len(set(stems)) != len(stems):
        raise InputError("two images share a file name stem; give them distinct names before writing")
    return stems


def _groups(data: DetectionData) -> list[tuple[str | None, np.ndarray]]:
    if data.splits is None:
        return [(None, np.arange(len(data)))]
    return [(s, np.asarray(data.splits[s])) for s in SPLITS if len(data.splits[s])]


def _save(data: DetectionData, k: int, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(data.images[k].load()).save(tmp, format="PNG")


def write_coco(data: DetectionData, root: str | Path) -> Path:
    """``root/images/<stem>.png`` and ``root/annotations/instances[_<split>].json``."""
    root, stems = Path(root), _stems(data)
    for split, indices in _groups(data):
        doc = to_coco(data, indices)
        if data.provenance:  # COCO's own place for where a dataset comes from; the reader takes it back
            doc["info"] = {"description": data.provenance}
        for entry, k in zip(doc["images"], indices):
            entry["file_name"] = f"{stems[k]}.png"
            _save(data, int(k), root / "images" / entry["file_name"])
        out = root / "annotations" / ("instances.json" if split is None else f"instances_{split}.json")
        write_text(out, json.dumps(doc))
    return root


def _voc_xml(data: DetectionData, k: int, stem: str) -> str:
    img = data.images[k]
    objects = "".join(
        f"<object><name>{escape(data.classes[label])}</name><difficult>{int(crowd)}</difficult><bndbox>"
        f"<xmin>{box[0] + 1:.6f}</xmin><ymin>{box[1] + 1:.6f}</ymin><xmax>{box[2]:.6f}</xmax><ymax>{box[3]:.6f}</ymax>"
        "</bndbox></object>"
        for box, label, crowd in zip(img.boxes.astype(np.float64), img.labels, img.iscrowd))
    return (f"<annotation><filename>{stem}.png</filename><size><width>{img.width}</width><height>{img.height}</height>"
            f"<depth>3</depth></size>{objects}</annotation>\n")


def write_voc(data: DetectionData, root: str | Path) -> Path:
    """``root/Annotations/<stem>.xml``, ``root/JPEGImages/<stem>.png``, ``root/classes.txt`` (the class order)
    and, with splits, ``ImageSets/Main/<split>.txt``."""
    root, stems = Path(root), _stems(data)
    make_dir(root / "Annotations")
    write_text(root / "classes.txt", "".join(f"{name}\n" for name in data.classes))
    for split, indices in _groups(data):
        for k in indices:
            _save(data, int(k), root / "JPEGImages" / f"{stems[k]}.png")
            write_text(root / "Annotations" / f"{stems[k]}.xml", _voc_xml(data, int(k), stems[k]))
        if split is not None:
            make_dir(root / "ImageSets" / "Main")
            write_text(root / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{stems[k]}\n" for k in indices))
    return root


def _yolo_lines(data: DetectionData, k: int) -> str:
    """Crowd regions have no YOLO spelling and are left out."""
    img = data.images[k]
    lines = []
    for box, label in zip(img.boxes[~img.iscrowd].astype(np.float64), img.labels[~img.iscrowd]):
        cx, cy = (box[0] + box[2]) / 2 / img.width, (box[1] + box[3]) / 2 / img.height
        w, h = (box[2] - box[0]) / img.width, (box[3] - box[1]) / img.height
        lines.append(f"{label} {cx:.8f} {cy:.8f} {w:.8f} {h:.8f}\n")
    return "".join(lines)


def write_yolo(data: DetectionData, root: str | Path) -> Path:
    """``root/images[/<split>]/<stem>.png``, ``root/labels[/<split>]/<stem>.txt`` and ``root/data.yaml``."""
    root, stems = Path(root), _stems(data)
    for split, indices in _groups(data):
        sub = Path(split) if split else Path()
        make_dir(root / "labels" / sub)
        for k in indices:
            _save(data, int(k), root / "images" / sub / f"{stems[k]}.png")
            write_text(root / "labels" / sub / f"{stems[k]}.txt", _yolo_lines(data, int(k)))
    names = ", ".join(json.dumps(name) for name in data.classes)
    write_text(root / "data.yaml", f"# written by xferdiag\nnc: {len(data.classes)}\nnames: [{names}]\n")
    return root
