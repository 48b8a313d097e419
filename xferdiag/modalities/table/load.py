"""Tables: CSV files, ``.npz`` with a 2-D ``x``, and built-in domains from scikit-learn's breast cancer data.

A table reaches the model as raw feature values (float32); standardisation is the model's job
(``builtin:tabular-mlp`` carries it in its first layer), so every arm and every later step sees the
same numbers. A CSV spec is ``PATH.csv`` (labels in the column ``label``) or ``PATH.csv:COLUMN``.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ...data import Domain
from ...data.arrays import labels_and_split, read_arrays
from ...data.spec import InputSpec
from ...errors import DataError
from ..kinds import TABLE

DEFAULT_LABEL = "label"
SPLIT_COLUMN = "split"
CSV_SPEC = re.compile(r"^(?P<path>.+\.csv)(?::(?P<label>[^:/\\]+))?$", re.IGNORECASE)
CANCER_FEATURE = "mean texture"
SCENARIOS = {"tabular": ("cancer:low-texture", "cancer:high-texture")}


@dataclass
class Table:
    """Rows (N, F) float32, integer labels, class and feature names, and an optional given split."""

    rows: np.ndarray
    labels: np.ndarray
    classes: list[str]
    feature_names: list[str]
    split: np.ndarray | None = None


class TableSet(TensorDataset):
    """Rows as float tensors with their labels; checks the width against a table model's spec."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray, spec: InputSpec):
        if spec.size != rows.shape[1]:
            raise DataError(f"the table has {rows.shape[1]} feature columns but the model takes {spec.size}; "
                            "source and target tables need the same feature columns")
        super().__init__(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)),
                         torch.as_tensor(labels, dtype=torch.long))


@dataclass
class TableRows:
    """A domain's table: rows (N, F) float32 and the name of each feature column."""

    rows: np.ndarray
    feature_names: list[str]
    kind = TABLE

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> TableSet:
        return TableSet(self.rows[indices], labels, spec)

    def image_sizes(self, n: int) -> None:
        return None

    def native_side(self) -> None:
        return None

    def plain_input(self) -> InputSpec:
        return InputSpec(0, int(self.rows.shape[1]), (), (), origin="a model without convolutions on a table: one row of "
                         f"{self.rows.shape[1]} features", kind=TABLE)

    def describe(self, n: int) -> str:
        return f"a table of {n} rows x {self.rows.shape[1]} features"

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None:
        """The width is checked where the rows meet the model (:class:`TableSet`)."""


def csv_spec(spec: str) -> tuple[Path, str] | None:
    """(path, label column) for ``PATH.csv`` or ``PATH.csv:COLUMN``; None for anything else."""
    match = CSV_SPEC.match(spec)
    return (Path(match["path"]), match["label"] or DEFAULT_LABEL) if match else None


def _class_ids(values: list[str], path: Path) -> tuple[np.ndarray, list[str]]:
    """Integer labels keep their value as class id (so a class missing from one table keeps its id);
    text labels are numbered in sorted order."""
    try:
        ids = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        classes = sorted(set(values))
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup[v] for v in values], dtype=np.int64), classes
    if ids.min(initial=0) < 0:
        raise DataError(f"{path}: integer labels must be >= 0, got {ids.min()}")
    return ids, [str(i) for i in range(int(ids.max(initial=-1)) + 1)]


def load_csv_table(path: str | Path, label_column: str = DEFAULT_LABEL) -> Table:
    """Read a CSV with a header row: one label column, an optional ``split`` column, numeric features."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in lines[0]]
    if label_column not in header:
        raise DataError(f"{path}: no label column {label_column!r} (columns: {', '.join(header[:12])}"
                        f"{' ...' if len(header) > 12 else ''}); name it with --label-column or PATH.csv:COLUMN")
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise DataError(f"{path}: row {number} has {len(line)} cells but the header has {len(header)}")
    columns = {name: [line[j].strip() for line in lines[1:]] for j, name in enumerate(header)}
    feature_names = [name for name in header if name not in (label_column, SPLIT_COLUMN)]
    if not feature_names:
        raise DataError(f"{path}: no feature columns besides {label_column!r}")
    rows = np.empty((len(lines) - 1, len(feature_names)), dtype=np.float32)
    for j, name in enumerate(feature_names):
        for i, cell in enumerate(columns[name]):
            try:
                rows[i, j] = float(cell) if cell else np.nan
            except ValueError:
                raise DataError(f"{path}: column {name!r} is not numeric (row {i + 2}: {cell[:40]!r}); "
                                "encode it as numbers or drop the column") from None
            if not np.isfinite(rows[i, j]):
                raise DataError(f"{path}: column {name!r} has a missing or infinite value in row {i + 2}; "
                                "fill or drop missing values")
    labels, classes = _class_ids(columns[label_column], path)
    split = None
    if SPLIT_COLUMN in header and label_column != SPLIT_COLUMN:
        split = np.array([s.lower() for s in columns[SPLIT_COLUMN]])
        if not set(split) <= {"train", "val", "test"} or not {"train", "test"} <= set(split):
            raise DataError(f"{path}: column 'split' must hold train/val/test per row, with train and test present")
    return _checked(Table(rows, labels, classes, feature_names, split), path)


def load(spec: str) -> Domain | None:
    """The table ``spec`` names (``cancer:NAME``, a CSV without a text column, a ``.npz`` with a 2-D ``x``); None
    for any other data (the modality's loader, :data:`xferdiag.modalities.loading.BUILT_IN`)."""
    if spec.startswith("cancer:"):
        table = load_cancer_domain(spec.split(":", 1)[1])
    elif csv_spec(spec):
        table = load_csv_table(*csv_spec(spec))
    elif Path(spec).suffix.lower() == ".npz" and npz_is_table(Path(spec)):
        table = load_npz_table(Path(spec))
    else:
        return None
    return Domain(spec, table.classes, table.labels, TableRows(table.rows, table.feature_names), split=table.split)


def npz_is_table(path: str | Path) -> bool:
    """Whether ``x`` in the ``.npz`` is 2-D, read from its header only (image arrays can be large)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("x.npy") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return len(read(fh)[0]) == 2
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


def load_npz_table(path: str | Path) -> Table:
    """``x`` (N, F) numbers, ``y`` (N,) labels 0..C-1, optional ``split``, ``classes``, ``feature_names``."""
    path = Path(path)
    arrays = read_arrays(path)
    classes, labels, split = labels_and_split(arrays, path)
    x = arrays["x"]
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{path}: 'x' must be a 2-D numeric table (rows, features), got {x.dtype} {x.shape}")
    names = [str(n) for n in arrays["feature_names"]] if "feature_names" in arrays else [f"x{j}" for j in range(x.shape[1])]
    if len(names) != x.shape[1]:
        raise DataError(f"{path}: 'feature_names' has {len(names)} names for {x.shape[1]} columns of 'x'")
    rows = x.astype(np.float32)
    if not np.isfinite(rows).all():
        raise DataError(f"{path}: 'x' contains NaN or infinite values")
    return _checked(Table(rows, labels, classes, names, split), path)


def _checked(table: Table, path: Path) -> Table:
    if len(np.unique(table.labels)) < 2:
        raise DataError(f"{path}: found {len(np.unique(table.labels))} class(es); classification needs at least 2")
    if len(set(table.feature_names)) != len(table.feature_names):
        raise DataError(f"{path}: feature names must be unique")
    return table


def load_cancer_domain(name: str) -> Table:
    """scikit-learn's breast cancer table (shipped offline) split at the median of 'mean texture'.

    ``low-texture`` (source) and ``high-texture`` (target) differ in that feature and the ones it
    correlates with, and in class balance (benign is more common at low texture).
    """
    from sklearn.datasets import load_breast_cancer

    if name not in ("low-texture", "high-texture"):
        raise DataError(f"cancer:{name}: unknown built-in table; choose cancer:low-texture or cancer:high-texture")
    data = load_breast_cancer()
    column = list(data.feature_names).index(CANCER_FEATURE)
    low = data.data[:, column] <= np.median(data.data[:, column])
    keep = low if name == "low-texture" else ~low
    return Table(data.data[keep].astype(np.float32), data.target[keep].astype(np.int64),
                 [str(c) for c in data.target_names], [str(f) for f in data.feature_names])
