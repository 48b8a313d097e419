"""What the toy sequence modality says about itself without torch (see :mod:`xferdiag.modalities.descriptor`)."""

from xferdiag.modalities.descriptor import ModalityDescriptor

SEQUENCE = "sequence"


def input_words(inputs: dict, truncate: bool) -> str:
    return f"sequences of {inputs['size']} values" if "size" in inputs else "numeric sequences"


DESCRIPTOR = ModalityDescriptor(
    name=SEQUENCE, takes="numeric sequences", section=None, methods_words="no explainers yet", explainers=None,
    options=(), source_head=True, recorded_input=True, input_words=input_words, stages=("finetune", "verdict", "analyze", "report"),
)
