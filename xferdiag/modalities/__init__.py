"""Modalities as plug-ins: each says which data it handles, how to batch it and how to explain it.

The commands look a domain's modality up here and never branch on the kind of data themselves;
adding text means adding a plug-in to :data:`MODALITIES`.
"""

from __future__ import annotations

from ..data import Domain
from .base import ExplainJob, Modality
from .image import ImageModality
from .table import TableModality

MODALITIES: tuple[Modality, ...] = (ImageModality(), TableModality())
"""Asked in order; the first that handles a domain explains it."""

METHODS = tuple(dict.fromkeys(name for modality in MODALITIES for name in modality.methods))
"""Every explainer any modality has (a method a modality lacks is skipped there, and said so)."""


def modality_of(domain: Domain) -> Modality:
    return next(modality for modality in MODALITIES if modality.handles(domain))


__all__ = ["METHODS", "MODALITIES", "ExplainJob", "Modality", "modality_of"]
