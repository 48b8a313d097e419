"""What the table modality says about itself without torch (see :mod:`xferdiag.modalities.descriptor`)."""

from ..kinds import TABLE


def input_words(inputs: dict, truncate: bool) -> str:
    """The number of feature columns the model takes, where the run recorded it."""
    return f"table rows of {inputs['size']} features" if "size" in inputs else "table rows (raw feature values)"


DESCRIPTOR = dict(
    name=TABLE, takes="table rows", section="table_explanations", methods_words="SHAP, LIME", explainers=None,
    options=(), source_head=True, recorded_input=True, input_words=input_words,
    data_words="a table",
)
