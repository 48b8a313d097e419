"""Atomic files: nothing a killed process leaves behind is half-written.

Every file xferdiag writes goes through :func:`write_bytes`, :func:`write_text` or :func:`atomic_path`:
data goes to a temporary name in the same folder and is moved into place with ``os.replace``, which is
atomic on POSIX and Windows. It sits below both the run directory (``rundir/``, which adds the file
formats) and computation (``engine/`` writes checkpoints mid-training), so neither reaches into the other.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import RunDirError


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
        raise not_writable(path, exc) from None
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
            raise not_writable(path, exc) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def not_writable(path: Path, exc: OSError) -> RunDirError:
    """The one-line error for a place the operating system will not let us write."""
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
        raise not_writable(path, exc) from None
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
