"""Image folders: ``root/<class>/*.png`` or ``root/{train,val,test}/<class>/*.png``."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...imagefiles import IMAGE_SUFFIXES, check_header

SPLITS = ("train", "val", "test")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_folder(root: str | Path) -> tuple[list[str], list[Path], np.ndarray, np.ndarray | None, np.ndarray]:
    """Return (classes, paths, labels, split-or-None, sizes) for an image folder, checking its shape first;
    ``sizes`` holds each image's (height, width), read from its header."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder with one sub-folder per class")
    subdirs = _class_dirs(root)
    if not subdirs:
        raise DataError(f"{root}: empty; expected one sub-folder per class (or train/val/test sub-folders)")
    presplit = {d.name for d in subdirs} >= {"train", "test"} and {d.name for d in subdirs} <= set(SPLITS)
    groups = [(s, root / s) for s in SPLITS if (root / s).is_dir()] if presplit else [(None, root)]

    classes_by_split = {s: [d.name for d in _class_dirs(folder)] for s, folder in groups}
    classes = sorted(set().union(*classes_by_split.values()))
    if presplit:
        for s, names in classes_by_split.items():
            if sorted(names) != classes:
                missing = sorted(set(classes) - set(names))
                raise DataError(f"{root / s}: classes differ between splits (missing {', '.join(missing)}); "
                                "every split needs the same class folders")
    if len(classes) < 2:
        raise DataError(f"{root}: found {len(classes)} class folder(s); classification needs at least 2")

    paths, labels, splits, sizes, converted = [], [], [], [], Counter()
    for s, folder in groups:
        for label, name in enumerate(classes):
            files = _images_in(folder / name)
            if not files:
                raise DataError(f"{folder / name}: class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for f in files:
                mode, (width, height) = check_header(f)
                sizes.append((height, width))
                if mode not in ("L", "RGB"):
                    converted[mode] += 1
            paths += files
            labels += [label] * len(files)
            splits += [s] * len(files)
    if converted:  # read_image converts them (alpha dropped, 16-bit scaled to 8-bit); say so once
        modes = ", ".join(f"{m}: {k}" for m, k in sorted(converted.items()))
        print(f"xferdiag: warning: {sum(converted.values())} of {len(paths)} images in {root} are not 8-bit grayscale or RGB "
              f"({modes}); they are converted when read", file=sys.stderr)
    split = np.array(splits) if presplit else None
    return classes, paths, np.array(labels, dtype=np.int64), split, np.array(sizes, dtype=np.int64).reshape(-1, 2)
