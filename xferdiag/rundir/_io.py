"""Atomic files: nothing a killed process leaves behind is half-written.

Every writer goes through :func:`write_json`, :func:`write_bytes` or :func:`atomic_path`: data goes
to a temporary name in the same folder and is moved into place with ``os.replace``, which is atomic
on POSIX and Windows. Readers load arrays without pickle and name the file in every error. This is
the one part of the run directory that computation may use (checkpoints written mid-training).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunDirError


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _not_writable(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)  # mkstemp's 0600 would hide results from other users
        _fsync(tmp_path, os.O_RDONLY)  # the data is on disk before the name points to it
        os.replace(tmp_path, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))  # and so is the rename
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise _not_writable(path, exc) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _not_writable(path: Path, exc: OSError) -> RunDirError:
    reason = exc.strerror or type(exc).__name__
    return RunDirError(f"{path}: cannot write here ({reason}); free space, fix permissions or choose another location")


def _fsync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on Windows: durability is best effort there
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:  # a deferred write error (disk full) surfaces here
            raise
    finally:
        os.close(fd)


def make_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` whose failure (a file in the way, a read-only or virtual file system) is a clean user error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
        if blocker == path:
            raise RunDirError(f"{path}: exists and is a file, not a folder; choose another location") from None
        if blocker is not None:
            raise RunDirError(f"{path}: cannot create this folder because {blocker} is a file; choose another location") from None
        raise _not_writable(path, exc) from None
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


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
