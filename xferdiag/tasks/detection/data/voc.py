"""Pascal VOC detection data: ``Annotations/*.xml``, ``JPEGImages/``, optional ``ImageSets/Main/{train,val,test}.txt``.

VOC pixel coordinates are 1-based and inclusive; boxes become 0-based x1 y1 x2 y2 as detectron2 reads them
(``xmin - 1``, ``ymin - 1``, ``xmax``, ``ymax``). ``difficult`` objects become ignored regions (COCO's
``iscrowd``): neither a miss nor a hit, as in the VOC evaluation. Classes are the object names, sorted,
unless a ``classes.txt`` (one name a line) beside ``Annotations/`` fixes their order and set.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ....errors import DataError
from .core import DetectionData, DetImage, box_arrays, check_size, checked_box, image_size, splits_from_names

LISTS = ("train", "val", "test")
CLASS_LIST = "classes.txt"


def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"{where}: <{tag}> is missing or empty")
    return child.text.strip()


def _number(node: ET.Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: <{tag}> is {text!r}, not a number") from None


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def _objects(path: Path, root: ET.Element) -> list[tuple[str, tuple[float, ...], bool]]:
    """(name, (x1, y1, x2, y2) 0-based, difficult) for each <object>."""
    found = []
    for k, obj in enumerate(root.findall("object")):
        where = f"{path}: object {k + 1}"
        name = _text(obj, "name", where)
        where = f"{where} ('{name}')"
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{where}: <bndbox> is missing")
        xmin, ymin, xmax, ymax = (_number(box, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        difficult = obj.find("difficult")
        hard = difficult is not None and (difficult.text or "0").strip() not in ("0", "")
        found.append((name, (xmin - 1.0, ymin - 1.0, xmax, ymax), hard))
    return found


def _image(folder: Path, path: Path, root: ET.Element) -> tuple[Path, int, int]:
    """The image an annotation names, and its size (checked against <size> when that is given)."""
    node = root.find("filename")
    name = node.text.strip() if node is not None and node.text and node.text.strip() else f"{path.stem}.jpg"
    image = folder / "JPEGImages" / name
    size = root.find("size")
    if size is None:
        width, height = image_size(image, str(path))
        return image, width, height
    width, height = int(_number(size, "width", str(path))), int(_number(size, "height", str(path)))
    check_size(image, width, height, str(path))
    return image, width, height


def _split_lists(folder: Path, stems: set[str]) -> dict[str, str] | None:
    """stem -> split from ``ImageSets/Main``; None when the folder has no split lists."""
    main = folder / "ImageSets" / "Main"
    files = {s: main / f"{s}.txt" for s in LISTS if (main / f"{s}.txt").is_file()}
    if "train" not in files and (main / "trainval.txt").is_file():
        files["train"] = main / "trainval.txt"
    if not files:
        return None
    split_of: dict[str, str] = {}
    for split, f in files.items():
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            stem = line.split()[0]
            if stem not in stems:
                raise DataError(f"{f}:{n}: '{stem}' has no Annotations/{stem}.xml")
            if stem in split_of:
                raise DataError(f"{f}:{n}: duplicate image id '{stem}' (already listed for {split_of[stem]})")
            split_of[stem] = split
    return split_of


def _read_all(folder: Path, xmls: list[Path]) -> tuple[list, set[str]]:
    """Every annotation parsed, with no duplicate image; and the class names met."""
    parsed, by_image, names = [], {}, set()
    for path in xmls:
        root = _parse(path)
        image, width, height = _image(folder, path, root)
        if image in by_image:
            raise DataError(f"{path}: duplicate image id: names {image.name}, as {by_image[image]} does")
        by_image[image] = path
        objects = _objects(path, root)
        names.update(name for name, _, _ in objects)
        parsed.append((path, image, width, height, objects))
    return parsed, names


def _classes(folder: Path, parsed: list) -> tuple[str, ...]:
    """The names in ``classes.txt``; an object named otherwise is outside the classes."""
    path = folder / CLASS_LIST
    classes = tuple(line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip())
    if len(set(classes)) != len(classes) or not classes:
        raise DataError(f"{path}: lists no classes, or a class twice")
    for xml, _, _, _, objects in parsed:
        for j, (name, _, _) in enumerate(objects):
            if name not in classes:
                raise DataError(f"{xml}: object {j + 1} ('{name}'): class is outside the classes listed in {path}")
    return classes


def read_voc(folder: Path, spec: str) -> DetectionData:
    """Read a VOC folder (the one holding ``Annotations/`` and ``JPEGImages/``)."""
    xmls = sorted((folder / "Annotations").glob("*.xml"))
    if not xmls:
        raise DataError(f"{folder}: no Annotations/*.xml; a VOC folder holds Annotations/ and JPEGImages/")
    split_of = _split_lists(folder, {p.stem for p in xmls})
    if split_of is not None:
        xmls = [p for p in xmls if p.stem in split_of]
    left_out = 0 if split_of is None else len(list((folder / "Annotations").glob("*.xml"))) - len(xmls)
    parsed, names = _read_all(folder, xmls)
    classes = _classes(folder, parsed) if (folder / CLASS_LIST).is_file() else tuple(sorted(names))
    label_of = {name: i for i, name in enumerate(classes)}
    records, clipped, hard = [], 0, 0
    for k, (path, image, width, height, objects) in enumerate(parsed):
        boxes, labels, crowd = [], [], []
        for j, (name, box, difficult) in enumerate(objects):
            checked, moved = checked_box(box, width, height, f"{path}: object {j + 1} ('{name}')")
            clipped += moved
            hard += difficult
            boxes.append(checked)
            labels.append(label_of[name])
            crowd.append(difficult)
        records.append(DetImage(k + 1, path.stem, width, height, *box_arrays(boxes, labels, crowd), path=image))
    notes = []
    if hard:
        notes.append(f"{hard} boxes marked 'difficult' are ignored regions (neither a miss nor a hit), as in VOC's evaluation")
    if left_out:
        notes.append(f"{left_out} annotated images are in no ImageSets/Main list and are left out")
    splits = None if split_of is None else splits_from_names([split_of[p.stem] for p, *_ in parsed])
    return DetectionData(spec, "voc", classes, tuple(records), splits, clipped, tuple(notes))
