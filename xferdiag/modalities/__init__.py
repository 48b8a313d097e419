"""Modalities as plug-ins: each says which data it handles, how to batch it and how to explain it.

The commands look a domain's modality up here and never branch on the kind of data themselves;
text is one (:mod:`.text`), asked before images because an image is "anything not a table".
"""

from __future__ import annotations

from ..data import Domain
from .base import ExplainJob, Modality
from .image import ImageModality
from .table import TableModality
from .text import TextModality

TEXT, IMAGE, TABLE = TextModality(), ImageModality(), TableModality()
MODALITIES: tuple[Modality, ...] = (TEXT, IMAGE, TABLE)
"""Asked in order; the first that handles a domain explains it."""

METHODS = tuple(dict.fromkeys(name for modality in (IMAGE, TABLE, TEXT) for name in modality.methods))
"""Every explainer any modality has, images' first (a method a modality lacks is skipped there)."""


def can_explain_kind(kind: str | None) -> bool:
    """Whether data of ``kind`` (as the run records it) can be explained by this build: False only for a modality
    named ``kind`` whose explainers are absent (text, without ``xferdiag.explainers.text``)."""
    modality = next((m for m in MODALITIES if m.name == kind), None)
    return modality is None or modality.can_explain()


def modality_of(domain: Domain) -> Modality:
    return next(modality for modality in MODALITIES if modality.handles(domain))


__all__ = ["METHODS", "can_explain_kind", "MODALITIES", "ExplainJob", "Modality", "modality_of"]
