"""Typed readers, one per file of a seed folder and of the top level, and the one writer of a finished seed.

Each reader checks what its callers rely on and names the file in its error, so no caller
re-validates: the verdict, the report and :func:`~xferdiag.rundir.validate` all read through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_path
from ..errors import RunDirError
from ._io import (
    read_csv,
    read_json,
    read_npz,
    write_csv,
    write_json,
    write_npz,
)
from .kinds import with_kind
from .layout import DATA_JSON, RunDir, SeedDir

if TYPE_CHECKING:
    import torch


def optional_object(path: Path) -> dict | None:
    """A JSON object if the file exists, None if it does not; corrupt or non-object content raises."""
    if not path.is_file():
        return None
    value = read_json(path)
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: expected a JSON object; delete it and rerun the step that writes it")
    return value


def read_data(run: RunDir) -> dict:
    """data.json with ``classes`` as a non-empty list of strings."""
    data = optional_object(run.data_json)
    if data is None:
        raise RunDirError(f"{run.root}: no {DATA_JSON}; the run directory is incomplete (rerun 'xferdiag finetune' or 'audit')")
    if not isinstance(data.get("classes"), list) or not data["classes"]:
        raise RunDirError(f"{run.data_json}: 'classes' must be a non-empty list of class names")
    data["classes"] = [str(c) for c in data["classes"]]
    return with_kind(data)


def read_metrics(seed: SeedDir) -> dict:
    metrics = read_json(seed.metrics_json)
    if not isinstance(metrics, dict):
        raise RunDirError(f"{seed.metrics_json}: expected a JSON object; rerun the evaluation that writes it")
    return metrics


def read_history(seed: SeedDir) -> dict[str, np.ndarray]:
    """The numeric columns of history.csv, one float array per column (blank cells are NaN)."""
    rows = read_csv(seed.history_csv)
    if not rows:
        raise RunDirError(f"{seed.history_csv}: no epochs recorded")
    columns = {}
    for name in rows[0]:
        if name == "phase":
            continue
        try:
            columns[name] = np.array([float(r[name]) if r[name] not in ("", None) else np.nan for r in rows])
        except ValueError as exc:
            raise RunDirError(f"{seed.history_csv}: column '{name}' is not numeric ({exc})") from None
    columns.setdefault("epoch", np.arange(1, len(rows) + 1, dtype=float))
    return columns


@dataclass(frozen=True)
class Predictions:
    """One arm's test predictions: ``labels`` and ``predictions`` (n,) int64, ``probabilities`` (n, C) or None."""

    labels: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None


def read_predictions(seed: SeedDir, n_classes: int | None = None) -> Predictions:
    """predictions.npz, checked: equal-length non-empty 1-D integer labels and predictions within the classes."""
    path = seed.predictions_npz
    arrays = read_npz(path)
    for key in ("labels", "predictions"):
        if key not in arrays:
            raise RunDirError(f"{path}: no '{key}' array (needs labels and predictions, int64 (n,))")
        values = arrays[key]
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise RunDirError(f"{path}: '{key}' must be a 1-D integer array, got {values.dtype} {values.shape}")
        if n_classes is not None and values.size and (values.min() < 0 or values.max() >= n_classes):
            raise RunDirError(f"{path}: '{key}' outside 0..{n_classes - 1} ({DATA_JSON} lists {n_classes} classes)")
    n = len(arrays["labels"])
    if len(arrays["predictions"]) != n or n == 0:
        raise RunDirError(f"{path}: 'labels' and 'predictions' must be non-empty and of equal length")
    probs = arrays.get("probabilities")
    if probs is not None and n_classes is not None and probs.shape != (n, n_classes):
        raise RunDirError(f"{path}: 'probabilities' must be (n, classes) = ({n}, {n_classes}), got {probs.shape}")
    return Predictions(arrays["labels"].astype(np.int64), arrays["predictions"].astype(np.int64), probs)


def write_model(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """A state dict on the CPU, nothing else (loadable with ``weights_only=True``)."""
    import torch  # here, so that reading a run directory (and ``xferdiag --help``) does not load torch

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)


def write_seed_record(seed: SeedDir, name: str, record) -> None:
    """One test record of a seed, by its name (docs/rundir.md): a dict of numpy arrays as ``NAME.npz`` (arrays
    that are None are left out: classification's probabilities), any other JSON value as ``NAME.json``."""
    arrays = isinstance(record, dict) and bool(record) and all(v is None or isinstance(v, np.ndarray) for v in record.values())
    if arrays:
        write_npz(seed.record_file(name, True), **{k: v for k, v in record.items() if v is not None})
    else:
        write_json(seed.record_file(name, False), record)


RUN_RECORDS = {"test_ground_truth": lambda run, coco: write_json(run.test_annotations_json, coco)}
"""Run-level files a task keeps beside data.json: a detection run's test split in COCO annotations format."""


def write_finished_seed(seed: SeedDir, *, state_dict: dict[str, torch.Tensor], records: dict, metrics: dict,
                        history: list[dict] | None = None) -> None:
    """The files of a finished seed: the model, its history, its test ``records`` (by name, see
    :func:`write_seed_record`), then metrics.json last, since its presence marks the seed as done."""
    write_model(seed.model_pt, state_dict)
    if history is not None:
        columns = list(dict.fromkeys(key for row in history for key in row))  # the trainer's order; the task's own columns
        write_csv(seed.history_csv, columns, [[row.get(c) for c in columns] for row in history])
    for name, record in records.items():
        write_seed_record(seed, name, record)
    write_json(seed.metrics_json, metrics)
    seed.checkpoint_pt.unlink(missing_ok=True)


def write_run_records(run: RunDir, records: dict) -> None:
    """A task's run-level files (by the names of :data:`RUN_RECORDS`)."""
    for name, record in records.items():
        RUN_RECORDS[name](run, record)
