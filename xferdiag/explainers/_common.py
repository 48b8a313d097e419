"""Helpers every explainer shares: argument checks, model state handling, batched prediction.

Explainers run on models the caller keeps using afterwards, so anything switched for the
explanation (eval mode, in-place activations, global random state) is switched back.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validate import check_array, check_same_width, check_scalar
from ..errors import InputError


def as_images(images, name: str = "images") -> torch.Tensor:
    """Return ``images`` as a finite float32 CPU tensor of shape (N, C, H, W), or raise naming ``name``."""
    try:
        x = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    except Exception as exc:  # ragged lists, objects
        raise InputError(f"{name}: cannot be read as an array ({exc})") from None
    if x.dtype == torch.bool or x.is_complex():
        raise InputError(f"{name}: expected real numbers, got dtype {x.dtype}")
    if x.ndim != 4:
        raise InputError(f"{name}: expected a 4-D batch (N, C, H, W), got shape {tuple(x.shape)}")
    if 0 in x.shape:
        raise InputError(f"{name}: is empty (shape {tuple(x.shape)})")
    x = x.float()
    if not torch.isfinite(x).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    return x


def as_unit_images(images, name: str = "images") -> torch.Tensor:
    """Like :func:`as_images`, for methods that perturb pixels and need them in [0, 1]."""
    x = as_images(images, name)
    if x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise InputError(
            f"{name}: values must lie in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
            "put any normalisation inside the model (e.g. nn.Sequential(normalise, model))"
        )
    return x.clamp(0, 1)


def as_targets(targets, n: int, n_classes: int, name: str = "targets") -> torch.Tensor:
    """Return one class index per example as an int64 tensor, or raise naming ``name``."""
    t = torch.as_tensor(np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets))
    if t.ndim != 1 or t.shape[0] != n:
        raise InputError(f"{name}: expected one class index per image ({n}), got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise InputError(f"{name}: class indices must be whole numbers")
    elif t.dtype == torch.bool or t.is_complex():
        raise InputError(f"{name}: class indices must be integers, got dtype {t.dtype}")
    t = t.long()
    if n and (t.min() < 0 or t.max() >= n_classes):
        raise InputError(f"{name}: class indices must lie in 0..{n_classes - 1}, got {t.min()}..{t.max()}")
    return t


def as_indices(values, name: str, n: int) -> torch.Tensor:
    """One non-negative integer per example (labels, predictions, row ids) as int64, or raise naming ``name``."""
    arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if arr.shape != (n,):
        raise InputError(f"{name}: expected one entry per image ({n}), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) or (n and arr.min() < 0):
        raise InputError(f"{name}: expected non-negative integers, got dtype {arr.dtype}")
    return torch.from_numpy(arr.astype(np.int64))


def as_maps(maps, n: int, size: tuple[int, int], name: str = "maps") -> np.ndarray:
    """Return saliency maps as a finite float64 array (n, H, W) matching the images, or raise."""
    arr = np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps, dtype=np.float64)
    if arr.shape != (n, *size):
        raise InputError(f"{name}: expected shape {(n, *size)} to match the images, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    return arr


def check_model(model, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise InputError(f"{name}: expected a torch.nn.Module, got {type(model).__name__}")
    return model


def check_arms(models) -> list[str]:
    """The arm names of ``models`` ({arm: nn.Module}); their maps are stored as ``"<method>__<arm>"``."""
    if not isinstance(models, dict) or not models:
        raise InputError("models: expected a non-empty dict {arm name: model}")
    for arm, model in models.items():
        if not isinstance(arm, str) or not arm or "__" in arm:
            raise InputError(f"models: arm names must be non-empty strings without '__', got {arm!r}")
        check_model(model, f"models[{arm!r}]")
    return list(models)


def check_request(methods, available: tuple[str, ...], target: str, targets: tuple[str, ...]) -> list[str]:
    """The requested ``methods`` (distinct, among ``available``) once ``target`` is known to be one of ``targets``."""
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if m not in available]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise InputError(f"methods: choose distinct names among {', '.join(available)}, got {methods!r}")
    if target not in targets:
        raise InputError(f"target: must be one of {', '.join(targets)}, got {target!r}")
    return methods


def device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextmanager
def explaining(model: nn.Module):
    """Eval mode and out-of-place activations for the duration, then the caller's state back.

    In-place activations (torchvision's ``ReLU(inplace=True)``) overwrite tensors that hooks and
    autograd still need; dropout and batch statistics would make explanations random. Both are
    switched per module and restored per module, so a partly frozen model comes back unchanged.
    """
    modes = [(m, m.training) for m in model.modules()]
    in_place = [m for m in model.modules() if getattr(m, "inplace", None) is True]
    model.eval()
    for m in in_place:
        m.inplace = False
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for m in in_place:
            m.inplace = True


@contextmanager
def numpy_seed(seed: int):
    """Seed numpy's global generator (shap draws from it) and put the caller's state back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Model outputs (N, K) on the CPU, in batches, without building a graph."""
    batch_size = check_scalar(batch_size, "batch_size", int, 1)
    device = device_of(model)
    with explaining(model), torch.inference_mode():
        out = [model(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    logits = torch.cat(out)
    if logits.ndim != 2:
        raise InputError(f"model: expected outputs of shape (N, n_classes), got {tuple(logits.shape)}")
    return logits


def resolve_targets(model: nn.Module, images: torch.Tensor, targets, batch_size: int = 256) -> torch.Tensor:
    """The given class per image, checked against the model's outputs, or the predicted class."""
    if targets is None:
        return predict_logits(model, images, batch_size).argmax(1)
    n_classes = predict_logits(model, images[:1]).shape[1]
    return as_targets(targets, len(images), n_classes)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max scaling to [0, 1]. A constant map carries no ranking and becomes zeros;
    "constant" allows for rounding (a span below 1e-5 of the largest magnitude), so upsampling
    noise on a flat map is not stretched into a pattern.
    """
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - lo
    varies = span > 1e-5 * flat.abs().max(1, keepdim=True).values
    scaled = torch.where(varies, (flat - lo) / torch.where(varies, span, 1), torch.zeros_like(flat))
    return scaled.reshape(maps.shape)


@dataclass(frozen=True)
class TabularExplanation:
    """Per-row feature attributions for one class per row, plus what a summary plot needs.

    ``importance`` lists (feature name, mean |value|) from most to least important.
    """

    values: np.ndarray
    targets: np.ndarray
    feature_names: list[str]
    base_values: np.ndarray
    importance: list[tuple[str, float]]


def tabular_result(values: np.ndarray, targets: np.ndarray, feature_names: list[str],
                   base_values: np.ndarray) -> TabularExplanation:
    mean_abs = np.abs(values).mean(0)
    order = np.argsort(-mean_abs, kind="stable")
    return TabularExplanation(values, targets, feature_names, base_values,
                              [(feature_names[j], float(mean_abs[j])) for j in order])


def check_table(x, training, feature_names, predict_fn, targets, names: tuple[str, str]):
    """Shared checks for the tabular explainers; returns (x, training, names, targets)."""
    x = check_array(x, "x", min_rows=1)
    training = check_array(training, names[1], min_rows=1)
    check_same_width(x, training, ("x", names[1]))
    if feature_names is None:
        feature_names = [f"x{j}" for j in range(x.shape[1])]
    feature_names = [str(f) for f in feature_names]
    if len(feature_names) != x.shape[1]:
        raise InputError(f"feature_names: has {len(feature_names)} names for {x.shape[1]} features")
    if not callable(predict_fn):
        raise InputError("predict_fn: must be callable, mapping an (n, F) array to (n, n_classes) probabilities")
    probs = np.asarray(predict_fn(x))
    if probs.ndim != 2 or probs.shape[0] != x.shape[0]:
        raise InputError(f"predict_fn: must return an (n, n_classes) array of probabilities, got shape {probs.shape}")
    targets = probs.argmax(1) if targets is None else as_targets(targets, len(x), probs.shape[1]).numpy()
    return x, training, feature_names, targets
