"""Explanations of image, tabular and text classifiers (Grad-CAM, Integrated Gradients, SHAP, LIME) with sanity
and faithfulness checks.

Everything works on in-memory models and arrays. Every explainer returns numpy maps, (N, H, W) for
images, (N, F) for tables and (N, T) per token for text. One orchestrator (:func:`explain_arms`)
takes a modality's request (:class:`ImageRequest`, :class:`TableRequest`, :class:`TextRequest`),
explains several arms with the methods the modality registers (:data:`IMAGE_EXPLAINERS`,
:data:`TABLE_EXPLAINERS`, :data:`TEXT_EXPLAINERS`) and returns one :class:`Explanation`: the
content of ``explanations/index.json`` and ``maps.npz``.
"""

from ._common import TabularExplanation
from .agreement import spearman_agreement, topk_overlap
from .arms import Attribution, Checks, Explanation, Kind, Method, Request, explain_arms
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
from .image import IMAGE_EXPLAINERS, ImageRequest
from .lime import ImageLime, lime_images, lime_tabular
from .shap import ImageShap, shap_images, shap_tabular
from .table import TABLE_EXPLAINERS, TableRequest
from .text import TEXT_EXPLAINERS, TextRequest

__all__ = [
    "IMAGE_EXPLAINERS", "TABLE_EXPLAINERS", "TEXT_EXPLAINERS", "Attribution", "Checks", "DeletionInsertion", "Explanation",
    "ImageLime", "ImageRequest", "ImageShap", "Kind", "Method", "PointingResult", "RandomisationResult", "Request",
    "TableRequest", "TabularExplanation", "TextRequest", "deletion_insertion", "explain_arms", "find_target_layer",
    "grad_cam", "lime_images", "lime_tabular",
    "pick_examples", "pointing_game", "randomisation_test", "shap_images", "shap_tabular", "spearman_agreement",
    "topk_overlap",
]
