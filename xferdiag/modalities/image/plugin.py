"""Images: batches in [0, 1] with the arms' normalisation put inside the model, explained by
Grad-CAM, SHAP and LIME with sanity and faithfulness checks."""

from __future__ import annotations

import numpy as np
import torch

from ...data import Domain, InputSpec
from ...explainers.arms import explain_arms
from ...explainers.image import METHODS, ImageRequest
from ...models import WithNormalization
from ..base import ExplainJob, Plain, own_methods
from ..descriptor import describe_modality
from ..kinds import IMAGE

BACKGROUND_SIZE = 32
"""Training images SHAP draws its references from (seeded)."""


def unit_images(domain: Domain, indices: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """Images at ``indices`` resized for the model but not normalised: (N, C, H, W) in [0, 1]."""
    dataset = domain.dataset(indices, spec)
    return torch.stack([dataset.unit_image(i) for i in range(len(dataset))])


class ImageModality(Plain):
    name = IMAGE
    descriptor = describe_modality(IMAGE)
    methods = METHODS
    input_shift_key = "per_feature"

    def explain(self, job: ExplainJob, *, methods: list[str], seed: int, lime_samples: int, shap_samples: int,
                budget: float | None, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
        """Unit-range images and a seeded background; the models see them through their own normalisation.
        Methods for other kinds of data (Integrated Gradients on token embeddings) are skipped."""
        chosen = own_methods(methods, self.methods, "images")  # IG needs token embeddings: skipped here
        images = unit_images(job.domain, job.rows, job.spec)
        rng = np.random.default_rng(seed)
        n_background = min(BACKGROUND_SIZE, len(job.train_rows))
        background = unit_images(job.domain, np.sort(rng.choice(job.train_rows, n_background, replace=False)), job.spec)
        models = {arm: WithNormalization(model, job.spec).to(job.device).eval() for arm, model in job.arms.items()}
        return explain_arms(ImageRequest(models=models, images=images, labels=job.labels, background=background,
                                         methods=chosen, example_ids=job.example_ids, seed=seed, lime_samples=lime_samples,
                                         shap_samples=shap_samples, budget=budget), progress=progress)

    def input_shift(self, source: Domain, target: Domain, source_rows: np.ndarray, target_rows: np.ndarray) -> None:
        """Pixels are no features to test one by one: the shift is measured in the model's features only."""
        return None
