"""What a text model takes and is wrapped in: rows of token ids, and the classifier explainers rely on."""

from __future__ import annotations

import torch
from torch import nn

from ...data.spec import InputSpec
from ...models.layers import Trace
from ...models.transfer import TransferModel
from ..kinds import TEXT

NAME = TEXT


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
