"""Pretrained weights for a detector, from a local file only (``weights_only=True``), and which transfer it is.

A file is one of: a whole detector's state_dict (a *source detector*: everything loads except the class
predictor, re-initialised for the target classes), or the state_dict of the classifier the backbone comes
from (a *pretrained backbone* under new detection layers). Either may come as other tools write it: a
torchvision-references checkpoint ``{"model": state_dict, "optimizer": ..., "epoch": ...}``, a DDP
state_dict with ``module.`` prefixes, or xferdiag's own ``DetectionModel`` state (``detector.`` prefixes).
No file: *scratch*. A file that fits neither ends in one line naming what does not fit.
"""

from __future__ import annotations

import argparse
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from ...errors import CheckpointError
from ...models import load_state_dict
from .models import DetectionModel

LEVELS = {
    "detector": "a source detector (its class predictor re-initialised for the target classes)",
    "backbone": "a pretrained classification backbone with new detection layers",
    "scratch": "random initialisation",
}
"""The three transfer levels a run records, from most to least transferred."""
PREDICTORS = ("roi_heads.box_predictor.", "head.classification_head.cls_logits.", "head.classification_head.module_list.")
"""Class-dependent layers of torchvision's detectors (Faster R-CNN; RetinaNet and FCOS; SSD), never loaded."""
WRAPPERS = ("model", "state_dict", "model_state_dict")
PREFIXES = ("module.", "detector.", "model.")
NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: a state_dict, unwrapped from a training checkpoint and DDP prefixes."""
    return read_checkpoint_form(path)[0]


def read_checkpoint_form(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """:func:`read_checkpoint` and the form the file had, in words (run.json's ``audit.checkpoint_form``).

    ``argparse.Namespace`` (the ``args`` torchvision's references store) is the one object allowed beside
    tensors and containers; anything else is refused as by :func:`xferdiag.models.load_state_dict`.
    """
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            raw = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # the strict reader gives the one-line reason (missing, unsafe, corrupt)
        return load_state_dict(path), "state_dict"
    form = "state_dict"
    for key in WRAPPERS:
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw, form = raw[key], f"training checkpoint (state_dict under {key!r})"
            break
    if not isinstance(raw, dict) or not raw or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(f"{path}: expected a state_dict (a dict of tensors), or a training checkpoint holding one "
                              f"under {', '.join(repr(k) for k in WRAPPERS)}")
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in raw):
            raw, form = {k[len(prefix):]: v for k, v in raw.items()}, f"{form}, {prefix!r} prefixes removed"
    return raw, form


def _is_predictor(key: str) -> bool:
    return key.startswith(PREDICTORS)


def _without_absent_stats(state: dict, own: dict) -> dict:
    """Normalisation statistics of a kind the model keeps nowhere (GroupNorm has no running statistics,
    FrozenBatchNorm2d no step count) dropped from ``state``."""
    kinds = {k.rpartition(".")[2] for k in own}
    return {k: v for k, v in state.items() if k.rpartition(".")[2] not in NORM_STATS or k.rpartition(".")[2] in kinds}


def _detector_misfit(state: dict, own: dict, predictor: bool = False) -> list[str]:
    """Why ``state`` is not this detector's (predictor layers aside, unless ``predictor``); empty when it is."""
    def counted(key: str) -> bool:
        return (predictor or not _is_predictor(key)) and not key.endswith("num_batches_tracked")

    keys = [k for k in own if counted(k)]
    missing = [k for k in keys if k not in state]
    shapes = [f"{k} ({_shape(state[k])}, this detector {_shape(own[k])})" if predictor else k
              for k in keys if k in state and state[k].shape != own[k].shape]
    unexpected = [k for k in state if k not in own and counted(k)]
    parts = [f"{label} {', '.join(items[:2])}{' ...' if len(items) > 2 else ''}"
             for label, items in (("missing", missing), ("wrong shape", shapes), ("unexpected", unexpected)) if items]
    return parts


def _shape(tensor: torch.Tensor) -> str:
    return " x ".join(map(str, tensor.shape))


def _by_prefix(state: dict, own: dict) -> dict | None:
    """``own``'s keys found in ``state`` under one common prefix (``features.`` for a MobileNet's body), same
    shapes; BatchNorm step counts too where the file has them (old files do not)."""
    first = next(k for k in own if not k.endswith("num_batches_tracked"))
    prefixes = {k[: len(k) - len(first)] for k in state if k.endswith(first) and (k == first or k[-len(first) - 1] == ".")}
    for prefix in sorted(prefixes, key=len):
        if all(prefix + k in state and state[prefix + k].shape == v.shape for k, v in own.items() if not k.endswith("num_batches_tracked")):
            return {k: state[prefix + k] for k in own if prefix + k in state}
    return None


def _by_order(state: dict, own: dict) -> dict | None:
    """``own``'s tensors matched to ``state``'s in order (a body re-grouped into new Sequentials, as SSD's
    is): the same number of leading tensors, each with the same last name and shape (step counts aside)."""
    own = {k: v for k, v in own.items() if not k.endswith("num_batches_tracked")}
    items = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    if len(items) < len(own):
        return None
    mapped = {}
    for (k, v), (sk, sv) in zip(own.items(), items):
        if k.rpartition(".")[2] != sk.rpartition(".")[2] or v.shape != sv.shape:
            return None
        mapped[k] = sv
    return mapped


def _load_backbone(model: DetectionModel, state: dict) -> bool:
    """Load a classifier's state_dict into the backbone body; False when it does not fit."""
    own = model.backbone.state_dict()
    state = _without_absent_stats(state, own)
    mapped = _by_prefix(state, own) or _by_order(state, own)
    if mapped is None:
        return False
    full = OrderedDict(model.backbone.state_dict())
    full.update(mapped)
    model.backbone.load_state_dict(full)
    return True


def _load_detector(model: DetectionModel, state: dict) -> list[str]:
    """Everything but the predictor from a source detector's state; the predictor keys kept at random init."""
    own = model.detector.state_dict()
    full = OrderedDict((k, state[k] if k in state and not _is_predictor(k) else v) for k, v in own.items())
    model.detector.load_state_dict(full)
    return sorted({k.rpartition(".")[0] for k in own if _is_predictor(k)})


def load_pretrained(model: DetectionModel, path: str | Path | None) -> dict:
    """Load ``path`` into ``model`` and say what was transferred: ``{"level": one of LEVELS, ...}`` for run.json."""
    if not path:
        return {"level": "scratch", "description": LEVELS["scratch"]}
    state = read_checkpoint(path)
    own = model.detector.state_dict()
    detector_state = _without_absent_stats(state, own)
    misfit = _detector_misfit(detector_state, own)
    if not misfit:
        reset = _load_detector(model, detector_state)
        return {"level": "detector", "description": LEVELS["detector"], "checkpoint": str(path), "reinitialised": reset}
    if _load_backbone(model, state):
        return {"level": "backbone", "description": LEVELS["backbone"], "checkpoint": str(path)}
    raise CheckpointError(f"{path}: fits neither the detector {model.name} ({'; '.join(misfit)}) nor its backbone body "
                          f"({len(model.backbone.state_dict())} tensors, first {next(iter(model.backbone.state_dict()))!r}); "
                          "give a state_dict of this detector or of the classifier its backbone comes from")


def load_finetuned(model: DetectionModel, path: str | Path) -> str:
    """Load a detector fine-tuned elsewhere into ``model``, every weight (its class predictor too), and say the
    form the file had. Normalisation statistics the file lacks are not needed: torchvision's frozen BatchNorm
    (its recipe on pretrained weights) keeps no step count and computes what BatchNorm does in eval mode, with
    the same eps (torchvision builds both with 1e-5). Anything else that does not fit ends in one line naming it."""
    state, form = read_checkpoint_form(path)
    own = model.detector.state_dict()
    state = _without_absent_stats(state, own)
    misfit = _detector_misfit(state, own, predictor=True)
    if misfit:
        predictor_only = not _detector_misfit(state, own) and all(k in state for k in own if _is_predictor(k))
        classes = f"{model.num_classes} class{'es' if model.num_classes != 1 else ''}"
        why = (f"its class predictor does not fit the target's {classes} plus the background; audit it "
               "with the data it was fine-tuned on" if predictor_only else
               "give the state_dict of the fine-tuned detector that --model (and --backbone) build")
        raise CheckpointError(f"{path}: not a fine-tuned {model.name} for these data ({'; '.join(misfit)}); {why}")
    model.detector.load_state_dict(OrderedDict((k, state.get(k, v)) for k, v in own.items()))
    return form
