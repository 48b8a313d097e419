"""What the text modality says about itself without torch (see :mod:`xferdiag.modalities.descriptor`)."""

from ..kinds import TEXT


def input_words(inputs: dict, truncate: bool) -> str | None:
    """Token ids per text, and what became of the longer texts."""
    if not inputs:
        return None
    return f"token ids, {inputs.get('size', '?')} per text (longer texts {'truncated' if truncate else 'left out'})"


DESCRIPTOR = dict(
    name=TEXT, takes="token ids (a text model)", section="text_explanations", methods_words="Integrated Gradients, SHAP, LIME",
    explainers="xferdiag.explainers.text", options=("max_length", "truncate", "freeze_embeddings", "group_by_length"),
    source_head=False, recorded_input=False, input_words=input_words,
    data_words="texts", long_inputs=("texts", "longer than --max-length {size} tokens"),
)
