"""Image datasets as torch Datasets: in-memory tensors (built-in, .npz) or files on disk.

Both present examples the way the model expects them (channels, size, normalisation) and apply
the training augmentation only where asked, drawing randomness from torch's global generator so
that a seeded run is reproducible and a resumed run continues the same random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ...data.spec import InputSpec
from ...errors import DataError
from ..kinds import IMAGE


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Adapt (..., C, H, W) images to ``channels``: repeat gray to RGB, average RGB to gray."""
    have = x.shape[-3]
    if have == channels:
        return x
    if have == 1:
        return x.expand(*x.shape[:-3], channels, *x.shape[-2:]).clone()
    if channels == 1:
        return x[..., :3, :, :].mean(dim=-3, keepdim=True)
    raise DataError(f"cannot adapt {have}-channel images to a model that expects {channels} channels")


def train_augmentation(size: int, small: bool) -> v2.Transform:
    """Mild, label-preserving augmentation: affine jitter for small glyph-like images, crops and flips otherwise."""
    if small:
        return v2.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1))
    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True), v2.RandomHorizontalFlip()])


class TensorImageSet(Dataset):
    """Images already in memory as floats in [0, 1], shape (N, C, H, W)."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray, spec: InputSpec, augment: bool = False):
        images = match_channels(images.float(), spec.channels)
        if images.shape[-1] != spec.size or images.shape[-2] != spec.size:
            images = torch.nn.functional.interpolate(images, size=(spec.size, spec.size), mode="bilinear",
                                                     align_corners=False, antialias=True)
        self.raw = images.clamp(0, 1)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.normalize = v2.Normalize(spec.mean, spec.std)
        self.augment = train_augmentation(spec.size, small=spec.size <= 64) if augment else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.raw[i]
        if self.augment is not None:
            x = self.augment(x)
        return self.normalize(x), self.labels[i]

    def unit_image(self, i: int) -> torch.Tensor:
        """The example as the model sees it before normalisation: (C, H, W) in [0, 1]."""
        return self.raw[i]

    def without_augmentation(self) -> TensorImageSet:
        clone = object.__new__(TensorImageSet)
        clone.__dict__.update(self.__dict__, augment=None)
        return clone


def read_image(path: Path, channels: int) -> tuple[torch.Tensor, bool]:
    """Decode one image to a float (C, H, W) tensor in [0, 1]; report whether its mode was converted."""
    try:
        with Image.open(path) as img:
            img.load()
            converted = img.mode not in ("L", "RGB")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float32)
                peak = 65535.0 if arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8), mode="L")
            target = "L" if channels == 1 else "RGB"
            if img.mode != target:
                converted = converted or img.mode != ("RGB" if channels == 1 else "L")
                img = img.convert(target)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({exc}); remove or replace the file") from None
    tensor = torch.from_numpy(arr.copy()).float().div_(255.0)
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor, converted


class FileImageSet(Dataset):
    """Images read from disk on demand (resize + centre crop for evaluation)."""

    def __init__(self, paths: list[Path], labels: np.ndarray, spec: InputSpec, augment: bool = False):
        self.paths = list(paths)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.spec = spec
        self.augment = augment
        self.eval_transform = v2.Compose([v2.Resize(spec.size, antialias=True), v2.CenterCrop(spec.size)])
        self.train_transform = train_augmentation(spec.size, small=False)
        self.normalize = v2.Normalize(spec.mean, spec.std)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        x, _ = read_image(self.paths[i], self.spec.channels)
        x = self.train_transform(x) if self.augment else self.eval_transform(x)
        return self.normalize(x), self.labels[i]

    def unit_image(self, i: int) -> torch.Tensor:
        """The example as the model sees it before normalisation: (C, H, W) in [0, 1]."""
        return self.eval_transform(read_image(self.paths[i], self.spec.channels)[0])

    def without_augmentation(self) -> FileImageSet:
        return FileImageSet(self.paths, self.labels.numpy(), self.spec, augment=False)


@dataclass
class ImageTensors:
    """Images in memory as floats in [0, 1], (N, C, H, W): built-in digits, Fashion-MNIST, ``.npz`` files."""

    images: torch.Tensor
    kind = IMAGE

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> TensorImageSet:
        return TensorImageSet(self.images[torch.as_tensor(indices)], labels, spec, augment)

    def image_sizes(self, n: int) -> np.ndarray:
        return np.broadcast_to(np.array(self.images.shape[-2:], dtype=np.int64), (n, 2))

    def plain_input(self) -> None:
        return None

    def native_side(self) -> int | None:
        """The images' side where they are square (a size a model may run at)."""
        return int(self.images.shape[-1]) if self.images.shape[-1] == self.images.shape[-2] else None

    def describe(self, n: int) -> str:
        c, h, w = self.images.shape[1:]
        return f"{n} images of {c}x{h}x{w} (channels x height x width)"

    def channels(self) -> set[int]:
        return {int(self.images.shape[1])}

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None:
        check_channels(self, name, spec, n)


@dataclass
class ImageFiles:
    """Image files on disk, decoded on demand; ``sizes``: each file's (height, width), read from its header."""

    paths: list[Path]
    sizes: np.ndarray | None = None
    kind = IMAGE

    def dataset(self, indices: np.ndarray, labels: np.ndarray, spec: InputSpec, augment: bool) -> FileImageSet:
        return FileImageSet([self.paths[i] for i in indices], labels, spec, augment)

    def image_sizes(self, n: int) -> np.ndarray | None:
        return self.sizes

    def native_side(self) -> None:
        return None

    def plain_input(self) -> None:
        return None

    def describe(self, n: int) -> str:
        return f"{n} image files (decoded as gray or RGB)"

    def channels(self) -> set[int]:
        return {1, 3}

    def check_fits(self, name: str, spec: InputSpec, n: int) -> None:
        check_channels(self, name, spec, n)


def check_channels(payload: ImageTensors | ImageFiles, name: str, spec: InputSpec, n: int) -> None:
    """Images reach a model as the channels it takes only where converting means something:
    gray to RGB by repetition, RGB to gray by averaging. Anything else ends here, before training."""
    have = payload.channels()
    convertible = have | ({1, 3} if have & {1, 3} else set())
    if spec.channels not in convertible:
        raise DataError(f"{name}: {payload.describe(n)} cannot feed a model that takes {spec.channels}-channel "
                        f"{spec.size}x{spec.size} images; give data with {spec.channels} channels, or --channels")
