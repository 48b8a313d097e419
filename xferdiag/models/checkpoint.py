"""Safe checkpoint loading: ``weights_only=True`` always, with errors that say what does not fit."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``state_dict`` without unpickling arbitrary objects (a hostile file cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported content"
        raise CheckpointError(
            f"{path}: refused to load: the file holds more than tensors ({first[:160]}); "
            "save a plain state_dict (torch.save(model.state_dict(), path))"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file at all
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:160]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state_dict (a dict of tensors)")
    return state


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly; on mismatch name the missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                parts.append(f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}")
        raise CheckpointError(f"{source}: checkpoint does not fit the architecture ({'; '.join(parts)})")
    model.load_state_dict(state)
