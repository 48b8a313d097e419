"""Does an explanation depend on the model, and does it point at what the model uses?

- Model-parameter randomisation (Adebayo et al. 2018): re-initialise the weights from the output
  layer down and see whether the maps change. A method whose maps survive full randomisation
  explains the input (edges, contrast), not the model.
- Deletion and insertion (Petsiuk et al. 2018): remove the most important pixels first and watch
  the class probability fall (low deletion AUC is good), or add them to an empty canvas and watch
  it rise (high insertion AUC is good).
- Pointing game (Zhang et al. 2016): does the map's maximum land on the annotated object?
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.integrate import trapezoid
from scipy.ndimage import distance_transform_edt
from torch import nn

from .._validate import check_scalar
from ..errors import InputError
from ._common import as_images, as_maps, check_model, device_of, resolve_targets
from .agreement import spearman_agreement
from .inference import inference_copy

#: Mean |Spearman| between original maps and maps of the fully randomised model above which a
#: method is flagged. Adebayo et al. show methods that pass at around 0.1-0.3 and edge-detector-
#: like methods near 1; 0.5 sits between.
SANITY_THRESHOLD = 0.5

BASELINES = ("mean", "blur", "zero")

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], object]


@dataclass(frozen=True)
class RandomisationResult:
    """Cascading randomisation: ``similarity[k]`` is the mean |Spearman| to the original maps after
    re-initialising every layer down to ``layers[k]``; ``per_example`` is (steps, N), signed.
    ``flagged``: the similarity after full randomisation exceeds ``threshold``.
    """

    layers: list[str]
    similarity: np.ndarray
    per_example: np.ndarray
    similarity_after_randomisation: float
    threshold: float
    flagged: bool


def randomisation_test(model: nn.Module, images, targets, explain_fn: ExplainFn, *, threshold: float = SANITY_THRESHOLD,
                       n_steps: int | None = None, seed: int = 0, original_maps=None) -> RandomisationResult:
    """Cascading model-parameter randomisation test of ``explain_fn(model, images, targets) -> (N, H, W)``.

    Modules with parameters are re-initialised (their own ``reset_parameters``, seeded) one after
    the other from the output down (reverse registration order, which is forward order in common
    architectures), on a deep copy; maps are recomputed after each, or after
    ``n_steps`` evenly spaced steps (the last is always full randomisation). The targets stay
    those given (default: the original model's predictions). A constant map has no ranking and
    counts as similarity 0. ``original_maps``: the unchanged model's maps when the caller already
    has them (saves one explanation pass).
    """
    model = check_model(model)
    x = as_images(images)
    if not callable(explain_fn):
        raise InputError("explain_fn: must be callable as explain_fn(model, images, targets) -> (N, H, W) maps")
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise InputError(f"threshold: must be a number in [0, 1], got {threshold!r}")
    t = resolve_targets(model, x, targets)
    shape = tuple(x.shape[2:])
    original = as_maps(explain_fn(model, x, t) if original_maps is None else original_maps, len(x), shape,
                       "explain_fn output" if original_maps is None else "original_maps")
    return cascading_randomisation(model, lambda m: as_maps(explain_fn(m, x, t), len(x), shape, "explain_fn output"),
                                   original, threshold=threshold, n_steps=n_steps, seed=seed)


Compare = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cascading_randomisation(model: nn.Module, explain: Callable[[nn.Module], np.ndarray], original: np.ndarray, *,
                            threshold: float, n_steps: int | None, seed: int,
                            compare: Compare | None = None) -> RandomisationResult:
    """The cascade behind :func:`randomisation_test` for any kind of input: ``explain(model)`` gives
    the maps of a (randomised copy of the) model, ``original`` those of ``model``; ``compare(a, b)``
    the signed similarity per example (default: Spearman over all positions, NaN counted as 0).
    Callers validate; this trusts its arguments.
    """
    layers = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))][::-1]
    if not layers:
        raise InputError("model: has no parameters to randomise")
    n_steps = len(layers) if n_steps is None else min(check_scalar(n_steps, "n_steps", int, 1), len(layers))
    checkpoints = {int(k) for k in np.round(np.linspace(len(layers), 1, n_steps))}  # includes len(layers)
    compare = compare or (lambda a, b: np.nan_to_num(spearman_agreement(a, b)))
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    names, rows = [], []
    for k, (name, _) in enumerate(layers, start=1):
        _reinitialise(modules[name], seed + k)
        if k in checkpoints:
            names.append(name)
            rows.append(compare(original, explain(randomised)))
    per_example = np.array(rows)
    similarity = np.abs(per_example).mean(1)
    final = float(similarity[-1])
    return RandomisationResult(names, similarity, per_example, final, float(threshold), final > threshold)


def _reinitialise(module: nn.Module, seed: int) -> None:
    """Fresh parameters as at construction, drawn reproducibly without touching the global RNG."""
    with torch.random.fork_rng(devices=[p.device.index or 0 for p in module.parameters() if p.is_cuda][:1]):
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    p.normal_(0.0, 0.02)


@dataclass(frozen=True)
class DeletionInsertion:
    """Target-class probability as pixels are removed (``deletion``) or added (``insertion``) in order
    of importance: curves (N, steps + 1) at ``fractions``, and per-example trapezoid AUCs on [0, 1].
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray


def deletion_insertion(model: nn.Module, images, maps, targets=None, *, steps: int = 20, baseline: str = "mean",
                       batch_size: int = 128, seed: int = 0, precision: str = "auto") -> DeletionInsertion:
    """Deletion and insertion curves of saliency ``maps`` (N, H, W) for each image's target class.

    Removed pixels (all channels) take the ``baseline`` value: "mean" (the image's mean colour,
    default: removes the information without a black hole), "blur" (Gaussian blur, sigma = size/16;
    keeps coarse shapes) or "zero". Insertion starts from the baseline and restores pixels.
    Pixels of equal importance are taken in a seeded random order, so flat regions of a map do
    not sweep the image from the top-left corner. ``precision`` of the forward passes, see
    :mod:`.inference`.
    """
    model = check_model(model)
    x = as_images(images)
    n, c, h, w = x.shape
    scores = as_maps(maps, n, (h, w))
    steps = check_scalar(steps, "steps", int, 1)
    batch_size = check_scalar(batch_size, "batch_size", int, 1)
    t = resolve_targets(model, x, targets)
    base = _baseline(x, baseline)

    noise = np.random.default_rng(seed).random(scores.reshape(n, -1).shape)
    order = np.lexsort((noise, -scores.reshape(n, -1)), axis=-1)
    rank = torch.from_numpy(np.argsort(order, axis=-1)).reshape(n, 1, h, w)
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(int)
    thresholds = torch.from_numpy(counts).reshape(1, -1, 1, 1, 1)

    per_call = max(1, batch_size // (2 * (steps + 1)))
    device = device_of(model)
    frozen = inference_copy(model, precision)
    curves = []
    with torch.inference_mode():
        for i in range(0, n, per_call):
            sl = slice(i, i + per_call)
            chosen = rank[sl].unsqueeze(1) < thresholds  # (g, steps+1, 1, h, w): pixel already moved
            xi, bi = x[sl].unsqueeze(1), base[sl].unsqueeze(1)
            batch = torch.cat([torch.where(chosen, bi, xi), torch.where(chosen, xi, bi)], 1)
            probs = torch.softmax(frozen(batch.reshape(-1, c, h, w).to(device)).float(), 1).cpu()
            g = len(xi)
            target = t[sl].repeat_interleave(2 * (steps + 1))
            curves.append(probs.gather(1, target[:, None]).reshape(g, 2, steps + 1))
    curve = torch.cat(curves).numpy().astype(np.float64)
    fractions = counts / (h * w)
    deletion, insertion = curve[:, 0], curve[:, 1]
    return DeletionInsertion(fractions, deletion, insertion,
                             trapezoid(deletion, fractions, axis=1), trapezoid(insertion, fractions, axis=1))


def _baseline(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mean":
        return x.mean((2, 3), keepdim=True).expand_as(x)
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blur":
        return _blur(x, sigma=max(x.shape[2:]) / 16)
    raise InputError(f"baseline: must be one of {', '.join(BASELINES)}, got {kind!r}")


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel, reflect-padded (the kernel is capped to the image)."""
    radius = min(int(np.ceil(3 * sigma)), min(x.shape[2:]) - 1)
    if radius < 1:
        return x.clone()
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    rows = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1),
                    groups=c)
    return F.conv2d(F.pad(rows, (0, 0, radius, radius), mode="reflect"),
                    kernel.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@dataclass(frozen=True)
class PointingResult:
    hits: np.ndarray
    accuracy: float


def pointing_game(maps, masks, tolerance: int = 0) -> PointingResult:
    """A hit when a maximum of the map lies within ``tolerance`` pixels of the mask (N, H, W).

    A constant map points nowhere and counts as a miss; images without any mask pixel are an error.
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise InputError(f"maps: expected shape (N, H, W), got {m.shape}")
    scores = as_maps(m, len(m), m.shape[1:])
    mask = np.asarray(masks)
    if mask.shape != m.shape:
        raise InputError(f"masks: expected shape {m.shape} to match the maps, got {mask.shape}")
    mask = mask.astype(bool)
    if not mask.reshape(len(mask), -1).any(1).all():
        raise InputError("masks: every image needs at least one mask pixel")
    tolerance = check_scalar(tolerance, "tolerance", int, 0)
    hits = np.zeros(len(m), dtype=bool)
    for i in range(len(m)):
        top = scores[i] == scores[i].max()
        if top.all():
            continue
        near = distance_transform_edt(~mask[i]) <= tolerance
        hits[i] = bool((top & near).any())
    return PointingResult(hits, float(hits.mean()))
