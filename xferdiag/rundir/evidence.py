"""What the verdict reads of a run, whatever its task: each seed's metrics, history and test records (by
the names :data:`.readers.SEED_RECORDS` writes them under), and the run-level records beside data.json."""

from __future__ import annotations

from ..errors import RunDirError
from ._io import read_json
from .layout import DETECTIONS_JSON, PREDICTIONS_NPZ, RunDir, SeedDir
from .readers import read_history, read_metrics, read_predictions


def _detections(seed: SeedDir) -> list:
    results = read_json(seed.detections_json)
    if not isinstance(results, list):
        raise RunDirError(f"{seed.detections_json}: expected a list of COCO results ({{image_id, category_id, bbox, score}})")
    return results


_SEED_READERS = {"predictions": (lambda s: s.predictions_npz, read_predictions), "detections": (lambda s: s.detections_json, _detections)}


def seed_records(seed: SeedDir) -> dict:
    """Every test record the seed holds, by name (``predictions``: :class:`.readers.Predictions`;
    ``detections``: COCO results)."""
    return {name: read(seed) for name, (path, read) in _SEED_READERS.items() if path(seed).is_file()}


def seed_history(seed: SeedDir) -> dict | None:
    """history.csv's numeric columns, or None for a seed trained elsewhere (an audit)."""
    return read_history(seed) if seed.history_csv.is_file() else None


def seed_evidence(seed: SeedDir) -> dict:
    """``{"name", "metrics", "history", "records"}`` of a finished seed, as a task's verdict takes it."""
    records = seed_records(seed)
    if not records:
        raise RunDirError(f"{seed.path}: no test predictions ({PREDICTIONS_NPZ} or {DETECTIONS_JSON}); the verdict pairs them by seed")
    return {"name": str(seed.path), "metrics": read_metrics(seed), "history": seed_history(seed), "records": records}


def run_records(run: RunDir) -> dict:
    """The run-level records a task kept (``test_ground_truth``: a detection test split's COCO annotations)."""
    if not run.test_annotations_json.is_file():
        return {}
    coco = read_json(run.test_annotations_json)
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise RunDirError(f"{run.test_annotations_json}: expected a COCO annotations object with 'images', 'annotations', 'categories'")
    return {"test_ground_truth": coco}
