"""The model side of each modality, as the model builder (:mod:`xferdiag.models.build`) asks it: a zero batch
shaped like a model's input (traced once to check the model takes it) and the transfer-model class that wraps
the backbone; and the models a modality builds itself (its ``BUILTINS``, built by its ``build_builtin``, with
its ``builtin_input_spec`` and ``model_for_data``; its ``DIRECTORY_BUILTINS`` and the models read from a directory,
``hf:DIR``, by its ``model_dir``, ``directory_classifier`` and ``directory_input_spec``), so :mod:`xferdiag.models`
imports no plug-in. Kept apart from :mod:`.registry`, which loads the explainers, so building a model loads none."""

from __future__ import annotations

import torch

from ..data.spec import InputSpec
from .image import model as image
from .table import model as table
from .text import model as text

MODEL_SIDES = {side.NAME: side for side in (image, table, text)}


def input_example(spec: InputSpec, n: int = 2) -> torch.Tensor:
    """A zero batch shaped like the input of a model taking ``spec``."""
    return MODEL_SIDES[spec.kind].example(spec, n)


def transfer_model_class(spec: InputSpec) -> type:
    """The :class:`~xferdiag.models.transfer.TransferModel` (or subclass) a model taking ``spec`` is built as."""
    return MODEL_SIDES[spec.kind].TRANSFER_MODEL


def builtin_side(name: str):
    """The model side that builds ``builtin:NAME`` (its ``BUILTINS`` name it), or None for the shared built-ins."""
    return next((side for side in MODEL_SIDES.values() if name in getattr(side, "BUILTINS", ())), None)


def directory_side():
    """The model side of models read from a directory (``hf:DIR`` and its ``DIRECTORY_BUILTINS``): text's."""
    return next(side for side in MODEL_SIDES.values() if hasattr(side, "directory_classifier"))


def builtin_names() -> tuple[str, ...]:
    """Every ``builtin:NAME`` a modality builds, its directory models' included."""
    return tuple(name for side in MODEL_SIDES.values()
                 for name in (*getattr(side, "BUILTINS", ()), *getattr(side, "DIRECTORY_BUILTINS", ())))


def model_for_data(model: str, data: str) -> str:
    """``model`` completed from the ``data`` by the modality that builds it (the table MLP's width); others unchanged."""
    side = builtin_side(model.removeprefix("builtin:").partition(":")[0]) if model.startswith("builtin:") else None
    return side.model_for_data(model, data) if side is not None else model
