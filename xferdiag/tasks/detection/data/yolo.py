"""YOLO detection data: ``images/``, ``labels/*.txt`` (``class cx cy w h`` normalised to [0, 1]) and a
``data.yaml`` with the class names.

Splits come from the folders: ``images/{train,val,test}/`` (Ultralytics) or ``{train,valid,test}/images/``
(Roboflow exports). An image without a label file has no boxes (a negative); a label file without an
image is an error. ``data.yaml`` is read by a small strict parser of the subset these files use, so
PyYAML is not a dependency: ``names`` as a flow list, a block list or an ``id: name`` mapping, and ``nc``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ....errors import DataError
from ....imagefiles import IMAGE_SUFFIXES
from .core import DetectionData, DetImage, box_arrays, checked_box, image_size, splits_from_names

SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
# A normalised value may exceed [0, 1] by float rounding in the tools that write them, no more.
ROUNDING = 1e-6
_FLOW_ITEM = re.compile(r"""\s*('[^']*'|"[^"]*"|[^,]+?)\s*(?:,|$)""")


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _uncomment(line: str) -> str:
    """The line without a trailing ``# comment`` (a # inside quotes stays)."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _flow_list(text: str, where: str) -> list[str]:
    inner = text.strip()[1:-1].strip()
    if not inner:
        return []
    items = [_scalar(m.group(1)) for m in _FLOW_ITEM.finditer(inner) if m.group(1)]
    if any(not item or item[0] in "[{" for item in items):
        raise DataError(f"{where}: 'names' must be a flat list of class names")
    return items


def _block(key: str, lines: list[tuple[int, str]], where: str) -> list[str]:
    """An indented list (``- name``) or mapping (``0: name``, ids 0..n-1 in any order) under ``key``."""
    if lines[0][1].lstrip().startswith("-"):
        for n, text in lines:
            if not text.lstrip().startswith("- "):
                raise DataError(f"{where}:{n}: under '{key}:' expected '- name', got {text.strip()!r}")
        return [_scalar(text.lstrip()[2:]) for _, text in lines]
    mapping = {}
    for n, text in lines:
        ident, sep, name = text.strip().partition(":")
        if not sep or not ident.strip().isdigit():
            raise DataError(f"{where}:{n}: under '{key}:' expected '- name' or 'id: name' lines, got {text.strip()!r}")
        mapping[int(ident)] = _scalar(name)
    if sorted(mapping) != list(range(len(mapping))):
        raise DataError(f"{where}: '{key}' ids must run 0..{len(mapping) - 1}, got {sorted(mapping)}")
    return [mapping[i] for i in range(len(mapping))]


def parse_data_yaml(text: str, where: str) -> tuple[list[str], int | None]:
    """Class names and ``nc`` (None when absent) from a data.yaml's text; other keys are ignored."""
    top: dict[str, tuple[int, str, list]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = _uncomment(raw)
        if not line.strip() or line.strip() == "---":
            continue
        if line[0].isspace():
            if current is None:
                raise DataError(f"{where}:{n}: indented line outside any key")
            top[current][2].append((n, line))
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise DataError(f"{where}:{n}: expected 'key: value', got {line.strip()!r}")
        current = key.strip()
        top[current] = (n, value.strip(), [])
    if "names" not in top:
        raise DataError(f"{where}: no 'names:' with the class names")
    n, value, block = top["names"]
    if value.startswith("["):
        if not value.endswith("]") or block:
            raise DataError(f"{where}:{n}: 'names' flow list must close on its line")
        names = _flow_list(value, f"{where}:{n}")
    elif value or not block:
        raise DataError(f"{where}:{n}: 'names' must be a list or an 'id: name' mapping, got {value!r}")
    else:
        names = _block("names", block, where)
    nc = None
    if "nc" in top:
        if not top["nc"][1].isdigit():
            raise DataError(f"{where}:{top['nc'][0]}: 'nc' must be a whole number, got {top['nc'][1]!r}")
        nc = int(top["nc"][1])
    return names, nc


def _classes(root: Path) -> tuple[str, ...]:
    path = next((root / name for name in YAML_NAMES if (root / name).is_file()), None)
    if path is None:
        raise DataError(f"{root}: no data.yaml with the class names ('names: [...]') beside images/ and labels/")
    names, nc = parse_data_yaml(path.read_text(encoding="utf-8", errors="replace"), str(path))
    if not names or any(not name for name in names):
        raise DataError(f"{path}: 'names' lists no classes (or an empty name)")
    if nc is not None and nc != len(names):
        raise DataError(f"{path}: nc is {nc} but 'names' lists {len(names)} classes")
    return tuple(names)


def yolo_groups(root: Path) -> list[tuple[str | None, Path, Path]]:
    """(split, images folder, labels folder) for each split the folder has, or one group without splits."""
    nested = [(SPLIT_DIRS[d], root / "images" / d, root / "labels" / d) for d in SPLIT_DIRS if (root / "images" / d).is_dir()]
    if nested:
        return nested
    exported = [(SPLIT_DIRS[d], root / d / "images", root / d / "labels") for d in SPLIT_DIRS if (root / d / "images").is_dir()]
    if exported:
        return exported
    if (root / "images").is_dir():
        return [(None, root / "images", root / "labels")]
    raise DataError(f"{root}: no images/ folder (nor images/train, train/images); a YOLO folder holds images/ and labels/")


def _line_box(where: str, tokens: list[str], n_classes: int, width: int, height: int) -> tuple[int, tuple]:
    if len(tokens) != 5:
        extra = "; polygons (segmentation labels) are not boxes" if len(tokens) > 5 else ""
        raise DataError(f"{where}: expected 5 values 'class cx cy w h', got {len(tokens)}{extra}")
    if not tokens[0].isdigit():
        raise DataError(f"{where}: class id {tokens[0]!r} is not a whole number")
    label = int(tokens[0])
    if label >= n_classes:
        raise DataError(f"{where}: class id {label} is outside the classes (0..{n_classes - 1} in data.yaml)")
    try:
        cx, cy, w, h = (float(t) for t in tokens[1:])
    except ValueError:
        raise DataError(f"{where}: {' '.join(tokens[1:])!r} are not four numbers") from None
    values = (cx, cy, w, h)
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"{where}: a box value is not a finite number")
    if any(v > 1 + ROUNDING or v < -ROUNDING for v in values):
        raise DataError(f"{where}: values {' '.join(tokens[1:])} are not normalised to [0, 1]: pixel coordinates in a "
                        f"YOLO label? divide by the image size ({width}x{height})")
    return label, ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def _read_labels(path: Path, n_classes: int, width: int, height: int) -> tuple[tuple, int]:
    """One label file's box arrays, and how many boxes were clipped to the image."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable label file ({exc})") from None
    boxes, labels, clipped = [], [], 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        label, box = _line_box(where, line.split(), n_classes, width, height)
        checked, moved = checked_box(box, width, height, where, pixels_expected=False)
        boxes.append(checked)
        labels.append(label)
        clipped += moved
    return box_arrays(boxes, labels, [False] * len(labels)), clipped


def _group_images(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label file) pairs; every label file must have its image, and stems must be unique."""
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_stem: dict[Path, Path] = {}
    for image in images:
        stem = image.relative_to(images_dir).with_suffix("")
        if stem in by_stem:
            raise DataError(f"{image}: duplicate image id '{stem}' (also {by_stem[stem].name}); one image per label file")
        by_stem[stem] = image
    if labels_dir.is_dir():
        for label in sorted(labels_dir.rglob("*.txt")):
            if label.name == "classes.txt":  # labelImg's list of names beside the labels, not a label file
                continue
            if label.relative_to(labels_dir).with_suffix("") not in by_stem:
                raise DataError(f"{label}: its image is missing (no {label.stem}.* under {images_dir})")
    return [(image, labels_dir / stem.with_suffix(".txt")) for stem, image in by_stem.items()]


def read_yolo(root: Path, spec: str) -> DetectionData:
    """Read a YOLO folder (``data.yaml`` beside ``images/`` and ``labels/``, or split folders)."""
    classes = _classes(root)
    records, names, clipped = [], [], 0
    for split, images_dir, labels_dir in yolo_groups(root):
        for image, label_file in _group_images(images_dir, labels_dir):
            width, height = image_size(image, str(label_file))
            arrays, moved = (_read_labels(label_file, len(classes), width, height) if label_file.is_file()
                             else (box_arrays([], [], []), 0))
            clipped += moved
            records.append(DetImage(len(records) + 1, image.relative_to(root).as_posix(), width, height, *arrays, path=image))
            names.append(split)
    if not records:
        raise DataError(f"{root}: the YOLO folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return DetectionData(spec, "yolo", classes, tuple(records), splits_from_names(names), clipped)
