"""The run-directory contract: where each file lives, how it is written, how it is read back.

Every writer goes through :func:`write_json`, :func:`write_bytes` or :func:`atomic_path` so a
killed process never leaves a half-written file: data goes to a temporary name in the same folder
and is moved into place with ``os.replace``, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import RunDirError

SCHEMA_VERSION = 1
STANDARD_ARMS = ("transfer", "scratch")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


@contextlib.contextmanager
def locked(root: str | os.PathLike) -> Iterator[Path]:
    """Hold ``root/.lock`` (holding our pid) while writing; a lock left by a dead process is taken over."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = root / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _pid_alive(owner):
                raise RunDirError(f"{root}: in use by process {owner} (lock file {lock}); wait for it to finish") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        except PermissionError:
            raise RunDirError(f"{root}: not writable; choose another --out or fix the folder's permissions") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    try:
        yield root
    finally:
        lock.unlink(missing_ok=True)
