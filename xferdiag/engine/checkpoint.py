"""Exact resume: the state a mid-training checkpoint holds, its background writer, and reading it back.

On disk a checkpoint is a plain dict of tensors, numbers and lists (loadable with
``weights_only=True``) whose keys stay as they are, so a run begun by an earlier xferdiag resumes.
In memory it is the typed :class:`Checkpoint` around the :class:`TrainingState` the loop updates.
The caller names the file; the engine knows nothing else of the run directory.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError
from . import distributed


@dataclass(frozen=True)
class Best:
    """The epoch with the lowest selection value so far (the task's: a classifier's validation loss), and its
    weights and validation metrics.

    ``state`` is None where the model itself holds those weights (the best epoch was the last);
    ``val`` is None in checkpoints written before best epochs kept their metrics.
    """

    selection: float = math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    val: dict | None = None


@dataclass
class TrainingState:
    """Where one (arm, seed) stands after ``epoch`` epochs: what the loop updates and a resume restores.

    ``stopped`` (early stopping ran out of patience) is never saved: no checkpoint follows the stop.
    """

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: Best = field(default_factory=Best)
    bad_epochs: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A :class:`TrainingState` with all else an exact continuation needs: the weights after its
    epoch, the phase's optimiser and scheduler, every rank's RNG, and the seconds trained so far."""

    state: TrainingState
    model: dict[str, torch.Tensor]
    optimizer: dict
    scheduler: dict
    phase_index: int
    rng: list[dict] | dict
    seconds: float

    def to_dict(self) -> dict:
        """The file's content; ``history`` is copied, so the epochs that follow do not change it."""
        s, best = self.state, self.state.best
        return {
            "model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "phase_index": self.phase_index,
            "epoch": s.epoch, "best": {"selection": best.selection, "epoch": best.epoch, "state": best.state, "val": best.val},
            "bad_epochs": s.bad_epochs, "history": list(s.history), "rng": self.rng, "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> Checkpoint:
        best = saved["best"]
        selection = best.get("selection", best.get("val_loss"))  # "val_loss" in checkpoints written before tasks
        state = TrainingState(saved["epoch"], saved["history"], Best(selection, best["epoch"], best["state"], best.get("val")),
                              saved["bad_epochs"])
        return cls(state, saved["model"], saved["optimizer"], saved["scheduler"], saved["phase_index"], saved["rng"], saved["seconds"])


def cpu_copy(obj):
    """A CPU copy of every tensor in ``obj`` (nested dicts and lists): a snapshot later steps cannot change."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def rng_states(device: torch.device) -> list[dict]:
    """Every rank's generators (augmentation and dropout draw from them), in rank order; a collective."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return distributed.gather_objects(state)


def restore_rng(states: list[dict] | dict, device: torch.device) -> None:
    """This rank's generators; a resume with more ranks than saved falls back to rank 0's (order still exact)."""
    states = states if isinstance(states, list) else [states]
    state = states[distributed.rank()] if distributed.rank() < len(states) else states[0]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def load_checkpoint(path: Path | None) -> Checkpoint | None:
    """Rank 0 reads ``path`` (onto the CPU: RNG states must stay there) and every rank gets it."""
    saved = distributed.on_main(lambda: _read(path)) if path is not None else None
    return Checkpoint.from_dict(saved) if saved else None


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({type(exc).__name__}); "
                              "delete it to start the seed over") from None


class CheckpointWriter:
    """Writes checkpoints on a background thread, so the next epoch trains while the disk works.

    It is handed snapshots (CPU copies), so each file holds exactly the epoch it names. At most one
    write is in flight, and the trainer joins it before training ends and before any exception
    leaves, so "the last good checkpoint" is always on disk.
    """

    def __init__(self, path: Path):
        self.path = path
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, checkpoint: Checkpoint) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(checkpoint.to_dict(),), name="xferdiag-checkpoint")
        self._thread.start()

    def _write(self, content: dict) -> None:
        try:
            with atomic_path(self.path) as tmp:
                torch.save(content, tmp)
        except BaseException as exc:  # handed to the training thread by wait()
            self._error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wait(self) -> None:
        """Join, and raise what the write raised (a full disk must not go unnoticed)."""
        self.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
