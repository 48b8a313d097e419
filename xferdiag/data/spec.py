"""What a model takes as input, whatever the kind of data: the one record every modality's dataset reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..modalities.kinds import IMAGE

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""Per-channel mean and std of ImageNet photos: what most pretrained RGB models were normalised with."""


@dataclass(frozen=True)
class InputSpec:
    """What a model wants as input. ``kind``: the modality of its inputs (one of
    :data:`~xferdiag.modalities.kinds.KINDS`); ``size``: an image's side, a table's feature count or a text's
    token length; ``channels``, ``mean`` and ``std`` (and where they came from): images only (0 and empty
    otherwise); ``tokenizer``: a text model's."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    origin: str = ""
    tokenizer: object = field(default=None, compare=False, repr=False)
    kind: str = IMAGE
