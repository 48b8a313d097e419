"""What the image modality says about itself without torch (see :mod:`xferdiag.modalities.descriptor`)."""

from ..kinds import IMAGE


def input_words(inputs: dict, truncate: bool) -> str | None:
    """Channels and size; a detector keeps each image's aspect ratio (``resize`` "shorter-side")."""
    if not inputs:
        return None
    channels, size = inputs.get("channels", "?"), inputs.get("size", "?")
    if inputs.get("resize") == "shorter-side":
        return f"{channels} channels, each image resized so its shorter side is {size} pixels"
    return f"{channels} channel{'' if channels == 1 else 's'}, {size} × {size} pixels"


DESCRIPTOR = dict(
    name=IMAGE, takes="images", section="image_explanations", methods_words="Grad-CAM, SHAP, LIME", explainers=None,
    options=("image_size", "channels", "mean", "std", "normalize"), source_head=True, recorded_input=True, input_words=input_words,
    data_words="images",
)
