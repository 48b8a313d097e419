"""What the commands that read a finished run share: its configuration, data, splits, device and models.

``analyze`` and ``explain`` each build one :class:`RunContext`; every part is built the first time
it is asked for, in the order the command needs it, so a command that stops early (a cached
result) loads nothing it does not use.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from .. import rundir
from ..config import RunConfig
from ..data import Domain, InputSpec, TargetSplits
from ..environment import choose_device
from ..errors import RunDirError
from ..modalities.loading import load_domain
from ..models import (
    InputRequest,
    ModelSource,
    build_transfer_model,
    load_finetuned,
    load_pretrained_classifier,
    resolve_input_spec,
)
from ..rundir.layout import METRICS_JSON
from ..rundir.records import input_from_record
from ..rundir.status import lacking_stage, run_modality
from ..tasks.classification.prepare import target_splits
from ..tasks.descriptor import describe_task


class RunModels:
    """The pretrained classifier, pretrained backbone and fine-tuned models of a run, on one device.

    An arm's model is loaded when first asked for: analyze needs only the transfer arm's."""

    def __init__(self, run: rundir.RunDir, config: RunConfig, num_classes: int, device: torch.device, arm: str = "transfer",
                 recorded_input: dict | None = None):
        self.source = ModelSource.parse(config.model)
        self.classifier = load_pretrained_classifier(self.source, config.pretrained_checkpoint)
        spec = input_from_record(recorded_input) or resolve_input_spec(self.source, self.classifier, InputRequest.of(config))
        self._build = {"head_hidden": config.head_hidden, "head_dropout": config.head_dropout, "input_spec": spec}
        self.pretrained = build_transfer_model(self.source, num_classes, pretrained=self.classifier, **self._build).to(device).eval()
        self._run, self._num_classes, self._device = run, num_classes, device
        self._seeds = {name: seeds[0] for name in run.arms() if (seeds := run.seeds(name))}
        self._loaded: dict[str, tuple[int, nn.Module]] = {}
        if arm not in self._seeds:
            raise RunDirError(f"{run.root}: no finished '{arm}' arm (arms/{arm}/seed-*/{METRICS_JSON}); "
                              "run 'xferdiag finetune' first")
        self.input_spec = self.pretrained.input_spec

    def arm(self, name: str) -> tuple[int, nn.Module]:
        """(seed, model) of the arm's first finished seed, in eval mode on the device."""
        if name not in self._loaded:
            seed = self._seeds[name]
            model, _ = load_finetuned(self._run.seed(name, seed).model_pt, self.source, self._num_classes, **self._build)
            self._loaded[name] = (seed, model.to(self._device).eval())
        return self._loaded[name]

    @property
    def arms(self) -> dict[str, tuple[int, nn.Module]]:
        """Every finished arm's (seed, model)."""
        return {name: self.arm(name) for name in self._seeds}


def require_stage(run_dir: str | Path, stage: str) -> None:
    """One clear line where the run's task or kind of data does not support ``stage`` yet (their descriptors' ``stages``)."""
    run = rundir.RunDir(run_dir)
    task = (run.check().get("config") or {}).get("task")
    why = lacking_stage(describe_task(task), task, run_modality(run), stage)
    if why:
        raise RunDirError(f"{run.root}: '{stage}' is {why}; 'xferdiag report' renders what the run has")


def run_config(run: rundir.RunDir, meta: dict) -> RunConfig:
    """The run's configuration; analyze and explain rebuild the models and data from its data and model."""
    config = meta.get("config") or {}
    missing = [key for key in ("data", "model") if not config.get(key)]
    if missing:
        raise RunDirError(f"{run.run_json}: 'config' has no {' or '.join(repr(k) for k in missing)}; analyze and explain "
                          "rebuild the data and the model from them (docs/rundir.md)")
    return RunConfig.from_dict(config, source=str(run.run_json))


class RunContext:
    """One run directory, checked, with its parts built on first use (config, data, splits, device, models)."""

    def __init__(self, run_dir: str | Path):
        self.run = rundir.RunDir(run_dir)
        self.meta = rundir.validate(run_dir)

    @cached_property
    def config(self) -> RunConfig:
        return run_config(self.run, self.meta)

    @cached_property
    def classes(self) -> list[str]:
        return rundir.read_data(self.run)["classes"]

    @cached_property
    def device(self) -> torch.device:
        return choose_device(self.config.device)

    @cached_property
    def models(self) -> RunModels:
        return RunModels(self.run, self.config, len(self.classes), self.device, recorded_input=self.meta.get("input"))

    @property
    def input_spec(self) -> InputSpec:
        return self.models.input_spec

    @cached_property
    def target(self) -> Domain:
        """The target domain the arms were trained on."""
        return load_domain(self.config.data)

    @cached_property
    def source(self) -> Domain | None:
        """The source domain, or None when the config names no source data."""
        return load_domain(self.config.source_data) if self.config.source_data else None

    @cached_property
    def splits(self) -> TargetSplits:
        """The target's train/val/test split, as the trainer made it (same fractions, seed and shots, and
        with truncation off the same long texts left out: that needs the model's tokenizer)."""
        spec = self.input_spec if not self.config.truncate else None
        return target_splits(self.config, self.target, spec, self.config.shots[:1])[0]
