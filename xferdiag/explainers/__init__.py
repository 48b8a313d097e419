"""Explanations of image and tabular classifiers (Grad-CAM, SHAP, LIME) with sanity and faithfulness checks.

Everything works on in-memory models and arrays. Every explainer returns numpy maps, (N, H, W) for
images and (N, F) for tables. One orchestrator (:func:`explain_arms`) explains several arms with
the methods a modality registers (:data:`IMAGE_EXPLAINERS`, :data:`TABLE_EXPLAINERS`);
:func:`explain_models` (images) and :func:`explain_table` (tables) produce the content of
``explanations/index.json`` and ``maps.npz``.
"""

from ._common import TabularExplanation
from .agreement import spearman_agreement, topk_overlap
from .arms import Attribution, Checks, Method, explain_arms
from .examples import pick_examples
from .faithfulness import (
                           DeletionInsertion,
                           PointingResult,
                           RandomisationResult,
                           deletion_insertion,
                           pointing_game,
                           randomisation_test,
)
from .gradcam import find_target_layer, grad_cam
from .image import IMAGE_EXPLAINERS, explain_models
from .lime import ImageLime, lime_images, lime_tabular
from .shap import ImageShap, shap_images, shap_tabular
from .table import TABLE_EXPLAINERS, explain_table

__all__ = [
    "IMAGE_EXPLAINERS", "TABLE_EXPLAINERS", "Attribution", "Checks", "DeletionInsertion", "ImageLime", "ImageShap",
    "Method", "PointingResult", "RandomisationResult", "TabularExplanation", "deletion_insertion", "explain_arms",
    "explain_models", "explain_table", "find_target_layer", "grad_cam", "lime_images", "lime_tabular",
    "pick_examples", "pointing_game", "randomisation_test", "shap_images", "shap_tabular", "spearman_agreement",
    "topk_overlap",
]
