"""Which detection format a folder holds, and reading it: ``coco:PATH``, ``voc:PATH``, ``yolo:PATH`` or a bare path."""

from __future__ import annotations

from pathlib import Path

from ....errors import DataError
from .coco import coco_files, is_coco_json, read_coco
from .core import DetectionData
from .voc import read_voc
from .yolo import YAML_NAMES, read_yolo

READERS = {"coco": read_coco, "voc": read_voc, "yolo": read_yolo}


def detect_format(path: str | Path) -> str | None:
    """'coco', 'voc' or 'yolo' when the folder (or .json file) looks like one; None otherwise (e.g. an
    image-classification folder). Cheap: looks at names, opens no image."""
    path = Path(path)
    if path.is_file():
        return "coco" if path.suffix.lower() == ".json" and is_coco_json(path) else None
    if not path.is_dir():
        return None
    if (path / "Annotations").is_dir() and any((path / "Annotations").glob("*.xml")):
        return "voc"
    if any((path / name).is_file() for name in YAML_NAMES) and (
            (path / "images").is_dir() or any((path / d / "images").is_dir() for d in ("train", "valid", "val", "test"))):
        return "yolo"
    if coco_files(path)[1]:
        return "coco"
    return None


def split_spec(spec: str) -> tuple[str | None, Path]:
    """(named format or None, path) of a ``--data`` value."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in READERS:
        return prefix, Path(rest)
    return None, Path(spec)


def load_detection(spec: str) -> DetectionData:
    """Read detection data named by ``spec``; every box is checked (see :func:`.core.checked_box`)."""
    fmt, path = split_spec(spec)
    if not path.exists():
        raise DataError(f"{path}: detection data not found")
    if fmt is None:
        fmt = detect_format(path)
        if fmt is None:
            raise DataError(f"{path}: not a detection dataset: expected a COCO .json (or a folder with one), a VOC folder "
                            "(Annotations/, JPEGImages/) or a YOLO folder (data.yaml, images/, labels/); or name it as "
                            "coco:PATH, voc:PATH or yolo:PATH")
    elif fmt != "coco" and not path.is_dir():
        raise DataError(f"{path}: {fmt}: expects a folder")
    data = READERS[fmt](path, spec)
    if not any(len(img.boxes) for img in data.images):
        raise DataError(f"{path}: {len(data)} images but not one box in them ({fmt}); check the annotations are where the format puts them")
    return data
