"""What the verdict reads of a run, whatever its task: each seed's metrics, history and test records (by the
names its task's evaluation gave them, stored by :func:`.readers.write_seed_record`), and the run-level records
beside data.json."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RunDirError
from ._io import read_json, read_npz
from .layout import RECORD_SUFFIXES, RunDir, SeedDir
from .readers import read_history, read_metrics, read_predictions


def _detections(seed: SeedDir) -> list:
    results = read_json(seed.detections_json)
    if not isinstance(results, list):
        raise RunDirError(f"{seed.detections_json}: expected a list of COCO results ({{image_id, category_id, bbox, score}})")
    return results


_TYPED = {"predictions": read_predictions, "detections": _detections}
"""The records this package knows the shape of, read by their typed readers (``predictions``: per-example
arrays, :class:`.readers.Predictions`; ``detections``: COCO results); any other record comes back as its
file holds it (a dict of arrays, or a JSON value) for its task to check."""


def _read_record(seed: SeedDir, name: str):
    if name in _TYPED:
        return _TYPED[name](seed)
    path = seed.record_files(name)[0]
    return read_npz(path) if path.suffix == RECORD_SUFFIXES[0] else read_json(path)


def seed_records(seed: SeedDir, names: Sequence[str] = tuple(_TYPED)) -> dict:
    """The test records of ``names`` (the run's task descriptor's ``records``) the seed holds, by name."""
    return {name: _read_record(seed, name) for name in names if seed.record_files(name)}


def seed_history(seed: SeedDir) -> dict | None:
    """history.csv's numeric columns, or None for a seed trained elsewhere (an audit)."""
    return read_history(seed) if seed.history_csv.is_file() else None


def seed_evidence(seed: SeedDir, names: Sequence[str] = tuple(_TYPED)) -> dict:
    """``{"name", "metrics", "history", "records"}`` of a finished seed, as a task's verdict takes it."""
    records = seed_records(seed, names)
    if not records:
        raise RunDirError(f"{seed.path}: holds none of its task's test records ({', '.join(names)}: NAME.npz or NAME.json); "
                          "the verdict pairs them by seed")
    return {"name": str(seed.path), "metrics": read_metrics(seed), "history": seed_history(seed), "records": records}


def run_records(run: RunDir) -> dict:
    """The run-level records a task kept (``test_ground_truth``: a detection test split's COCO annotations)."""
    if not run.test_annotations_json.is_file():
        return {}
    coco = read_json(run.test_annotations_json)
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise RunDirError(f"{run.test_annotations_json}: expected a COCO annotations object with 'images', 'annotations', 'categories'")
    return {"test_ground_truth": coco}
