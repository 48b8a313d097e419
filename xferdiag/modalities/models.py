"""The model side of each modality, as the model builder (:mod:`xferdiag.models.build`) asks it: a zero batch
shaped like a model's input (traced once to check the model takes it) and the transfer-model class that wraps
the backbone. Kept apart from :mod:`.registry`, which loads the explainers, so building a model loads none."""

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
