"""COCO detection data: an instances ``.json`` (or one per split) beside an image folder.

``file_name`` is looked up relative to the folder, its ``images/`` folder, or ``images/<split>/``. Several
annotation files are splits when each names one of train/val/test (``instances_val2017.json``). Category
ids may have gaps (COCO's own run 1..90): classes are the categories in id order, written back as 1..C.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ....errors import DataError
from .core import DetectionData, DetImage, box_arrays, check_size, checked_box, splits_from_names

_SPLIT_WORD = re.compile(r"(trainval|train|val|test)")


def is_coco_json(path: Path) -> bool:
    """Cheap test of a .json file: does its start hold the keys of COCO instances?"""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head or '"categories"' in head


def coco_files(path: Path) -> tuple[Path, list[Path]]:
    """The folder images are found from and the annotation files: ``path`` itself when it is a .json file,
    else the COCO .json files in the folder and its ``annotations/`` folder (only ``instances*.json`` where
    there are such, as beside COCO's own captions and keypoints files)."""
    if path.is_file():
        root = path.parent.parent if path.parent.name == "annotations" else path.parent
        return root, [path]
    found = [f for f in sorted(path.glob("*.json")) + sorted((path / "annotations").glob("*.json")) if is_coco_json(f)]
    instances = [f for f in found if f.stem.startswith("instances")]
    return path, instances or found


def _split_of(files: list[Path]) -> list[str | None]:
    """One split per annotation file, from its name, when there are several."""
    if len(files) == 1:
        return [None]
    splits = []
    for f in files:
        words = set(_SPLIT_WORD.findall(f.stem))
        words = {"train" if w == "trainval" else w for w in words}
        if len(words) != 1:
            names = ", ".join(str(g) for g in files)
            raise DataError(f"{f}: several COCO annotation files ({names}) but this one names no single split "
                            "(train, val or test); keep one file, or name each after its split")
        splits.append(words.pop())
    if len(set(splits)) != len(splits):
        raise DataError(f"{files[0].parent}: two COCO annotation files name the same split ({', '.join(map(str, files))})")
    return splits


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), list):
        raise DataError(f"{path}: not COCO instances: expected an object with 'images', 'annotations' and 'categories' lists")
    if not isinstance(doc.get("categories"), list) or not doc["categories"]:
        raise DataError(f"{path}: COCO instances without a 'categories' list; detection needs the class names")
    return doc


def _categories(path: Path, doc: dict) -> dict[int, str]:
    cats = {}
    for k, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DataError(f"{path}: category #{k} needs an integer 'id' and a string 'name' (got {cat!r:.80})")
        if cat["id"] in cats:
            raise DataError(f"{path}: category id {cat['id']} appears twice")
        cats[cat["id"]] = cat["name"]
    return cats


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _image_path(root: Path, file_name: str, split: str | None) -> Path | None:
    bases = [root, root / "images"] + ([root / "images" / split, root / split] if split else [])
    return next((b / file_name for b in bases if (b / file_name).is_file()), None)


def _images(path: Path, root: Path, doc: dict, split: str | None, seen: dict[int, Path]) -> dict[int, dict]:
    """The file's image entries by id, each checked against its file on disk."""
    images = {}
    for k, entry in enumerate(doc["images"]):
        if not isinstance(entry, dict) or not _is_int(entry.get("id")):
            raise DataError(f"{path}: image entry #{k} needs an integer 'id' (got {entry!r:.80})")
        iid = entry["id"]
        where = f"{path}: image id {iid}"
        if iid in seen:
            raise DataError(f"{where}: duplicate image id (also in {seen[iid]}); image ids must be unique")
        seen[iid] = path
        name, width, height = entry.get("file_name"), entry.get("width"), entry.get("height")
        if not isinstance(name, str) or not _is_int(width) or not _is_int(height) or width < 1 or height < 1:
            raise DataError(f"{where}: needs a string 'file_name' and positive integer 'width' and 'height'")
        found = _image_path(root, name, split)
        if found is None:
            raise DataError(f"{where}: image '{name}' is missing (looked in {root} and {root / 'images'})")
        check_size(found, width, height, where)
        images[iid] = {"entry": entry, "path": found, "boxes": [], "labels": [], "crowd": []}
    return images


def _annotations(path: Path, doc: dict, images: dict[int, dict], label_of: dict[int, int]) -> int:
    """Attach each annotation to its image; return how many boxes were clipped to the image."""
    clipped = 0
    for k, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotation #{k} is not an object")
        aid, iid, cid = ann.get("id", f"#{k}"), ann.get("image_id"), ann.get("category_id")
        where = f"{path}: annotation id {aid} (image id {iid})"
        if not _is_int(iid) or iid not in images:
            raise DataError(f"{where}: refers to an image id that is not among the file's images")
        if not _is_int(cid) or cid not in label_of:
            raise DataError(f"{where}: category_id {cid!r} is outside the classes (category ids {sorted(label_of)})")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise DataError(f"{where}: 'bbox' must be [x, y, width, height] in pixels (got {bbox!r:.80})")
        img = images[iid]
        x, y, w, h = bbox
        box, moved = checked_box((x, y, x + w, y + h), img["entry"]["width"], img["entry"]["height"], where)
        clipped += moved
        img["boxes"].append(box)
        img["labels"].append(label_of[cid])
        img["crowd"].append(bool(ann.get("iscrowd", 0)))
    return clipped


def read_coco(path: Path, spec: str) -> DetectionData:
    """Read COCO instances at ``path`` (a .json file or a folder holding one per split)."""
    root, files = coco_files(path)
    if not files:
        raise DataError(f"{path}: no COCO annotation .json found (in the folder or its annotations/ folder)")
    splits, seen, categories = _split_of(files), {}, None
    records, names, clipped, described = [], [], 0, []
    for f, split in zip(files, splits):
        doc = _read_json(f)
        described.append(_description(doc))
        cats = _categories(f, doc)
        if categories is not None and cats != categories:
            raise DataError(f"{f}: categories differ from those of {files[0]}; every split needs the same categories")
        categories = cats
        label_of = {cid: i for i, cid in enumerate(sorted(cats))}
        images = _images(f, root, doc, split, seen)
        clipped += _annotations(f, doc, images, label_of)
        for iid, img in images.items():
            entry = img["entry"]
            records.append(DetImage(iid, entry["file_name"], entry["width"], entry["height"],
                                    *box_arrays(img["boxes"], img["labels"], img["crowd"]), path=img["path"]))
            names.append(split)
    if not records:
        raise DataError(f"{path}: the COCO annotations list no images")
    classes = tuple(categories[cid] for cid in sorted(categories))
    provenance = next((d for d in described if d), "")
    return DetectionData(spec, "coco", classes, tuple(records), splits_from_names(names), clipped, provenance=provenance)


def _description(doc: dict) -> str:
    """COCO's ``info.description`` (where the data come from), one line; empty where there is none."""
    info = doc.get("info")
    description = info.get("description") if isinstance(info, dict) else None
    return " ".join(description.split()) if isinstance(description, str) else ""

