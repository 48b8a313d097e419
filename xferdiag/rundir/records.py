"""Records inside run.json whose shape the run-directory contract owns (docs/rundir.md)."""

from __future__ import annotations

from ..data.images import TOKENS, InputSpec
from ..errors import RunDirError
from .layout import RUN_JSON


def input_record(spec: InputSpec) -> dict:
    """run.json's ``input``: plain numbers and the origin sentence."""
    return {"channels": spec.channels, "size": spec.size, "mean": list(spec.mean), "std": list(spec.std), "origin": spec.origin}


def input_from_record(record: dict | None) -> InputSpec | None:
    """The spec :func:`input_record` wrote (None for runs made before run.json recorded one, and for text
    models, whose spec holds their tokenizer: it is rebuilt from the model and ``max_length``)."""
    if not isinstance(record, dict) or record.get("channels") == TOKENS:
        return None
    try:
        return InputSpec(int(record["channels"]), int(record["size"]), tuple(map(float, record["mean"])),
                         tuple(map(float, record["std"])), str(record.get("origin", "")))
    except (KeyError, TypeError, ValueError):
        raise RunDirError(f"{RUN_JSON}: 'input' should hold channels, size, mean and std (docs/rundir.md)") from None
