"""What a readable run directory must hold (docs/rundir.md, "Writing one yourself"), checked on the way in."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import RunDirError
from ..tasks.descriptor import describe_task
from ._io import read_json
from .conform import conform
from .documents import RunRecord
from .layout import METRICS_JSON, SEED_PATTERN, RunDir
from .readers import read_predictions

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


def validate(root: str | os.PathLike) -> RunRecord:
    """Check what every later step relies on (docs/rundir.md, "Writing one yourself"); return run.json.

    Required: run.json (integer ``schema``, ``config`` an object if present), data.json (non-empty
    ``classes``) and at least one ``arms/<arm>/seed-<k>/metrics.json`` with a numeric
    ``test.accuracy`` (the headline metric of the run's task: ``test.map`` for detection). Optional files
    are checked when present: predictions.npz and verdict.json.
    Every error names the file and the field that is missing or wrong; run.json comes back typed.
    """
    run_dir = RunDir(root)
    run = run_dir.check()
    if not isinstance(run.get("config", {}), dict):
        raise RunDirError(f"{run_dir.run_json}: 'config' must be an object of settings")
    data = _object(run_dir.data_json, "write it with at least {\"classes\": [names]}")
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, (str, int)) for c in classes):
        raise RunDirError(f"{run_dir.data_json}: 'classes' must be a non-empty list of class names")
    stray = run_dir.stray_seed_folders()
    if stray:
        raise RunDirError(f"{stray[0] / METRICS_JSON}: seed folders must be named seed-<k> with k an integer (e.g. arms/transfer/seed-0)")
    headline = describe_task((run.get("config") or {}).get("task")).metric  # the run's task names its headline test metric
    finished = [(arm, seed) for arm in run_dir.arms() for seed in run_dir.seeds(arm)]
    if not finished:
        raise RunDirError(f"{run_dir.root}: no {SEED_PATTERN}/{METRICS_JSON}; a run directory needs at least one finished arm")
    for arm, seed in finished:
        folder = run_dir.seed(arm, seed)
        metrics = _object(folder.metrics_json)
        test = metrics.get("test")
        if not isinstance(test, dict) or not _number(test.get(headline)) or not 0 <= test[headline] <= 1:
            raise RunDirError(f"{folder.metrics_json}: needs 'test': {{'{headline}': a number in [0, 1]}}")
        for key in ("macro_f1", "loss"):
            if test.get(key) is not None and not _number(test[key]):
                raise RunDirError(f"{folder.metrics_json}: 'test.{key}' must be a number or null")
        if folder.predictions_npz.is_file():
            read_predictions(folder, len(classes))
    if run_dir.verdict_json.is_file():
        verdict = _object(run_dir.verdict_json)
        if verdict.get("verdict") not in VERDICTS or not _number(verdict.get("gap")):
            raise RunDirError(f"{run_dir.verdict_json}: needs 'verdict' ({', '.join(VERDICTS)}) and a numeric 'gap'; "
                              "delete it to have 'xferdiag report' recompute it")
    return conform(run, RunRecord)
