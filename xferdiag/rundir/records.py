"""Records inside run.json whose shape the run-directory contract owns (docs/rundir.md)."""

from __future__ import annotations

from ..data.spec import InputSpec
from ..errors import RunDirError
from ..modalities.descriptor import describe_modality
from .kinds import input_kind
from .layout import RUN_JSON


def input_record(spec: InputSpec) -> dict:
    """run.json's ``input``: plain numbers and the origin sentence."""
    return {"kind": spec.kind, "channels": spec.channels, "size": spec.size, "mean": list(spec.mean), "std": list(spec.std),
            "origin": spec.origin}


def input_from_record(record: dict | None) -> InputSpec | None:
    """The spec :func:`input_record` wrote (None for runs made before run.json recorded one, and where the
    record cannot rebuild it: a text model's spec holds its tokenizer, rebuilt from the model and ``max_length``)."""
    if not isinstance(record, dict) or not describe_modality(kind := input_kind(record)).recorded_input:
        return None
    try:
        return InputSpec(int(record["channels"]), int(record["size"]), tuple(map(float, record["mean"])),
                         tuple(map(float, record["std"])), str(record.get("origin", "")), kind=kind)
    except (KeyError, TypeError, ValueError):
        raise RunDirError(f"{RUN_JSON}: 'input' should hold channels, size, mean and std (docs/rundir.md)") from None
