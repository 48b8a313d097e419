"""'What was run': the few facts a reader needs, the full config, and the command to reproduce."""

from __future__ import annotations

import json
import shlex

from ...modalities.descriptor import describe_modality
from .. import fmt
from .common import Arm, config_value, mean, model_name, run_config


def setup(run: dict, data: dict, arms: dict[str, Arm]) -> dict:
    config = run_config(run)
    splits = data.get("splits") or {}
    classes = data["classes"]
    shots = data.get("shots")
    rows = [
        ("Model", _model(run, config)),
        ("Strategy", _listed(config_value(config, "strategy"))
         + ("; the pretrained embeddings kept frozen (transfer arm)" if config_value(config, "freeze_embeddings") is True else "")),
        ("Data", f"{data.get('kind', '?')}; target {_splits(splits.get('target'))}"
                 + (f"; source {_splits(splits['source'])}" if splits.get("source") else "")),
        ("Target training size", "all available examples" if shots in (None, "all") else f"{shots} examples per class"),
        ("Input", describe_modality(data["kind"]).input_words(data.get("input") or {}, config_value(config, "truncate") is not False)
         or fmt.DASH),
        ("Classes", f"{len(classes)}: " + ", ".join(classes[:12]) + (" …" if len(classes) > 12 else "")),
        ("Seeds", "; ".join(f"{name} {', '.join(map(str, arm['seeds']))}" for name, arm in arms.items())),
        ("Budget", "; ".join(_budget(config, arms)) or fmt.DASH),
    ]
    audit = run.get("audit")
    if audit:  # run.json is read typed (rundir.documents.RunRecord): an audit block is an object or absent
        rows.insert(1, ("Fine-tuned elsewhere", (f"the {audit.get('arm', 'transfer')} arm is the checkpoint "
                        f"{audit.get('checkpoint', '?')}, evaluated as is by 'xferdiag audit' (no training history)")))
    command = run.get("command")
    return {"rows": rows, "config": _flatten(config) if config else [],
            "command": shlex.join(map(str, command)) if command else None}


def _budget(config: dict, arms: dict[str, Arm]) -> list[str]:
    """Epochs configured and run, and each arm's training time per seed."""
    epochs_run = mean([m.get("epochs_run") for arm in arms.values() for m in arm["metrics"].values()])
    seconds = {name: mean([m.get("train_seconds") for m in arm["metrics"].values()]) for name, arm in arms.items()}
    budget = []
    if config_value(config, "epochs") is not None:
        budget.append(f"{config_value(config, 'epochs')} epochs configured")
    if epochs_run is not None:
        budget.append(f"{fmt.num(epochs_run)} epochs run on average")
    return budget + [f"{name} {fmt.seconds(s)} per seed" for name, s in seconds.items() if s is not None]


def _listed(value: object) -> str:
    """A setting as a reader writes it: a sweep's values comma-separated, not as a Python list."""
    if not value:
        return fmt.DASH
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _flatten(config: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(config, dict) and config:
        return [row for k, v in config.items() for row in _flatten(v, f"{prefix}{k}.")]
    value = config if isinstance(config, str) else json.dumps(config)
    return [(prefix.rstrip("."), value)]


def _splits(splits: object) -> str:
    if not isinstance(splits, dict):
        return fmt.DASH
    return " · ".join(f"{k} {v}" for k, v in splits.items())


def _model(run: dict, config: dict) -> str:
    """The model's name; where run.json describes it further (a detector), its architecture and what its
    transfer arm started from."""
    described = run.get("model") or {}
    name = str(described.get("model") or model_name(config) or fmt.DASH)
    width = described.get("fpn_channels")
    if isinstance(width, int):  # a pyramid xferdiag put on --backbone: its width trades mAP for speed (reports/benchmarks.md)
        name += f" ({width}-channel feature pyramid; torchvision's detectors use 256)"
    transfer = described.get("transfer") if isinstance(described.get("transfer"), dict) else {}
    return f"{name}; the transfer arm starts from {transfer['description']}" if transfer.get("description") else name
