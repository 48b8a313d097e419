"""What a text model takes and is wrapped in: rows of token ids, and the classifier explainers rely on; the models
read from a directory (``hf:DIR``, ``builtin:minilm``), built and given their input here for :mod:`xferdiag.models`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...data.spec import InputSpec
from ...errors import ModelError
from ...models.layers import Trace
from ...models.transfer import TransferModel
from ..kinds import TEXT
from . import network

NAME = TEXT
DIRECTORY_BUILTINS = network.TEXT_BUILTINS
"""The ``builtin:NAME`` models read from a directory the modality ships (``hf:DIR`` names the user's own)."""
DEFAULT_MAX_LENGTH = 128
"""Tokens per text when the user names no --max-length."""


def example(spec: InputSpec, n: int) -> torch.Tensor:
    """Token ids (n, 8): id 0, or 1 where 0 pads, so no row is all padding (the pad id may be the vocabulary's
    last, as GPT-2's end-of-text token is)."""
    pad = getattr(spec.tokenizer, "pad_token_id", 0) or 0
    return torch.full((n, min(8, spec.size)), 1 if pad == 0 else 0, dtype=torch.long)


class TextClassifier(TransferModel):
    """A text model: ``head(pool(encoder(input_ids, attention_mask)))`` (see :mod:`.text`).

    The contract explainers rely on: ``forward(input_ids (N, T), attention_mask=None) -> logits (N, C)``
    with the mask ``input_ids != pad_token_id`` when None and trailing all-padding columns trimmed;
    :meth:`get_input_embeddings` is the word-embedding module; ``pad_token_id`` the padding id.
    Blocks are the embeddings and each encoder layer, so ``partial`` trains the top k layers.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int, input_spec: InputSpec, layer_trace: Trace):
        super().__init__(backbone, head, feature_dim, input_spec, layer_trace)
        self.blocks = backbone.block_names()
        self.pad_token_id = backbone.pad_token_id
        self.embeddings_block = backbone.embeddings_name()  # what --freeze-embeddings keeps frozen

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.backbone(input_ids, attention_mask))

    def forward_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(input_ids, attention_mask)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.get_input_embeddings()


TRANSFER_MODEL = TextClassifier


def model_dir(source) -> Path:
    """The Hugging Face directory of a :class:`~xferdiag.models.ModelSource` (its config, weights and tokenizer)."""
    return network.minilm_dir() if source.kind == "builtin" else Path(source.arch).expanduser().resolve()


def directory_classifier(source, pretrained: bool, num_classes: int | None = None) -> nn.Module:
    """The classifier of ``source``'s directory with its weights (``pretrained``) or random ones."""
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return network.build_text_classifier(model_dir(source), source.options, source.canonical, pretrained=pretrained, **kwargs)


def position_limit(path, source) -> int | None:
    """Tokens a transformer's learned position embeddings cover (RoBERTa's first two rows are reserved), where
    config.json says; None for an LSTM/GRU over its embeddings, which reads no positions."""
    if network.parse_options(source.options, source.canonical)["encoder"] != "transformer":
        return None
    config = network.check_model_dir(path, source.canonical)
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or positions <= 0:
        return None
    return positions - 2 if "roberta" in str(config.get("model_type", "")) else positions


def directory_input_spec(source, max_length: int | None) -> InputSpec:
    """Rows of ``max_length`` token ids made by the model directory's own tokenizer; without ``max_length``,
    the default or the most the model takes, whichever is fewer."""
    path = model_dir(source)
    tokenizer = network.load_tokenizer(str(path))
    limit = getattr(getattr(tokenizer, "init_kwargs", {}), "get", lambda *_: None)("model_max_length")
    limits = {"the model takes at most {} tokens": limit if isinstance(limit, int) and limit > 0 else None,
              "the model has position embeddings for {} tokens": position_limit(path, source)}
    length = int(max_length or min([DEFAULT_MAX_LENGTH, *filter(None, limits.values())]))
    for reason, most in limits.items():
        if most is not None and most < length:
            raise ModelError(f"max_length {length}: {reason.format(most)}; give {most} or less")
    capped = not max_length and length < DEFAULT_MAX_LENGTH
    origin = f"tokenizer of {source.canonical}, {length} tokens{' (the most the model takes)' if capped else ''}"
    return InputSpec(0, length, (), (), origin, tokenizer=tokenizer, kind=TEXT)
