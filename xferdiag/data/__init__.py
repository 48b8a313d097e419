"""What every kind of data shares: a labelled :class:`Domain` holding one modality's :class:`Payload`, its
train/val/test splits and the :class:`InputSpec` a model takes. The loaders and payloads are the modality plug-ins'
(:mod:`xferdiag.modalities`; :func:`xferdiag.modalities.loading.load_domain` reads a data spec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from torch.utils.data import Dataset

from .._validate import check_scalar
from ..errors import DataError
from ..modalities.descriptor import describe_modality
from .spec import InputSpec
from .splits import stratified_split, take_shots

__all__ = ["Domain", "InputSpec", "Payload", "TargetSplits", "split_target"]


class Payload(Protocol):
    """A domain's examples as one modality holds them (each modality plug-in's own: ``ImageTensors``, ``ImageFiles``,
    ``TableRows``, ``Texts``): the one place that knows their kind."""

    kind: str

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> Dataset: ...

    def image_sizes(self, n: int) -> np.ndarray | None: ...

    def native_side(self) -> int | None: ...

    def plain_input(self) -> InputSpec | None:
        """The input a model without convolutions takes from these examples (a table's rows); None where such a
        model needs a spec of its own (images, texts)."""
        ...

    def describe(self, n: int) -> str: ...

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None: ...


@dataclass
class Domain:
    """One labelled collection of examples of one modality (its ``payload``), before any model-specific preprocessing."""

    spec: str
    classes: list[str]
    labels: np.ndarray
    payload: Payload
    split: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """The modality of the examples, one of :data:`~xferdiag.modalities.kinds.KINDS`."""
        return self.payload.kind

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self, indices: np.ndarray, spec: InputSpec, augment: bool = False) -> Dataset:
        """The examples at ``indices``, preprocessed for a model that expects ``spec``."""
        return self.payload.dataset(indices, self.labels[indices], spec, augment)

    def image_sizes(self) -> np.ndarray | None:
        """(N, 2) heights and widths of the images as stored (None for texts and tables): the size a model
        that records none is best fed at (:func:`xferdiag.models.inputs.choose_size`)."""
        return self.payload.image_sizes(len(self))

    def plain_input(self) -> InputSpec | None:
        """See :meth:`Payload.plain_input`."""
        return self.payload.plain_input()

    def native_side(self) -> int | None:
        """The side of square images held in memory: a size a model may run at (None otherwise)."""
        return self.payload.native_side()

    def describe(self) -> str:
        """The data's shape in words, for errors that set it beside what a model expects."""
        return self.payload.describe(len(self))

    def check_fits(self, spec: InputSpec) -> None:
        """The model takes this kind of data, in a shape the data can be brought to; one clear line otherwise."""
        if spec.kind != self.kind:
            raise DataError(f"{self.spec}: {self.describe()}, but the model takes {describe_modality(spec.kind).takes}")
        self.payload.check_fits(self.spec, spec, len(self))


@dataclass
class TargetSplits:
    """Indices of the train/val/test examples of a target domain (after ``shots``); ``left_out``: per split,
    the examples left out before the shots were taken (texts too long to keep whole)."""

    domain: Domain
    indices: dict[str, np.ndarray]
    shots: int | str
    split_seed: int
    left_out: dict[str, int] = field(default_factory=dict)

    def dataset(self, split: str, spec: InputSpec, augment: bool = False) -> Dataset:
        return self.domain.dataset(self.indices[split], spec, augment)

    def sizes(self) -> dict[str, int]:
        return {name: int(len(idx)) for name, idx in self.indices.items()}


def split_target(domain: Domain, val_fraction: float, test_fraction: float, split_seed: int, shots: int | str,
                 keep: np.ndarray | None = None) -> TargetSplits:
    """Use the domain's own split when it has one, else a seeded stratified split; then keep K shots.

    ``keep`` (a boolean per example): the others are left out after the split is drawn, so the kept
    examples land in the same split as without it, and counted per split.
    """
    val_fraction = check_scalar(val_fraction, "val_fraction", float, 0.0, 1.0, inclusive=(True, False))
    test_fraction = check_scalar(test_fraction, "test_fraction", float, 0.0, 1.0, inclusive=(True, False))
    split_seed = check_scalar(split_seed, "split_seed", int, 0)
    if shots != "all":
        shots = check_scalar(shots, "shots", int, 1)
    if domain.split is not None:
        indices = {s: np.flatnonzero(domain.split == s) for s in ("train", "val", "test")}
        if len(indices["val"]) == 0:
            train = indices["train"]
            inner = stratified_split(domain.labels[train], val_fraction / (1 - test_fraction), 0.0, split_seed)
            indices["train"], indices["val"] = train[inner["train"]], train[inner["val"]]
    else:
        indices = stratified_split(domain.labels, val_fraction, test_fraction, split_seed)
    left_out = {} if keep is None else _leave_out(indices, keep)
    if len(indices["val"]) == 0:
        raise DataError("val_fraction: the validation split is empty; raise it or add a val/ folder")
    indices["train"] = take_shots(indices["train"], domain.labels, shots, split_seed)
    return TargetSplits(domain, indices, shots, split_seed, left_out)


def _leave_out(indices: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, int]:
    """Drop the examples ``keep`` rejects from every split, in place; how many per split. A split
    that had examples and loses them all is an error."""
    left_out = {}
    for name, idx in indices.items():
        indices[name] = idx[keep[idx]]
        left_out[name] = int(len(idx) - len(indices[name]))
        if len(idx) and not len(indices[name]):
            raise DataError(f"the {name} split is empty: all its {len(idx)} examples are longer than the model's input "
                            "(max_length) and truncate is off; raise max_length or let them be truncated")
    return left_out
