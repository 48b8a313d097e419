"""Load a fine-tuned model saved by any training code, in either of the two forms it comes in.

* a :class:`TransferModel` state_dict (keys ``backbone.*`` and ``head.*``), what xferdiag writes;
* the whole classifier's state_dict, what a plain PyTorch script writes after replacing the last
  ``nn.Linear`` for the target classes (``model.fc = nn.Linear(512, C)`` on a resnet18, then
  ``torch.save(model.state_dict(), path)``). Its last-Linear keys become ``head.*``, the rest
  ``backbone.*``;
* a Hugging Face directory that Trainer or ``save_pretrained`` wrote (:func:`load_finetuned_directory`).

A ``module.`` prefix (DataParallel, DistributedDataParallel) is dropped first.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from ..data.spec import InputSpec
from ..errors import CheckpointError
from .build import build_transfer_model
from .checkpoint import load_into, load_state_dict
from .source import ModelSource
from .surgery import classifier_layer, head_weights_for_linear, without_auxiliary
from .transfer import TransferModel

HF_DIRECTORY = "hf-directory"


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _head_outputs(state: dict[str, torch.Tensor], prefix: str) -> int | None:
    weights = [v for k, v in state.items() if k.startswith(prefix) and k.endswith("weight") and v.ndim == 2]
    return int(weights[-1].shape[0]) if weights else None


def _readings(state: dict[str, torch.Tensor], classifier: torch.nn.Module):
    """(form, head layer name, state in TransferModel keys), most likely first. A user model whose own
    parts are called backbone and head looks like the first form but is the second."""
    if all(k.startswith(("backbone.", "head.")) for k in state):
        yield "transfer", "head", state
    head, _, _ = classifier_layer(classifier)
    state = head_weights_for_linear(state, f"{head}.")
    yield "classifier", head, {(f"head.{k.removeprefix(head + '.')}" if k.startswith(head + ".") else f"backbone.{k}"): v
                               for k, v in state.items()}


def _load(model: TransferModel, state: dict[str, torch.Tensor], form: str, head: str, path, num_classes: int,
          source: ModelSource, head_hidden) -> None:
    outputs = _head_outputs(state, "head.")
    if outputs is None:
        raise CheckpointError(f"{path}: no weights for the classifier layer '{head}'; save the whole fine-tuned "
                              f"model's state_dict (with '{head}' replaced for the target classes)")
    if outputs != num_classes:
        raise CheckpointError(f"{path}: the classifier layer '{head}' has {outputs} outputs but the target data has "
                              f"{num_classes} classes; audit it with the data it was fine-tuned on")
    try:
        load_into(model, state, str(path))
    except CheckpointError as exc:
        if form == "transfer":
            raise
        mlp = " (an MLP head must be Linear-ReLU[-Dropout] per --head-hidden size)" if head_hidden else ""
        raise CheckpointError(f"{exc}; read as a whole {source.arch} classifier whose layer '{head}' is the head{mlp}") from None


def load_finetuned(path: str | Path, source: ModelSource, num_classes: int, *, input_spec: InputSpec | None = None, head_hidden=(),
                   head_dropout: float = 0.0) -> tuple[TransferModel, str]:
    """The fine-tuned model (on the CPU) and the form its checkpoint had: ``"transfer"`` or ``"classifier"``."""
    classifier = source.build_classifier()
    state = without_auxiliary(_strip_module_prefix(load_state_dict(path)), classifier)
    model = build_transfer_model(source, num_classes, pretrained=classifier, input_spec=input_spec, head_hidden=head_hidden,
                                 head_dropout=head_dropout)
    errors = []
    for form, head, candidate in _readings(state, classifier):
        try:
            _load(model, candidate, form, head, path, num_classes, source, head_hidden)
            return model, form
        except CheckpointError as exc:
            errors.append(exc)
    raise errors[0]  # the error of the likelier reading


def own_head_source(source: ModelSource, path: str | Path) -> ModelSource:
    """The base model with its own sequence-classification head (``head=hf``): a directory fine-tuned with
    Trainer computes its logits through that head (BERT's pooler, RoBERTa's dense layer), not xferdiag's."""
    if not source.from_directory:
        raise CheckpointError(f"{path}: a Hugging Face model directory is audited with --model hf:BASE_DIR (the "
                              f"directory it was fine-tuned from), not {source.canonical!r}")
    if "head=" in (source.options or ""):
        return source
    return dataclasses.replace(source, options=",".join(filter(None, (source.options, "head=hf"))))


def _label_order(id2label: dict, classes: list[str], path) -> list[int]:
    """Row of the fine-tuned head for each of the data's classes (sorted, as xferdiag orders them): by name
    when ``id2label`` names them, in place when it holds transformers' defaults (LABEL_0, LABEL_1, ...)."""
    names = [str(id2label.get(i, f"LABEL_{i}")) for i in range(len(classes))]
    if all(re.fullmatch(r"LABEL_\d+", name) for name in names):
        return list(range(len(classes)))
    if sorted(names) == sorted(map(str, classes)):
        return [names.index(str(c)) for c in classes]
    raise CheckpointError(f"{path}: its labels (id2label: {', '.join(names)}) are not the data's classes "
                          f"({', '.join(map(str, classes))}); audit it with the data it was fine-tuned on")


def load_finetuned_directory(path: str | Path, source: ModelSource, classes: list[str], *,
                             input_spec: InputSpec | None = None) -> tuple[TransferModel, str]:
    """A fine-tuned Hugging Face directory as a TransferModel of ``source``'s architecture (the base model with
    ``head=hf``): backbone and head from the directory, the head's rows put in the data's class order."""
    tuned = ModelSource(str(Path(path).resolve()), "hf", options=source.options).directory_classifier(pretrained=True)
    head, layer, _ = classifier_layer(tuned)
    if layer.out_features != len(classes):
        raise CheckpointError(f"{path}: its classification head has {layer.out_features} outputs but the target data has "
                              f"{len(classes)} classes; audit it with the data it was fine-tuned on")
    order = _label_order(tuned.encoder.config.id2label, classes, path)
    model = build_transfer_model(source, len(classes), pretrained=None, input_spec=input_spec)
    state = {f"backbone.{k}": v for k, v in tuned.state_dict().items() if not k.startswith(head + ".")}
    state.update({f"head.{k}": v[order] for k, v in layer.state_dict().items()})
    load_into(model, state, str(path))
    return model, HF_DIRECTORY
