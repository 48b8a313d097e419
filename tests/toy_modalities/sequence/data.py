"""The toy's data: a ``*.seq.npz`` file with ``x`` (N, L) values, ``y`` (N,) class ids and optional ``classes``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from xferdiag.data import Domain, InputSpec
from xferdiag.errors import DataError

from .descriptor import SEQUENCE

SUFFIX = ".seq.npz"


@dataclass
class Sequences:
    """A domain's sequences (N, L) float32: the payload (:class:`xferdiag.data.Payload`) of the toy modality."""

    values: np.ndarray
    kind = SEQUENCE

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> TensorDataset:
        return TensorDataset(torch.from_numpy(self.values[indices]), torch.as_tensor(labels, dtype=torch.long))

    def image_sizes(self, n: int) -> None:
        return None

    def native_side(self) -> None:
        return None

    def plain_input(self) -> InputSpec:
        length = int(self.values.shape[1])
        return InputSpec(0, length, (), (), origin=f"a sequence of {length} values", kind=SEQUENCE)

    def describe(self, n: int) -> str:
        return f"{n} sequences of {self.values.shape[1]} values"

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None:
        if spec.size != self.values.shape[1]:
            raise DataError(f"{name}: sequences of {self.values.shape[1]} values, but the model takes {spec.size}")


def load_sequences(spec: str) -> Domain | None:
    """The domain of a ``*.seq.npz`` file; None for any other data spec (the built-in loaders take it)."""
    if not spec.endswith(SUFFIX):
        return None
    try:
        with np.load(spec) as arrays:
            values, labels = arrays["x"].astype(np.float32), arrays["y"].astype(np.int64)
            classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(labels.max() + 1)]
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{spec}: not a sequence file with 'x' (N, L) and 'y' (N,) ({error})") from None
    if values.ndim != 2 or len(values) != len(labels):
        raise DataError(f"{spec}: 'x' must be (N, L) with one label in 'y' per row, got {values.shape} and {labels.shape}")
    return Domain(spec, classes, labels, Sequences(np.ascontiguousarray(values)))


def write_sequences(path: Path, n: int, length: int, seed: int, shift: float = 0.0) -> Path:
    """``n`` seeded sequences of two classes: a rising or a falling ramp under noise, offset by ``shift``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    ramp = np.linspace(-1.0, 1.0, length)
    values = np.where(labels[:, None] == 1, ramp, -ramp) + rng.normal(scale=0.5, size=(n, length)) + shift
    np.savez(path, x=values.astype(np.float32), y=labels, classes=np.array(["falling", "rising"]))
    return path
