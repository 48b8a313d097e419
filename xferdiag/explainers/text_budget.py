"""What explaining texts will cost: the passes of Integrated Gradients, SHAP, LIME and their checks,
counted per example and arm, and timed on the real model with the texts being explained.

Per example and arm, IG runs ``ig_steps`` forward-and-backward passes (interpolated texts) and two
forward passes (the completeness gap's ends); SHAP classifies ``max(shap_samples, 2 m + 1)`` masked
texts (shap's PartitionExplainer needs that many for m feature tokens) and two more (the full and the
empty text); LIME classifies ``lime_samples`` perturbed texts. The randomisation check re-explains
``sanity_examples`` texts on the first arm ``sanity_steps`` times; ERASER classifies ``1 + 2 x 5``
variants of every text for every arm and method. The fitting and the ladder are :mod:`.budget`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._common import device_of
from .budget import CALIBRATION_BATCH, PassCosts, Plan, per_input
from .text_checks import ERASER_FRACTIONS
from .text_methods import integrated_gradients
from .text_words import TextBatch, forward_logits

TEXT_FLOORS = {"lime_samples": 150, "shap_samples": 100, "sanity_examples": 1, "n": 1}
"""The least of each size a text plan goes down to: the sizes at which the text-explainer quality tests
(tests/test_text_explainers.py) find the planted cue as the top word of >= 90% of texts and pass the
randomisation check (LIME 150, SHAP 100). IG's steps are not cut: its 50 are what the completeness
test needs (gap under 2% of the attributions' sum). Below these a budget explains fewer texts."""


@dataclass(frozen=True)
class TextPlan(Plan):
    """The sizes of one text explanation run: ``n`` texts, ``arms`` models, the ``methods``, each
    method's samples, IG's ``ig_steps``, the ``sanity_examples`` the randomisation check re-explains in
    ``sanity_steps`` steps (0: no checks run), and the most feature ``tokens`` of a text (SHAP's least evaluations)."""

    methods: tuple[str, ...]
    arms: int
    n: int
    lime_samples: int
    shap_samples: int
    ig_steps: int
    sanity_examples: int
    sanity_steps: int
    tokens: int

    FLOORS = TEXT_FLOORS
    UNIT = "text"

    def seconds(self, costs: PassCosts) -> dict[str, float]:
        """Estimated seconds per part, in the keys of :func:`~.arms.explain_arms`' ``seconds``."""
        per_example = {"ig": self.ig_steps * costs.backward_s + 2 * costs.forward_s,
                       "shap": (max(self.shap_samples, 2 * self.tokens + 1) + 2) * costs.forward_s,
                       "lime": self.lime_samples * costs.forward_s}
        resanity = self.sanity_steps * min(self.sanity_examples, self.n)
        eraser = self.arms * self.n * (1 + 2 * len(ERASER_FRACTIONS)) * costs.forward_s
        parts = {}
        for m in self.methods:
            parts[m] = self.arms * self.n * per_example[m]
            if self.sanity_steps:
                parts[f"{m} checks"] = resanity * per_example[m] + eraser
        return parts

    def describe(self) -> str:
        sizes = [f"{self.n} text{'s' if self.n != 1 else ''} x {len(self.methods)} methods x {self.arms} arms",
                 f"sanity check on {min(self.sanity_examples, self.n)}"]
        sizes += [f"IG {self.ig_steps} steps"] if "ig" in self.methods else []
        sizes += [f"LIME {self.lime_samples} samples"] if "lime" in self.methods else []
        sizes += [f"SHAP {self.shap_samples} samples"] if "shap" in self.methods else []
        return ", ".join(sizes)


def measure_text_costs(model: nn.Module, batch: TextBatch, targets: torch.Tensor, *, batch_size: int) -> PassCosts:
    """Time a forward batch of the texts being explained (repeated to up to 16), as LIME, SHAP and
    ERASER classify them, and one batched IG gradient pass of as many interpolated texts, each after
    an untimed warm-up of the same shape."""
    device = device_of(model)
    size = min(batch_size, CALIBRATION_BATCH)
    rows = np.resize(np.arange(len(batch)), size)
    ids, mask = batch.input_ids[rows], batch.attention_mask[rows]
    forward_s = per_input(lambda: forward_logits(model, ids, mask, batch_size), size, device, inference=True)
    first = batch.subset([0])
    backward_s = per_input(lambda: integrated_gradients(model, first, targets[:1], steps=size, batch_size=size), size,
                           device, inference=False)
    return PassCosts(forward_s, backward_s)
