"""Datasets: built-in digit, table and text domains, image folders, ``.npz`` arrays, CSV tables and
text files (CSV/JSONL, folders of ``.txt``) behind one interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._validate import check_scalar
from ..errors import DataError
from .arrays import load_npz_images
from .digits import SCENARIOS as DIGIT_SCENARIOS, load_digits_domain
from .fashion import CLASSES as FASHION_CLASSES, load_fashion_mnist
from .folder import scan_folder
from .images import FileImageSet, InputSpec, TensorImageSet
from .splits import stratified_split, take_shots
from .tables import (
    SCENARIOS as TABLE_SCENARIOS,
    Table,
    TableSet,
    csv_spec,
    load_cancer_domain,
    load_csv_table,
    load_npz_table,
    npz_is_table,
)
from .text import Corpus, TextSet, load_corpus, token_stats, within_length

__all__ = ["Domain", "InputSpec", "SCENARIOS", "TargetSplits", "load_domain", "split_target", "within_length"]

SCENARIOS = {**DIGIT_SCENARIOS, **TABLE_SCENARIOS}


@dataclass
class Domain:
    """One labelled collection of images, table rows or texts, before any model-specific preprocessing."""

    spec: str
    kind: str
    classes: list[str]
    labels: np.ndarray
    images: torch.Tensor | None = None
    paths: list[Path] | None = None
    split: np.ndarray | None = None
    table: np.ndarray | None = None
    feature_names: list[str] | None = None
    texts: list[str] | None = None
    sizes: np.ndarray | None = None
    """Image files only: each file's (height, width), read from its header when the folder was scanned."""

    @classmethod
    def from_corpus(cls, spec: str, corpus: Corpus) -> Domain:
        return cls(spec, "text", corpus.classes, corpus.labels, split=corpus.split, texts=corpus.texts)

    @classmethod
    def from_table(cls, spec: str, table: Table) -> Domain:
        return cls(spec, "table", table.classes, table.labels, split=table.split, table=table.rows,
                   feature_names=table.feature_names)

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self, indices: np.ndarray, spec: InputSpec, augment: bool = False) -> Dataset:
        """The examples at ``indices``, preprocessed for a model that expects ``spec``."""
        labels = self.labels[indices]
        if self.texts is not None:
            return TextSet([self.texts[i] for i in indices], labels, spec)
        if self.table is not None:
            return TableSet(self.table[indices], labels, spec)
        if self.images is not None:
            return TensorImageSet(self.images[torch.as_tensor(indices)], labels, spec, augment)
        return FileImageSet([self.paths[i] for i in indices], labels, spec, augment)

    def image_sizes(self) -> np.ndarray | None:
        """(N, 2) heights and widths of the images as stored (None for texts and tables): the size a model
        that records none is best fed at (:func:`xferdiag.models.inputs.choose_size`)."""
        if self.images is not None:
            return np.broadcast_to(np.array(self.images.shape[-2:], dtype=np.int64), (len(self), 2))
        return self.sizes

    def describe(self) -> str:
        """The data's shape in words, for errors that set it beside what a model expects."""
        if self.texts is not None:
            return f"{len(self)} texts"
        if self.table is not None:
            return f"a table of {len(self)} rows x {self.table.shape[1]} features"
        if self.images is not None:
            c, h, w = self.images.shape[1:]
            return f"{len(self)} images of {c}x{h}x{w} (channels x height x width)"
        return f"{len(self)} image files (decoded as gray or RGB)"

    def check_fits(self, spec: InputSpec) -> None:
        """Images reach a model as the channels it takes only where converting means something:
        gray to RGB by repetition, RGB to gray by averaging. Anything else ends here, before training."""
        if (self.texts is not None) != spec.is_text:
            raise DataError(f"{self.spec}: {self.describe()}, but the model takes "
                            f"{'token ids (a text model)' if spec.is_text else 'images or table rows, not texts'}")
        if spec.is_text:
            return
        if self.table is not None or spec.channels == 0:
            if (self.table is not None) != (spec.channels == 0):
                raise DataError(f"{self.spec}: {self.describe()}, but the model takes "
                                f"{'table rows' if spec.channels == 0 else 'images'}")
            return
        have = {int(self.images.shape[1])} if self.images is not None else {1, 3}
        convertible = have | ({1, 3} if have & {1, 3} else set())
        if spec.channels not in convertible:
            raise DataError(f"{self.spec}: {self.describe()} cannot feed a model that takes {spec.channels}-channel "
                            f"{spec.size}x{spec.size} images; give data with {spec.channels} channels, or --channels")

    def unit_images(self, indices: np.ndarray, spec: InputSpec) -> torch.Tensor:
        """Images at ``indices`` resized for the model but not normalised: (N, C, H, W) in [0, 1]."""
        dataset = self.dataset(indices, spec)
        return torch.stack([dataset.unit_image(i) for i in range(len(dataset))])


def load_domain(spec: str) -> Domain:
    """``digits:<name>`` or ``cancer:<name>`` (built-in), ``fashion-mnist[:train]`` (Debian's package),
    text (``bbc-news``, ``PATH.csv``/``PATH.jsonl`` with a text column, a folder of ``.txt`` class folders),
    a folder of class folders, a ``.npz`` file
    (images, or a table when ``x`` is 2-D), or a CSV table (``PATH.csv`` or ``PATH.csv:LABEL_COLUMN``)."""
    if spec.startswith("digits:"):
        images, labels = load_digits_domain(spec.split(":", 1)[1])
        return Domain(spec, "digits", [str(i) for i in range(10)], labels, images=images)
    if spec == "fashion-mnist" or spec.startswith("fashion-mnist:"):
        images, labels = load_fashion_mnist(spec.partition(":")[2] or "test")
        return Domain(spec, "fashion-mnist", list(FASHION_CLASSES), labels, images=images)
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
        return Domain(spec, "npz", classes, labels, images=images, split=split)
    classes, paths, labels, split, sizes = scan_folder(path)
    return Domain(spec, "folder", classes, labels, paths=paths, split=split, sizes=sizes)


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

    def token_stats(self, spec: InputSpec) -> dict | None:
        """Per split, how the text model's tokenizer sees the texts (:class:`.text.TokenStats`); None for other data."""
        if self.domain.texts is None or spec.tokenizer is None:
            return None
        return {split: token_stats([self.domain.texts[i] for i in idx], spec.tokenizer, spec.size,
                                   self.left_out.get(split, 0)).to_dict()
                for split, idx in self.indices.items() if len(idx)}


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
