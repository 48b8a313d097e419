"""A toy fourth modality: fixed-length numeric sequences (a ``*.seq.npz`` file), read by a tiny 1-D convolution.

It lands without explainers: its descriptor lists every stage but explain, which ends in one line while the report
says the explanations are not available (the contract tests check both); analyze needs nothing of its own (the shift
and the analyses are measured in the models' features). Registered by one
call of :func:`xferdiag.modalities.registry.register_modality` (:func:`register`)."""

from . import model
from .data import load_sequences, write_sequences
from .plugin import SequenceModality

__all__ = ["SequenceModality", "load_sequences", "register", "write_sequences"]


def register() -> SequenceModality:
    """The toy's one registration line, kept here so the tests and the docs name the same call."""
    from xferdiag.modalities.registry import register_modality

    return register_modality(SequenceModality(), model, load_sequences)
