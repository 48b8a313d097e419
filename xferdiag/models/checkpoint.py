"""Safe checkpoint loading: ``weights_only=True`` always, with errors that say what does not fit."""

from __future__ import annotations

import pickle
import re
import warnings
from collections import OrderedDict
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
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:  # a class or function reference: unpickling it would import and possibly run code
            raise CheckpointError(
                f"{path}: refused to load: the file holds Python objects ({found.group(1)}), not only tensors, and loading "
                "them could run code; save a plain state_dict (torch.save(model.state_dict(), path))"
            ) from None
        raise CheckpointError(f"{path}: refused to load: not a plain PyTorch state_dict (corrupt, or content the safe "
                              "weights-only loader does not accept); save one with torch.save(model.state_dict(), path)") from None
    except Exception as exc:  # truncated zip, not a torch file at all
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:120]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}{': ' + reason if reason else ''}); "
                              "check the file is complete") from None
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
    if getattr(state, "_metadata", None) is None:
        # Re-keyed or hand-built dicts lose the per-module version metadata; modules that upgrade
        # old formats (torchvision's MNASNet) then refuse them, so state they are in today's format.
        state = OrderedDict(state)
        state._metadata = getattr(own, "_metadata", None)
    model.load_state_dict(state)
