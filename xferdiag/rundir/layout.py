"""Where every file of a run directory lives: the only place its names are spelled (docs/rundir.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunDirError
from ._io import read_json

SCHEMA_VERSION = 1
STANDARD_ARMS = ("transfer", "scratch")

RUN_JSON = "run.json"
DATA_JSON = "data.json"
VERDICT_JSON = "verdict.json"
SHOTS_JSON = "shots.json"
BASELINES_JSON = "baselines.json"
REPORT_HTML = "report.html"
MODEL_PT = "model.pt"
CHECKPOINT_PT = "checkpoint.pt"
HISTORY_CSV = "history.csv"
METRICS_JSON = "metrics.json"
RECORD_SUFFIXES = (".npz", ".json")  # a seed's test record NAME: NAME.npz (named arrays) or NAME.json (any JSON value)
PREDICTIONS_NPZ = "predictions.npz"  # classification's record "predictions"
DETECTIONS_JSON = "detections.json"  # detection's record "detections": test predictions, COCO results format
TEST_ANNOTATIONS_JSON = "test_annotations.json"  # a detection run's test ground truth, COCO annotations format
FEATURES_NPZ = "features.npz"
SHIFT_JSON = "shift.json"
EMBEDDING_NPZ = "embedding.npz"
SIMILARITY_JSON = "similarity.json"
TRANSFERABILITY_JSON = "transferability.json"
INDEX_JSON = "index.json"
MAPS_NPZ = "maps.npz"
RANKING_JSON = "ranking.json"  # what 'xferdiag rank' writes into its own folder (not a run directory)
RANKING_CSV = "ranking.csv"
RANK_RUNS = "finetuned"  # 'rank --then-finetune K': one run directory per fine-tuned candidate, in rank's folder
RANK_COMPARE_HTML = "compare.html"  # and the comparison of those runs (+ .csv, .json beside it)

SEED_PATTERN = "arms/<arm>/seed-<k>"
"""How messages name a seed folder in general."""


def finished_seeds_glob(arm: str) -> str:
    """How messages name the finished seeds of ``arm``: ``arms/<arm>/seed-*/metrics.json``."""
    return f"arms/{arm}/seed-*/{METRICS_JSON}"


class _File:
    """A path under a folder attribute of its owner: ``verdict_json = _File("root", VERDICT_JSON)``
    makes ``run.verdict_json`` the path ``run.root / "verdict.json"``."""

    def __init__(self, folder: str, name: str):
        self.folder, self.name = folder, name

    def __get__(self, owner, owner_type=None) -> Path:
        if owner is None:
            return self
        return getattr(owner, self.folder) / self.name


@dataclass(frozen=True)
class SeedDir:
    """One arm's results for one seed: ``arms/<arm>/seed-<k>/``."""

    path: Path
    arm: str
    seed: int

    model_pt = _File("path", MODEL_PT)
    checkpoint_pt = _File("path", CHECKPOINT_PT)
    history_csv = _File("path", HISTORY_CSV)
    metrics_json = _File("path", METRICS_JSON)
    predictions_npz = _File("path", PREDICTIONS_NPZ)
    detections_json = _File("path", DETECTIONS_JSON)

    def record_file(self, name: str, arrays: bool) -> Path:
        """Where the seed keeps its test record ``name`` (a task's evaluation names its records): ``NAME.npz`` for
        named arrays, ``NAME.json`` for any other JSON value (``predictions.npz``, ``detections.json``)."""
        if not name.isidentifier():
            raise ValueError(f"record name: must be a plain identifier, got {name!r}")
        return self.path / f"{name}{RECORD_SUFFIXES[0] if arrays else RECORD_SUFFIXES[1]}"

    def record_files(self, name: str) -> list[Path]:
        """The files of record ``name`` the seed holds (none, or one)."""
        return [path for path in (self.record_file(name, True), self.record_file(name, False)) if path.is_file()]

    @property
    def finished(self) -> bool:
        """A seed is finished once its metrics are written (the last file the trainer writes)."""
        return self.metrics_json.is_file()


class RunDir:
    """Paths of one run directory, discovery of its arms and seeds, and the check that it is one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # --- files at the top --------------------------------------------------------------------
    run_json = _File("root", RUN_JSON)
    data_json = _File("root", DATA_JSON)
    verdict_json = _File("root", VERDICT_JSON)
    shots_json = _File("root", SHOTS_JSON)
    baselines_json = _File("root", BASELINES_JSON)
    test_annotations_json = _File("root", TEST_ANNOTATIONS_JSON)
    report_html = _File("root", REPORT_HTML)
    lock_file = _File("root", ".lock")

    # --- analysis/ ---------------------------------------------------------------------------
    analysis = _File("root", "analysis")
    features_npz = _File("analysis", FEATURES_NPZ)
    shift_json = _File("analysis", SHIFT_JSON)
    embedding_npz = _File("analysis", EMBEDDING_NPZ)
    similarity_json = _File("analysis", SIMILARITY_JSON)
    transferability_json = _File("analysis", TRANSFERABILITY_JSON)

    # --- explanations/ -----------------------------------------------------------------------
    explanations = _File("root", "explanations")
    index_json = _File("explanations", INDEX_JSON)
    maps_npz = _File("explanations", MAPS_NPZ)

    # --- shots/<k>/: one training-set size of a run over several ----------------------------
    def shots_point(self, shots: int | str) -> Path:
        """The run directory of training-set size ``shots`` (the largest size is the run itself)."""
        return self.root / "shots" / str(shots)

    # --- arms/<arm>/seed-<k>/ ----------------------------------------------------------------
    arms_dir = _File("root", "arms")

    def seed(self, arm: str, seed: int) -> SeedDir:
        return SeedDir(self.arms_dir / arm / f"seed-{seed}", arm, seed)

    def seed_dir(self, arm: str, seed: int) -> Path:
        return self.seed(arm, seed).path

    def arms(self) -> list[str]:
        """Arm names present, standard arms first."""
        base = self.arms_dir
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        return [a for a in STANDARD_ARMS if a in found] + [a for a in found if a not in STANDARD_ARMS]

    def seeds(self, arm: str) -> list[int]:
        """Seeds with finished results (metrics.json present) for ``arm``, ascending."""
        base = self.arms_dir / arm
        seeds = []
        for p in base.glob("seed-*") if base.is_dir() else []:
            suffix = p.name.removeprefix("seed-")
            if suffix.isdigit() and (p / METRICS_JSON).is_file():
                seeds.append(int(suffix))
        return sorted(seeds)

    def stray_seed_folders(self) -> list[Path]:
        """Folders holding metrics that are not named ``seed-<k>``."""
        return [p.parent for p in sorted(self.root.glob(f"arms/*/*/{METRICS_JSON}"))
                if not (p.parent.name.startswith("seed-") and p.parent.name.removeprefix("seed-").isdigit())]

    # --- the check every command starts with -------------------------------------------------
    def check(self) -> dict:
        """Return run.json after checking this is a run directory xferdiag can read."""
        if not self.root.is_dir():
            raise RunDirError(f"{self.root}: not a directory; give the folder made by 'xferdiag finetune' or 'audit'")
        if not self.run_json.is_file():
            raise RunDirError(f"{self.root}: not a run directory (no {RUN_JSON})")
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
