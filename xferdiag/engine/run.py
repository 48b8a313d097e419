"""``finetune``: train the transfer arm and its paired scratch baseline into a run directory.

For every seed both arms see the same splits, the same data order and augmentation stream, and
the same budget (epochs). Arms differ only in where the weights start and in the learning-rate
policy documented in :func:`arm_plans`.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from .. import __version__, rundir
from ..config import RunConfig
from ..data import Domain, TargetSplits, load_domain, split_target
from ..environment import choose_device, describe, set_threads
from ..errors import ConfigError, RunDirError
from ..models import ModelSource, build_transfer_model, load_pretrained_classifier
from .strategies import Phase, phases_for
from .trainer import ArmPlan, ArmTrainer, Runtime, SplitData, seed_everything


def arm_plans(config: RunConfig) -> dict[str, ArmPlan]:
    """The transfer arm follows the configured strategy.

    Learning-rate policy for a fair baseline: the scratch arm trains every layer from random
    initialisation with the learning rate the transfer arm gives its *new* layers (``lr``), under
    the same optimiser, schedule and epochs, unless ``scratch_lr`` says otherwise. Pretrained-only
    options (backbone multiplier, layer decay, L2-SP) do not apply to it.
    """
    common = dict(
        optimizer=config.optimizer, momentum=config.momentum, weight_decay=config.weight_decay,
        schedule=config.schedule, warmup_epochs=config.warmup_epochs, step_size=config.step_size,
        gamma=config.gamma, patience=config.patience, batch_size=config.batch_size,
    )
    plans = {
        "transfer": ArmPlan(
            "transfer", phases_for(config.strategy, config.epochs, config.lp_epochs, config.partial_blocks), config.lr,
            backbone_lr_mult=config.backbone_lr_mult, layer_decay=config.layer_decay, l2sp=config.l2sp, **common,
        )
    }
    if config.baseline == "scratch":
        plans["scratch"] = ArmPlan("scratch", [Phase("full", config.epochs)], config.scratch_lr or config.lr, **common)
    return plans


def runtime_for(config: RunConfig, quiet: bool) -> tuple[Runtime, int]:
    device = choose_device(config.device)
    threads = set_threads(config.threads)
    amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")
    progress = not quiet and sys.stderr.isatty()
    return Runtime(device, amp, config.workers, config.channels_last, progress), threads


def split_data(splits: TargetSplits, spec, augment: bool) -> SplitData:
    return SplitData(
        train=splits.dataset("train", spec, augment=augment),
        train_plain=splits.dataset("train", spec),
        val=splits.dataset("val", spec),
        test=splits.dataset("test", spec),
        num_classes=len(splits.domain.classes),
    )


def _write_run_files(root: Path, config: RunConfig, command: list[str], env: dict, splits: TargetSplits, spec, source_n: int | None) -> None:
    """data.json first, then run.json (kept as it is on resume: it records when and how the run began)."""
    run = rundir.RunDir(root)
    data = {
        "classes": splits.domain.classes, "kind": splits.domain.kind, "spec": splits.domain.spec,
        "split_seed": splits.split_seed, "shots": splits.shots,
        "splits": {"target": splits.sizes()}, "input": {"channels": spec.channels, "size": spec.size},
    }
    if source_n is not None:
        data["splits"]["source"] = {"all": source_n}
    rundir.write_json(run.data_json, data)
    if not run.run_json.is_file():
        rundir.write_json(run.run_json, {
            "schema": rundir.SCHEMA_VERSION, "xferdiag_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "config": config.to_dict(), "environment": env,
        })


def _prepare_out(out: Path, resume: bool, allow_existing: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder; choose another --out")
    if resume:
        rundir.RunDir(out).check()
    elif out.exists() and any(out.iterdir()) and not allow_existing:
        raise RunDirError(f"{out}: already exists and is not empty; use --resume to continue it or choose another --out")


def train_pair(
    root: Path, config: RunConfig, source: ModelSource, pretrained, splits: TargetSplits, runtime: Runtime,
    env: dict, command: list[str], source_n: int | None,
) -> None:
    """Train every arm for every seed into ``root`` (skipping seeds already finished)."""
    spec = source.input_spec(config.image_size)
    data = split_data(splits, spec, config.augment)
    _write_run_files(root, config, command, env, splits, spec, source_n)
    run = rundir.RunDir(root)
    for seed in range(config.seeds):
        for arm, plan in arm_plans(config).items():
            seed_dir = run.seed_dir(arm, seed)
            if (seed_dir / "metrics.json").is_file():
                continue
            seed_everything(seed)
            model = build_transfer_model(
                source, len(splits.domain.classes), pretrained=pretrained if arm == "transfer" else None,
                head_hidden=config.head_hidden, head_dropout=config.head_dropout, image_size=config.image_size,
            )
            reference = {k: v.detach().clone().to(runtime.device) for k, v in model.backbone.state_dict().items()} if arm == "transfer" else None
            if config.compile:
                model = torch.compile(model)
            ArmTrainer(plan, runtime, seed_dir, seed).fit(model, data, reference)
    if "scratch" in arm_plans(config):
        from ..negative import verdict_for_run

        verdict_for_run(root)


def finetune(
    config: RunConfig, out: str | Path, *, resume: bool = False, quiet: bool = False, command: list[str] | None = None,
    source_domain: Domain | None = None, allow_existing: bool = False,
) -> Path:
    """Fine-tune ``config.model`` on ``config.data`` (plus the scratch baseline) into ``out``; return its path."""
    out = Path(out)
    _prepare_out(out, resume, allow_existing)
    source = ModelSource.parse(config.model)
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    if pretrained is None:
        raise ConfigError(
            f"model {config.model!r} has no pretrained weights: give --pretrained-checkpoint FILE or NAME:WEIGHTS "
            "(e.g. resnet18:IMAGENET1K_V1)"
        )
    domain = load_domain(config.data)
    if source_domain is None and config.source_data:
        source_domain = load_domain(config.source_data)
    runtime, threads = runtime_for(config, quiet)
    env = describe(runtime.device, threads, amp=runtime.amp, channels_last=runtime.channels_last, compile=config.compile, workers=config.workers)
    command = command if command is not None else ["python-api", "finetune"]
    source_n = len(source_domain) if source_domain is not None else None
    with rundir.locked(out):
        points = sorted(config.shots, key=lambda s: float("inf") if s == "all" else s)
        for shots in points:
            splits = split_target(domain, config.val_fraction, config.test_fraction, config.split_seed, shots)
            root = out if shots == points[-1] else out / "shots" / str(shots)
            train_pair(root, config.replace(shots=[shots]), source, pretrained, splits, runtime, env, command, source_n)
        if len(points) > 1 and config.baseline == "scratch":
            from ..shots import shots_summary

            shots_summary(out, [out if s == points[-1] else out / "shots" / str(s) for s in points], points)
    return out
