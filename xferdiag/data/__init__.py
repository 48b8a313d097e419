"""Datasets: built-in digit, table and text domains, image folders, ``.npz`` arrays, CSV tables and
text files (CSV/JSONL, folders of ``.txt``) behind one interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from torch.utils.data import Dataset

from .._validate import check_scalar
from ..errors import DataError
from ..modalities.descriptor import describe_modality
from .arrays import load_npz_images
from .digits import SCENARIOS as DIGIT_SCENARIOS, load_digits_domain
from .fashion import CLASSES as FASHION_CLASSES, load_fashion_mnist
from .folder import scan_folder
from .images import ImageFiles, ImageTensors
from .spec import InputSpec
from .splits import stratified_split, take_shots
from .tables import (
    SCENARIOS as TABLE_SCENARIOS,
    Table,
    TableRows,
    csv_spec,
    load_cancer_domain,
    load_csv_table,
    load_npz_table,
    npz_is_table,
)
from .text import Corpus, Texts, load_corpus

__all__ = ["LOADERS", "Domain", "InputSpec", "Payload", "SCENARIOS", "TargetSplits", "load_domain", "split_target"]

SCENARIOS = {**DIGIT_SCENARIOS, **TABLE_SCENARIOS}


class Payload(Protocol):
    """A domain's examples as one modality holds them (:class:`~.images.ImageTensors`, :class:`~.images.ImageFiles`,
    :class:`~.tables.TableRows`, :class:`~.text.Texts`): the one place that knows their kind."""

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

    @classmethod
    def from_corpus(cls, spec: str, corpus: Corpus) -> Domain:
        return cls(spec, corpus.classes, corpus.labels, Texts(corpus.texts), split=corpus.split)

    @classmethod
    def from_table(cls, spec: str, table: Table) -> Domain:
        return cls(spec, table.classes, table.labels, TableRows(table.rows, table.feature_names), split=table.split)

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


LOADERS: dict[str, Callable[[str], Domain | None]] = {}
"""The registered modality plug-ins' loaders by kind (:func:`xferdiag.modalities.registry.register_modality`): each
is asked first whether a data spec is its own (a domain) or not (None)."""


def load_domain(spec: str) -> Domain:
    """``digits:<name>`` or ``cancer:<name>`` (built-in), ``fashion-mnist[:train]`` (Debian's package),
    text (``bbc-news``, ``PATH.csv``/``PATH.jsonl`` with a text column, a folder of ``.txt`` class folders),
    a folder of class folders, a ``.npz`` file
    (images, or a table when ``x`` is 2-D), or a CSV table (``PATH.csv`` or ``PATH.csv:LABEL_COLUMN``); before
    them, data a registered modality plug-in claims (:data:`LOADERS`)."""
    for loader in LOADERS.values():
        if (domain := loader(spec)) is not None:
            return domain
    if spec.startswith("digits:"):
        images, labels = load_digits_domain(spec.split(":", 1)[1])
        return Domain(spec, [str(i) for i in range(10)], labels, ImageTensors(images))
    if spec == "fashion-mnist" or spec.startswith("fashion-mnist:"):
        images, labels = load_fashion_mnist(spec.partition(":")[2] or "test")
        return Domain(spec, list(FASHION_CLASSES), labels, ImageTensors(images))
    corpus = load_corpus(spec)
    if corpus is not None:
        return Domain.from_corpus(spec, corpus)
    if spec.startswith("cancer:"):
        return Domain.from_table(spec, load_cancer_domain(spec.split(":", 1)[1]))
    if csv_spec(spec):
        return Domain.from_table(spec, load_csv_table(*csv_spec(spec)))
    path = Path(spec)
    if path.suffix.lower() == ".npz":
        if npz_is_table(path):
            return Domain.from_table(spec, load_npz_table(path))
        classes, images, labels, split = load_npz_images(path)
        return Domain(spec, classes, labels, ImageTensors(images), split=split)
    classes, paths, labels, split, sizes = scan_folder(path)
    return Domain(spec, classes, labels, ImageFiles(paths, sizes), split=split)


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
            raise DataError(f"the {name} split is empty: all its {len(idx)} texts are longer than --max-length and "
                            "truncation is off (--no-truncate); raise --max-length or let texts be truncated")
    return left_out
