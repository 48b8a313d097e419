"""The file formats of a run directory: JSON, npz and CSV, written atomically (:mod:`xferdiag.atomic`)
and read back with the file named in every error; arrays load without pickle."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes, write_text
from ..errors import RunDirError


def _plain(value: Any) -> Any:
    """JSON holds plain numbers and strings only: numpy scalars become Python, NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(_plain(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: corrupt JSON ({exc}); delete it and rerun the step that writes it") from None


def write_npz(path: str | os.PathLike, *, compress: bool = True, **arrays: np.ndarray) -> None:
    """``compress=False`` for large float arrays: zlib shrinks them by about a fifth at some 20x the time."""
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load arrays without pickle: a run directory is data, never code."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # zip errors, truncated files, pickled object arrays
        raise RunDirError(f"{path}: unreadable array file ({exc})") from None


def write_csv(path: str | os.PathLike, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(_plain(rows))
    write_text(path, buffer.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
