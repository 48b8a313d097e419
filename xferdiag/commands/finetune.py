"""``finetune``: train the transfer arm and its paired scratch baseline into a run directory.

For every seed both arms see the same splits, the same data order and augmentation stream, and
the same budget (epochs, unless ``scratch_epochs`` gives the baseline another). Arms differ only in
where the weights start and in the learning-rate policy documented in :func:`arm_plans`.

Launched by ``torchrun`` it trains data-parallel (see :mod:`.distributed`); ``batch_size`` is
then the global batch, shared out between the ranks, and only rank 0 writes the run directory.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from .. import health, rundir, sweeps
from .._version import __version__
from ..config import RunConfig
from ..data import Domain
from ..data.spec import InputSpec
from ..engine import distributed
from ..engine.lr_search import SEARCH_EPOCHS, candidate_rates, search_lr
from ..engine.strategies import Phase, fused_optimizer, phases_for
from ..engine.trainer import ArmPlan, ArmTrainer, Runtime, TrainResult
from ..environment import describe, set_threads
from ..errors import ConfigError, RunDirError
from ..modalities.registry import check_options
from ..rundir.records import input_from_record, input_record
from ..tasks.base import Task
from ..tasks.descriptor import describe_task
from ..tasks.prepared import Prepared, PreparedPoint
from ..tasks.registry import task_for


def _shared_settings(config: RunConfig) -> dict:
    """The optimisation settings every arm (and every candidate of the scratch lr search) trains under."""
    return dict(
        optimizer=config.optimizer, momentum=config.momentum, weight_decay=config.weight_decay,
        schedule=config.schedule, warmup_epochs=config.warmup_epochs, step_size=config.step_size,
        gamma=config.gamma, patience=config.patience, batch_size=config.batch_size, group_by_length=config.group_by_length,
    )


def scratch_plan(config: RunConfig, task: Task, lr: float, epochs: int, name: str = "scratch") -> ArmPlan:
    return ArmPlan(name, [Phase("full", epochs)], lr, task=task, **_shared_settings(config))


def scratch_epochs(config: RunConfig) -> int:
    """The (1x) scratch arm's budget: ``scratch_epochs``, else ``epochs`` (also under ``auto``, whose 1x is ``epochs``)."""
    return config.scratch_epochs if isinstance(config.scratch_epochs, int) else config.epochs


def arm_plans(config: RunConfig, task: Task, searched_lr: float | None = None) -> dict[str, ArmPlan]:
    """One plan per transfer arm (``transfer``, or one per value of a sweep: :mod:`xferdiag.sweeps`), then the scratch arm.

    Learning-rate policy for a fair baseline: the scratch arm trains every layer from random
    initialisation with the learning rate the transfer arm gives its *new* layers (``lr``; the first of an
    ``lr`` sweep, pinned once for every arm), under the same optimiser, schedule and epochs, unless
    ``scratch_lr`` says otherwise (with "auto", the rate the search found, ``searched_lr``) and
    ``scratch_epochs`` gives it a longer budget (He et al. 2019: scratch training often catches up given
    more epochs; ``auto`` trains it at 1x, 2x and 4x ``epochs``, as arms ``scratch``, ``scratch-2x``, ``scratch-4x``).
    Pretrained-only options (backbone multiplier, layer decay, L2-SP, frozen embeddings) do
    not apply to it: random embeddings kept frozen would leave the baseline a fixed random code for every word.
    """
    plans = {}
    for arm, setting in sweeps.arm_settings(config.to_dict()).items():
        own = config.replace(**setting)
        plans[arm] = ArmPlan(
            arm, phases_for(own.strategy, own.epochs, own.lp_epochs, own.partial_blocks), own.lr,
            backbone_lr_mult=own.backbone_lr_mult, layer_decay=own.layer_decay, l2sp=own.l2sp,
            freeze_embeddings=own.freeze_embeddings, task=task, **_shared_settings(config),
        )
    if config.baseline == "scratch":
        lr = searched_lr if config.scratch_lr == "auto" else config.scratch_lr or sweeps.scratch_base_lr(config.to_dict())
        for arm, multiple in sweeps.scratch_arms(config.to_dict()).items():
            plans[arm] = scratch_plan(config, task, lr, multiple * scratch_epochs(config), name=arm)
    return plans


def _check_sweep(config: RunConfig, task: Task, quiet: bool) -> None:
    """A sweep (or the catch-up sweep of ``--scratch-epochs auto``) needs a task that supports one; an ``lr`` sweep says on
    the terminal which rate its one scratch arm takes."""
    if sweeps.catches_up(config.to_dict()) and not describe_task(task.name).supports("sweep"):
        raise ConfigError(f"scratch_epochs: the catch-up sweep is {describe_task(task.name).not_yet(task.name)}; give a number")
    sweep = sweeps.sweep_of(config.to_dict())
    if sweep is None:
        return
    if not describe_task(task.name).supports("sweep"):
        raise ConfigError(f"{sweep.setting}: a sweep is {describe_task(task.name).not_yet(task.name)}; give one value")
    if sweep.setting == "lr" and config.baseline == "scratch" and not quiet and distributed.is_main():
        how = {None: f"the first of --lr, {sweeps.scratch_base_lr(config.to_dict()):g} (--scratch-lr sets another)",
               "auto": "searched once around the first of --lr (--scratch-lr auto)"}.get(config.scratch_lr,
                                                                                         f"--scratch-lr {config.scratch_lr}")
        print(f"scratch arm: one learning rate for every arm of the --lr sweep: {how}", file=sys.stderr)


def runtime_for(config: RunConfig, quiet: bool) -> tuple[Runtime, int]:
    """The compute settings of ``config`` (under torchrun: this rank's GPU and share of the cores).

    On a GPU cuDNN autotuning is switched on: inputs have fixed sizes, so the fastest convolution
    algorithm is found once and reused.
    """
    device = distributed.rank_device(config.device)
    threads = set_threads(config.threads or distributed.threads_per_rank())
    amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")
    progress = not quiet and sys.stderr.isatty()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return Runtime(device, amp, config.workers, config.channels_last, progress, config.compile,
                   config.checkpoint_every), threads


def describe_runtime(runtime: Runtime, threads: int, batch_size: int) -> dict:
    """run.json's ``environment``: versions and every setting that changes speed or numerics."""
    world = distributed.world_size()
    dtype = runtime.amp_dtype
    return describe(
        runtime.device, threads, amp=runtime.amp, amp_dtype=str(dtype).removeprefix("torch.") if dtype else None,
        channels_last=runtime.channels_last, compile=runtime.compile, fused_optimizer=fused_optimizer(runtime.device),
        workers=runtime.workers,
        pin_memory=runtime.device.type == "cuda", cudnn_benchmark=runtime.device.type == "cuda" and torch.backends.cudnn.benchmark,
        world_size=world, dist_backend=distributed.backend(), per_rank_batch=batch_size / world,
    )


def _write_run_files(root: Path, config: RunConfig, command: list[str], env: dict, prepared: Prepared, point: PreparedPoint) -> None:
    """data.json and the task's run-level files first, then run.json (kept as it is on resume: it records
    when and how the run began)."""
    run = rundir.RunDir(root)
    data = point.record
    if prepared.source_size is not None:
        data = {**data, "splits": {**data["splits"], "source": {"all": prepared.source_size}}}
    rundir.write_json(run.data_json, data)
    rundir.write_run_records(run, point.run_records)
    if run.run_json.is_file():
        _record_added_seeds(run, config.seeds)
    else:
        rundir.write_json(run.run_json, {
            "schema": rundir.SCHEMA_VERSION, "xferdiag_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "config": config.to_dict(), "input": input_record(prepared.spec), "environment": env,
            **({"model": prepared.model_record} if prepared.model_record else {}),
        })


def _record_added_seeds(run: rundir.RunDir, seeds: int) -> None:
    """A run resumed with more seeds than run.json records (``--resume RUN --seeds N``): record the new count."""
    meta = rundir.read_json(run.run_json)
    if seeds > meta["config"].get("seeds", 0):
        rundir.write_json(run.run_json, {**meta, "config": {**meta["config"], "seeds": seeds}})


def resume_config(run_dir: str | Path, seeds: int | None = None) -> RunConfig:
    """The config a run directory records, with ``seeds`` in place of its own when given (adding seeds)."""
    run = rundir.RunDir(run_dir)
    config = RunConfig.from_dict(run.check()["config"], source=str(run.run_json))
    return config if seeds is None else config.replace(seeds=seeds)


def _prepare_out(out: Path, resume: bool, allow_existing: bool, seeds: int) -> None:
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder; choose another --out")
    if resume:
        recorded = rundir.RunDir(out).check()["config"].get("seeds")
        if isinstance(recorded, int) and seeds < recorded:
            raise ConfigError(f"seeds: {out} has {recorded} seeds and a resumed run can only add seeds, got {seeds}")
    elif out.exists() and any(out.iterdir()) and not allow_existing:
        raise RunDirError(f"{out}: already exists and is not empty; use --resume to continue it or choose another --out")


def _check_world_fits(config: RunConfig, sizes: dict[str, int]) -> None:
    """Every rank needs examples in every batch and every split."""
    world = distributed.world_size()
    if world > 1 and config.batch_size < world:
        raise ConfigError(f"batch_size: {config.batch_size} is the global batch and must be at least the number of processes ({world})")
    small = {k: n for k, n in sizes.items() if n < world}
    if small:
        raise ConfigError(f"splits {small}: each needs at least one example per process ({world}); use fewer processes or more data")


def train_pair(root: Path, config: RunConfig, prepared: Prepared, point: PreparedPoint, runtime: Runtime, env: dict,
               command: list[str]) -> None:
    """Train every arm for every seed into ``root`` (skipping seeds already finished)."""
    _check_world_fits(config, point.sizes)
    if distributed.is_main():
        _write_run_files(root, config, command, env, prepared, point)
    run = rundir.RunDir(root)
    searched = None
    if config.baseline == "scratch" and config.scratch_lr == "auto":
        searched = _scratch_lr_search(run, config, prepared.task, point, runtime)["chosen"]
    plans = arm_plans(config, prepared.task, searched)
    features: dict = {}  # a linear probe's frozen-backbone features, shared by its seeds
    for seed in range(config.seeds):
        for arm, plan in plans.items():
            folder = run.seed(arm, seed)
            if distributed.on_main(folder.metrics_json.is_file):  # finished: metrics.json is written last
                continue
            pretrained = not sweeps.is_scratch(arm)
            model = point.new_model(pretrained, seed)
            reference = ({k: v.detach().clone().to(runtime.device) for k, v in model.backbone.state_dict().items()}
                         if pretrained else None)
            trainer = ArmTrainer(plan, runtime, seed, checkpoint=folder.checkpoint_pt, feature_store=features)
            result = trainer.fit(model, point.data, reference)
            if distributed.is_main():
                write_seed(folder, result)
    baselines = point.baselines(list(range(config.seeds))) if distributed.is_main() else None
    if baselines is not None:
        rundir.write_json(run.baselines_json, baselines)
    if sweeps.SCRATCH in plans and distributed.is_main():
        from .verdict import verdict_for_run

        verdict_for_run(root)


def write_seed(folder: rundir.SeedDir, result: TrainResult) -> None:
    """A finished seed through the run directory's one writer (metrics.json last, the checkpoint removed)."""
    rundir.write_finished_seed(folder, state_dict=result.state_dict, records=result.test.record(), metrics=result.metrics,
                               history=result.history)


def _scratch_lr_search(run: rundir.RunDir, config: RunConfig, task: Task, point: PreparedPoint, runtime: Runtime) -> dict:
    """The scratch lr search of ``run`` (see :mod:`.lr_search`): read back from run.json when an
    earlier, interrupted invocation finished it, else run now and recorded there before the arms train.

    Candidates train through :class:`ArmTrainer` like the real arm, without checkpoints, and their
    results are not saved: nothing of theirs lands in the run directory.
    """
    recorded = distributed.on_main(lambda: rundir.read_json(run.run_json).get("scratch_lr_search"))
    if recorded:
        return recorded
    rates, epochs = candidate_rates(sweeps.scratch_base_lr(config.to_dict())), min(SEARCH_EPOCHS, scratch_epochs(config))
    announce = runtime.progress and distributed.is_main()
    if announce:
        print(f"scratch arm: trying learning rates {', '.join(f'{lr:g}' for lr in rates)} for {epochs} epochs each "
              "on the validation split (--scratch-lr auto)", file=sys.stderr)

    plans, scores = {lr: scratch_plan(config, task, lr, epochs, name=f"scratch lr {lr:g}") for lr in rates}, {}

    def train(lr: float) -> dict:
        scores[lr] = ArmTrainer(plans[lr], runtime, seed=0).fit(point.new_model(False, 0), point.data).metrics["val"]
        return scores[lr]

    record = search_lr(rates, epochs, train, task, learned=lambda summary: task.learned(summary, point.record))
    if announce:
        unknown = " (whether any rate learned: the task cannot tell during the search)" if record["learned"] is None else ""
        print(f"scratch arm: learning rate {record['chosen']:g} chosen (validation {task.headline(scores[record['chosen']])})"
              + unknown, file=sys.stderr)
    if record["learned"] is False and distributed.is_main():
        print(f"xferdiag: warning: {no_rate_learned(record, task.headline(scores[record['chosen']]))}", file=sys.stderr)
    if distributed.is_main():
        meta = rundir.read_json(run.run_json)
        rundir.write_json(run.run_json, {**meta, "scratch_lr_search": record})
    return record


def no_rate_learned(record: dict, headline: str) -> str:
    """The terminal's line when ``--scratch-lr auto`` found no rate that learns (``record`` is run.json's search)."""
    rates = [c["lr"] for c in record["candidates"]]
    return (f"--scratch-lr auto found no learning rate at which the scratch arm learns: none of {', '.join(f'{lr:g}' for lr in rates)} "
            f"learned on the validation split in {record['epochs']} epochs; {record['chosen']:g} is kept by its tie-breaks "
            f"(validation {headline}). The scratch arm will likely not learn either: give it a longer budget "
            f"(--scratch-epochs N, e.g. {health.LONGER_BUDGET}x today's)")


def _recorded_input(out: Path) -> InputSpec | None:
    """The input a run began with (its run.json's record): resumed, it keeps that size whatever today's rule says."""
    return distributed.on_main(lambda: input_from_record(rundir.read_json(rundir.RunDir(out).run_json).get("input")))


def finetune(
    config: RunConfig, out: str | Path, *, resume: bool = False, quiet: bool = False, command: list[str] | None = None,
    source_domain: Domain | None = None, allow_existing: bool = False,
) -> Path:
    """Fine-tune ``config.model`` on ``config.data`` (plus the scratch baseline) into ``out``; return its path."""
    out = Path(out)
    runtime, threads = runtime_for(config, quiet)
    with distributed.process_group(runtime.device):
        return _finetune(config, out, runtime, threads, resume, command, source_domain, allow_existing, quiet)


def _finetune(config: RunConfig, out: Path, runtime: Runtime, threads: int, resume: bool, command: list[str] | None,
              source_domain: Domain | None, allow_existing: bool, quiet: bool) -> Path:
    """Every rank runs this; files are rank 0's business."""
    distributed.on_main(lambda: _prepare_out(out, resume, allow_existing, config.seeds))
    recorded = _recorded_input(out) if resume else None
    prepared = task_for(config).prepare(config, source_domain=source_domain, resumed=resume, recorded_input=recorded, quiet=quiet)
    check_options(prepared.config, prepared.spec.kind)
    config = prepared.config.replace(task=prepared.task.name)  # run.json names the task that judges and reports the run
    _check_sweep(config, prepared.task, quiet)
    env = describe_runtime(runtime, threads, config.batch_size)
    command = command if command is not None else ["python-api", "finetune"]
    prepared.announce()
    points = [point.shots for point in prepared.points]
    with rundir.locked(out) if distributed.is_main() else contextlib.nullcontext():
        roots = [out if shots == points[-1] else rundir.RunDir(out).shots_point(shots) for shots in points]  # the largest at the top
        for root, point in zip(roots, prepared.points):
            train_pair(root, config.replace(shots=[point.shots]), prepared, point, runtime, env, command)
        if len(points) > 1 and config.baseline == "scratch" and distributed.is_main():
            from .shots import shots_summary

            shots_summary(out, roots, points)
    return out
