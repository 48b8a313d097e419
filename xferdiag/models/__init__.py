"""Models: sources (torchvision, timm, user functions and files, built-ins), the input they take,
classifier surgery, traced layers, safe checkpoints, backbone + head split."""

from .build import WithNormalization, build_transfer_model, classifier_state, load_pretrained_classifier, make_head
from .checkpoint import load_into, load_state_dict
from .finetuned import load_finetuned, load_finetuned_directory, own_head_source
from .inputs import InputRequest, SizeChoice, input_lines, recorded_choice, resolve_input, resolve_input_spec
from .layers import check_layers
from .source import ModelSource
from .surgery import split_classifier
from .transfer import TransferModel

__all__ = [
    "InputRequest",
    "ModelSource",
    "SizeChoice",
    "TransferModel",
    "WithNormalization",
    "build_transfer_model",
    "check_layers",
    "classifier_state",
    "input_lines",
    "load_finetuned",
    "load_finetuned_directory",
    "own_head_source",
    "load_into",
    "load_pretrained_classifier",
    "load_state_dict",
    "make_head",
    "recorded_choice",
    "resolve_input",
    "resolve_input_spec",
    "split_classifier",
]
