"""LIME (Ribeiro et al. 2016) for images and tables, reproducible and batched.

lime seeds its generator once, at construction, and its image explainer builds every perturbed
image in a Python loop and feeds the model ten at a time. Here each image gets a fresh explainer
seeded with ``seed`` (same seed, same output, whatever else is explained), the segmentation is
seeded too, and the perturbed images are built with one vectorised ``np.where`` per batch of
``batch_size`` and classified under ``torch.inference_mode`` by a forward-only copy of the model
(:mod:`.inference`: batch norms folded, channels-last, bf16 where the hardware has it). The random draws are lime's own, in
lime's order, so the explanation is the one lime would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from lime.lime_image import LimeImageExplainer
from lime.lime_tabular import LimeTabularExplainer
from skimage.segmentation import quickshift, slic
from torch import nn

from .._validate import check_scalar
from ..errors import InputError
from ._common import (
    TabularExplanation,
    as_unit_images,
    check_model,
    check_table,
    device_of,
    normalise,
    resolve_targets,
    tabular_result,
)
from .inference import default_batch, inference_copy

SEGMENTATIONS = ("quickshift", "slic")


@dataclass(frozen=True)
class ImageLime:
    """LIME superpixel weights for one class per image, painted back onto the pixels.

    maps: (N, H, W) in [0, 1] (min-max scaled; 1 = strongest evidence for the class, 0 = strongest
    against). segments: (N, H, W) superpixel ids 0..S-1. weights: per image, one weight per
    superpixel id.
    """

    maps: np.ndarray
    segments: np.ndarray
    weights: list[np.ndarray]
    targets: np.ndarray


class _BatchedLimeImageExplainer(LimeImageExplainer):
    """lime's image explainer with the perturbation loop vectorised; same draws, same images."""

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1
        labels = []
        for start in range(0, num_samples, batch_size):
            keep = data[start:start + batch_size][:, segments].astype(bool)
            labels.append(classifier_fn(np.where(keep[..., None], image, fudged_image)))
        return data, np.concatenate(labels)


def segmenter(segmentation: str, seed: int):
    """A seeded superpixel function HxWx3 -> ids 0..S-1 (lime assumes contiguous ids).

    quickshift uses lime's settings (kernel_size 4, max_dist 200, ratio 0.2) at 224 px and above;
    on smaller images the kernel shrinks with the image (down to 1), which keeps a few dozen
    superpixels instead of one or two. skimage ignores the seed lime passes, so it is given here.
    slic asks for about 50 superpixels at any size.
    """
    if segmentation not in SEGMENTATIONS:
        raise InputError(f"segmentation: must be one of {', '.join(SEGMENTATIONS)}, got {segmentation!r}")

    def segment(image: np.ndarray) -> np.ndarray:
        if segmentation == "quickshift":
            kernel = min(4.0, max(1.0, 4.0 * min(image.shape[:2]) / 224))
            ids = quickshift(image, kernel_size=kernel, max_dist=200, ratio=0.2, rng=seed)
        else:
            ids = slic(image, n_segments=50, compactness=10, start_label=0)
        return np.unique(ids, return_inverse=True)[1].reshape(ids.shape)

    return segment


def probability_fn(model: nn.Module, channels: int):
    """lime's classifier function: (n, H, W, 3) floats -> (n, K) class probabilities.

    Grayscale models see channel 0 back (lime works on RGB copies of gray images). The model
    runs as given; :func:`lime_images` hands it an :func:`~.inference.inference_copy`.
    """
    device = device_of(model)

    def classify(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch[..., :channels].transpose(0, 3, 1, 2))).float()
        with torch.inference_mode():
            return torch.softmax(model(x.to(device)).float(), 1).cpu().numpy()

    return classify


def lime_images(model: nn.Module, images, targets=None, num_samples: int = 1000, segmentation: str = "quickshift",
                seed: int = 0, batch_size: int | None = None, precision: str = "auto") -> ImageLime:
    """LIME explanations of each image's target class (default: predicted class).

    ``images`` (N, C, H, W) in [0, 1] with C = 1 or 3. The same ``seed`` gives identical output
    on every call. ``batch_size`` perturbed images per forward pass (default: 64 on the CPU,
    256 on an accelerator); ``precision`` of those passes, see :mod:`.inference`.
    """
    model = check_model(model)
    x = as_unit_images(images)
    if x.shape[1] not in (1, 3):
        raise InputError(f"images: LIME needs 1- or 3-channel images, got {x.shape[1]} channels")
    num_samples = check_scalar(num_samples, "num_samples", int, 2)
    batch_size = default_batch(device_of(model)) if batch_size is None else check_scalar(batch_size, "batch_size", int, 1)
    segment = segmenter(segmentation, seed)
    t = resolve_targets(model, x, targets)
    classify = probability_fn(inference_copy(model, precision), x.shape[1])
    maps, segments, weights = [], [], []
    for i in range(len(x)):
        image = np.ascontiguousarray(x[i].permute(1, 2, 0).expand(-1, -1, 3).numpy())
        label = int(t[i])
        explanation = _BatchedLimeImageExplainer(random_state=seed).explain_instance(
            image, classify, labels=(label,), top_labels=None, num_samples=num_samples,
            batch_size=batch_size, segmentation_fn=segment, random_seed=seed)
        w = np.zeros(explanation.segments.max() + 1)
        for sid, weight in explanation.local_exp[label]:
            w[sid] = weight
        segments.append(explanation.segments)
        weights.append(w)
        maps.append(w[explanation.segments])
    painted = normalise(torch.from_numpy(np.stack(maps))).numpy().astype(np.float32)
    return ImageLime(painted, np.stack(segments), weights, t.numpy())


def lime_tabular(predict_fn, x, training_data, feature_names=None, targets=None, num_samples: int = 5000,
                 seed: int = 0) -> TabularExplanation:
    """LIME weights (N, F) of each row's target class (default: the most probable class).

    ``predict_fn`` maps an (n, F) array to (n, n_classes) probabilities. Continuous features are
    discretised into quartiles of ``training_data`` (lime's default), so a weight says how much
    being in this row's quartile pushes the probability. ``base_values`` holds each local model's
    intercept.
    """
    x, training, names, t = check_table(x, training_data, feature_names, predict_fn, targets,
                                        ("x", "training_data"))
    num_samples = check_scalar(num_samples, "num_samples", int, 2)
    values = np.zeros(x.shape)
    intercepts = np.zeros(len(x))
    for i in range(len(x)):
        explainer = LimeTabularExplainer(training, feature_names=names, mode="classification", random_state=seed)
        label = int(t[i])
        explanation = explainer.explain_instance(x[i], predict_fn, labels=(label,), top_labels=None,
                                                 num_features=x.shape[1], num_samples=num_samples)
        for j, weight in explanation.as_map()[label]:
            values[i, j] = weight
        intercepts[i] = explanation.intercept[label]
    return tabular_result(values, t, names, intercepts)
