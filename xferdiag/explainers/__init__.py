"""Explanations of image and tabular classifiers (Grad-CAM, SHAP, LIME) with sanity and faithfulness checks.

Everything works on in-memory models and arrays; :func:`explain_models` produces the content of
``explanations/index.json`` and ``maps.npz`` for several arms at once.
"""

from .agreement import spearman_agreement, topk_overlap
from .faithfulness import (DeletionInsertion, PointingResult, RandomisationResult, deletion_insertion,
                           pointing_game, randomisation_test)
from .gradcam import find_target_layer, grad_cam
from .lime import ImageLime, lime_images, lime_tabular
from .run import explain_models, pick_examples
from .shap import ImageShap, shap_images, shap_tabular
from ._common import TabularExplanation

__all__ = [
    "DeletionInsertion", "ImageLime", "ImageShap", "PointingResult", "RandomisationResult", "TabularExplanation",
    "deletion_insertion", "explain_models", "find_target_layer", "grad_cam", "lime_images", "lime_tabular",
    "pick_examples", "pointing_game", "randomisation_test", "shap_images", "shap_tabular", "spearman_agreement",
    "topk_overlap",
]

