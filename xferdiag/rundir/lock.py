"""One writer per run directory: an ``flock`` the kernel drops with its process, re-entrant per thread."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..atomic import make_dir, not_writable
from ..errors import RunDirError
from .layout import RunDir

try:
    import fcntl
except ImportError:  # Windows: exclusive-create lock files instead
    fcntl = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HELD: dict[tuple[str, int], int] = {}  # (run directory, thread) -> nesting depth of locks this process holds


def _read_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def _acquire_flock(root: Path, lock: Path) -> int:
    """An exclusive ``flock`` on ``lock``; the kernel drops it when its process dies, even by SIGKILL."""
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise not_writable(lock, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _read_owner(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f"process {owner}" if owner else "another process"
                raise RunDirError(f"{root}: in use by {who} (lock file {lock}); wait for it to finish or stop it, then rerun") from None
            raise RunDirError(f"{root}: cannot lock {lock} ({exc.strerror}); use a local disk for run directories") from None
        try:  # the previous owner may have removed the file between our open and flock: retry on the new one
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            return fd
        os.close(fd)
    raise RunDirError(f"{root}: could not take the lock {lock}; try again")


def _acquire_exclusive(root: Path, lock: Path) -> int:
    """Without ``flock`` (Windows): create the file exclusively; take over one whose process is gone."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _pid_alive(owner):
                raise RunDirError(f"{root}: in use by process {owner} (lock file {lock}); "
                                  "wait for it to finish or stop it, then rerun") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        except OSError as exc:
            raise not_writable(lock, exc) from None
        os.write(fd, str(os.getpid()).encode("ascii"))
        return fd
    raise RunDirError(f"{root}: could not take the lock {lock}; try again")


@contextlib.contextmanager
def locked(root: str | os.PathLike) -> Iterator[Path]:
    """Hold ``root/.lock`` (it names our pid) while writing into ``root``.

    A second process gets a :class:`RunDirError` naming the owner. A lock left by a process that
    died (even by SIGKILL) is recovered: the lock is an ``flock`` that the kernel releases with
    its process; the file is only a name tag. Re-entrant within a thread, so ``report`` can run
    ``analyze`` under the lock it already holds.
    """
    root = make_dir(root)
    key = (os.path.realpath(root), threading.get_ident())  # another thread of ours must wait its turn like a process
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield root
        finally:
            _HELD[key] -= 1
        return
    lock = RunDir(root).lock_file
    fd = _acquire_flock(root, lock) if fcntl is not None else _acquire_exclusive(root, lock)
    _HELD[key] = 1
    try:
        yield root
    finally:
        del _HELD[key]
        if fcntl is None:
            os.close(fd)  # Windows cannot remove an open file
        lock.unlink(missing_ok=True)  # with flock: while still holding it, so nobody locks a file about to vanish
        if fcntl is not None:
            os.close(fd)


def holds_lock(func):
    """Decorator for ``func(run_dir, ...)``: check ``run_dir`` is a run directory, then run under its lock."""

    @functools.wraps(func)
    def wrapper(run_dir, *args, **kwargs):
        RunDir(run_dir).check()
        with locked(run_dir):
            return func(run_dir, *args, **kwargs)

    return wrapper


