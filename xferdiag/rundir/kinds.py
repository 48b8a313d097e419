"""Older spellings of the kind of data, read once here so that everything past the run directory speaks
one vocabulary (:data:`xferdiag.modalities.kinds.KINDS`).

Before it, data.json's ``kind`` named the loader ("digits", "fashion-mnist", "npz", "folder", and a
detection run's "detection", all images), table explanations said "tabular", an image run's explanation
index wrote no kind, and run.json's ``input`` marked a text model's spec with ``channels`` -1 and a
table model's with 0.
"""

from __future__ import annotations

from ..modalities.descriptor import known
from ..modalities.kinds import IMAGE, TABLE, TEXT

OLD_KINDS = {"tabular": TABLE, "digits": IMAGE, "fashion-mnist": IMAGE, "npz": IMAGE, "folder": IMAGE, "detection": IMAGE}
"""Every spelling an older run directory may hold, by the kind it means."""
OLD_CHANNELS = {-1: TEXT, 0: TABLE}
"""run.json's ``input.channels`` sentinels before the input record named its kind."""


def kind_of(recorded: object) -> str:
    """The kind a record names, in today's vocabulary; missing (an image run's index) or unknown reads as images."""
    if isinstance(recorded, str) and recorded not in OLD_KINDS and known(recorded):  # the built-in kinds, every plug-in's
        return recorded
    return OLD_KINDS.get(recorded, IMAGE) if isinstance(recorded, str) else IMAGE


def input_kind(record: dict) -> str:
    """The kind of an input record: named, or told by an older record's channel sentinel."""
    if "kind" in record:
        return kind_of(record["kind"])
    channels = record.get("channels")
    return OLD_CHANNELS.get(channels, IMAGE) if isinstance(channels, int) else IMAGE


def with_kind(record: dict | None) -> dict | None:
    """``record`` (data.json, an explanation index) with its ``kind`` in today's vocabulary; None stays None."""
    return None if record is None else {**record, "kind": kind_of(record.get("kind"))}
