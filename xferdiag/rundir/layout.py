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
REPORT_HTML = "report.html"
MODEL_PT = "model.pt"
CHECKPOINT_PT = "checkpoint.pt"
HISTORY_CSV = "history.csv"
METRICS_JSON = "metrics.json"
PREDICTIONS_NPZ = "predictions.npz"
FEATURES_NPZ = "features.npz"
SHIFT_JSON = "shift.json"
EMBEDDING_NPZ = "embedding.npz"
SIMILARITY_JSON = "similarity.json"
TRANSFERABILITY_JSON = "transferability.json"
INDEX_JSON = "index.json"
MAPS_NPZ = "maps.npz"
RANKING_JSON = "ranking.json"  # what 'xferdiag rank' writes into its own folder (not a run directory)
RANKING_CSV = "ranking.csv"
HISTORY_COLUMNS = ("epoch", "phase", "train_loss", "val_loss", "val_accuracy", "lr", "seconds")
"""history.csv's columns, in order (docs/rundir.md)."""
SEED_PATTERN = "arms/<arm>/seed-<k>"
"""How messages name a seed folder in general."""


def finished_seeds_glob(arm: str) -> str:
    """How messages name the finished seeds of ``arm``: ``arms/<arm>/seed-*/metrics.json``."""
    return f"arms/{arm}/seed-*/{METRICS_JSON}"


@dataclass(frozen=True)
class SeedDir:
    """One arm's results for one seed: ``arms/<arm>/seed-<k>/``."""

    path: Path
    arm: str
    seed: int

    @property
    def model_pt(self) -> Path:
        return self.path / MODEL_PT

    @property
    def checkpoint_pt(self) -> Path:
        return self.path / CHECKPOINT_PT

    @property
    def history_csv(self) -> Path:
        return self.path / HISTORY_CSV

    @property
    def metrics_json(self) -> Path:
        return self.path / METRICS_JSON

    @property
    def predictions_npz(self) -> Path:
        return self.path / PREDICTIONS_NPZ

    @property
    def finished(self) -> bool:
        """A seed is finished once its metrics are written (the last file the trainer writes)."""
        return self.metrics_json.is_file()


class RunDir:
    """Paths of one run directory, discovery of its arms and seeds, and the check that it is one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # --- files at the top --------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def data_json(self) -> Path:
        return self.root / DATA_JSON

    @property
    def verdict_json(self) -> Path:
        return self.root / VERDICT_JSON

    @property
    def shots_json(self) -> Path:
        return self.root / SHOTS_JSON

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    # --- analysis/ ---------------------------------------------------------------------------
    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def features_npz(self) -> Path:
        return self.analysis / FEATURES_NPZ

    @property
    def shift_json(self) -> Path:
        return self.analysis / SHIFT_JSON

    @property
    def embedding_npz(self) -> Path:
        return self.analysis / EMBEDDING_NPZ

    @property
    def similarity_json(self) -> Path:
        return self.analysis / SIMILARITY_JSON

    @property
    def transferability_json(self) -> Path:
        return self.analysis / TRANSFERABILITY_JSON

    # --- explanations/ -----------------------------------------------------------------------
    @property
    def explanations(self) -> Path:
        return self.root / "explanations"

    @property
    def index_json(self) -> Path:
        return self.explanations / INDEX_JSON

    @property
    def maps_npz(self) -> Path:
        return self.explanations / MAPS_NPZ

    # --- shots/<k>/: one training-set size of a run over several ----------------------------
    def shots_point(self, shots: int | str) -> Path:
        """The run directory of training-set size ``shots`` (the largest size is the run itself)."""
        return self.root / "shots" / str(shots)

    # --- arms/<arm>/seed-<k>/ ----------------------------------------------------------------
    @property
    def arms_dir(self) -> Path:
        return self.root / "arms"

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
