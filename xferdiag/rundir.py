"""The run-directory contract: where each file lives, how it is written, how it is read back.

Every writer goes through :func:`write_json`, :func:`write_bytes` or :func:`atomic_path` so a
killed process never leaves a half-written file: data goes to a temporary name in the same folder
and is moved into place with ``os.replace``, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import RunDirError

try:
    import fcntl
except ImportError:  # Windows: exclusive-create lock files instead
    fcntl = None

SCHEMA_VERSION = 1
STANDARD_ARMS = ("transfer", "scratch")


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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
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


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
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


class RunDir:
    """Paths of one run directory; reading helpers validate the schema on the way in."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # --- paths -------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def data_json(self) -> Path:
        return self.root / "data.json"

    @property
    def verdict_json(self) -> Path:
        return self.root / "verdict.json"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def explanations(self) -> Path:
        return self.root / "explanations"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def seed_dir(self, arm: str, seed: int) -> Path:
        return self.root / "arms" / arm / f"seed-{seed}"

    # --- discovery ---------------------------------------------------------------------------
    def arms(self) -> list[str]:
        """Arm names present, standard arms first."""
        base = self.root / "arms"
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        return [a for a in STANDARD_ARMS if a in found] + [a for a in found if a not in STANDARD_ARMS]

    def seeds(self, arm: str) -> list[int]:
        """Seeds with finished results (metrics.json present) for ``arm``, ascending."""
        base = self.root / "arms" / arm
        seeds = []
        for p in base.glob("seed-*") if base.is_dir() else []:
            suffix = p.name.removeprefix("seed-")
            if suffix.isdigit() and (p / "metrics.json").is_file():
                seeds.append(int(suffix))
        return sorted(seeds)

    # --- validated reads ---------------------------------------------------------------------
    def check(self) -> dict:
        """Return run.json after checking this is a run directory xferdiag can read."""
        if not self.root.is_dir():
            raise RunDirError(f"{self.root}: not a directory; give the folder made by 'xferdiag finetune' or 'audit'")
        if not self.run_json.is_file():
            raise RunDirError(f"{self.root}: not a run directory (no run.json)")
        run = read_json(self.run_json)
        schema = run.get("schema") if isinstance(run, dict) else None
        if not isinstance(schema, int):
            raise RunDirError(f"{self.run_json}: missing integer 'schema' field")
        if schema > SCHEMA_VERSION:
            raise RunDirError(
                f"{self.root}: run directory has schema {schema}, newer than this xferdiag "
                f"(schema {SCHEMA_VERSION}); upgrade xferdiag"
            )
        if schema < 1:
            raise RunDirError(f"{self.root}: unknown schema version {schema}")
        return run


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
            raise _not_writable(lock, exc) from None
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
                raise RunDirError(f"{root}: in use by process {owner} (lock file {lock}); wait for it to finish or stop it, then rerun") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        except OSError as exc:
            raise _not_writable(lock, exc) from None
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
    lock = root / ".lock"
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


# --- validation of hand-written run directories ------------------------------------------------

VERDICTS = ("positive", "negative", "inconclusive")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _object(path: Path, hint: str = "") -> dict:
    if not path.is_file():
        raise RunDirError(f"{path}: file not found" + (f"; {hint}" if hint else ""))
    value = read_json(path)
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _check_predictions(path: Path, n_classes: int) -> None:
    arrays = read_npz(path)
    for key in ("labels", "predictions"):
        if key not in arrays:
            raise RunDirError(f"{path}: no '{key}' array (needs labels and predictions, int64 (n,))")
        values = arrays[key]
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise RunDirError(f"{path}: '{key}' must be a 1-D integer array, got {values.dtype} {values.shape}")
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise RunDirError(f"{path}: '{key}' outside 0..{n_classes - 1} (data.json lists {n_classes} classes)")
    n = len(arrays["labels"])
    if len(arrays["predictions"]) != n or n == 0:
        raise RunDirError(f"{path}: 'labels' and 'predictions' must be non-empty and of equal length")
    probs = arrays.get("probabilities")
    if probs is not None and probs.shape != (n, n_classes):
        raise RunDirError(f"{path}: 'probabilities' must be (n, classes) = ({n}, {n_classes}), got {probs.shape}")


def validate(root: str | os.PathLike) -> dict:
    """Check what every later step relies on (docs/rundir.md, "Writing one yourself"); return run.json.

    Required: run.json (integer ``schema``, ``config`` an object if present), data.json (non-empty
    ``classes``) and at least one ``arms/<arm>/seed-<k>/metrics.json`` with a numeric
    ``test.accuracy``. Optional files are checked when present: predictions.npz and verdict.json.
    Every error names the file and the field that is missing or wrong.
    """
    run_dir = RunDir(root)
    run = run_dir.check()
    if not isinstance(run.get("config", {}), dict):
        raise RunDirError(f"{run_dir.run_json}: 'config' must be an object of settings")
    data = _object(run_dir.data_json, "write it with at least {\"classes\": [names]}")
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, (str, int)) for c in classes):
        raise RunDirError(f"{run_dir.data_json}: 'classes' must be a non-empty list of class names")
    stray = [p for p in sorted(run_dir.root.glob("arms/*/*/metrics.json"))
             if not (p.parent.name.startswith("seed-") and p.parent.name.removeprefix("seed-").isdigit())]
    if stray:
        raise RunDirError(f"{stray[0]}: seed folders must be named seed-<k> with k an integer (e.g. arms/transfer/seed-0)")
    finished = [(arm, seed) for arm in run_dir.arms() for seed in run_dir.seeds(arm)]
    if not finished:
        raise RunDirError(f"{run_dir.root}: no arms/<arm>/seed-<k>/metrics.json; a run directory needs at least one finished arm")
    for arm, seed in finished:
        folder = run_dir.seed_dir(arm, seed)
        metrics = _object(folder / "metrics.json")
        test = metrics.get("test")
        if not isinstance(test, dict) or not _number(test.get("accuracy")) or not 0 <= test["accuracy"] <= 1:
            raise RunDirError(f"{folder / 'metrics.json'}: needs 'test': {{'accuracy': a number in [0, 1]}}")
        for key in ("macro_f1", "loss"):
            if test.get(key) is not None and not _number(test[key]):
                raise RunDirError(f"{folder / 'metrics.json'}: 'test.{key}' must be a number or null")
        if (folder / "predictions.npz").is_file():
            _check_predictions(folder / "predictions.npz", len(classes))
    if run_dir.verdict_json.is_file():
        verdict = _object(run_dir.verdict_json)
        if verdict.get("verdict") not in VERDICTS or not _number(verdict.get("gap")):
            raise RunDirError(f"{run_dir.verdict_json}: needs 'verdict' ({', '.join(VERDICTS)}) and a numeric 'gap'; "
                              "delete it to have 'xferdiag report' recompute it")
    return run
