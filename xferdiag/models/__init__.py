"""Models: sources (torchvision, built-in, callables), safe checkpoints, backbone + head split."""

from .build import ModelSource, TransferModel, WithNormalization, build_transfer_model, classifier_state, load_pretrained_classifier, make_head, split_classifier
from .checkpoint import load_into, load_state_dict
from .finetuned import load_finetuned

__all__ = [
    "ModelSource",
    "TransferModel",
    "WithNormalization",
    "build_transfer_model",
    "classifier_state",
    "load_finetuned",
    "load_into",
    "load_pretrained_classifier",
    "load_state_dict",
    "make_head",
    "split_classifier",
]
