"""``xferdiag audit``: a standard run directory for a model fine-tuned elsewhere, without training it.

The run's task reads the fine-tuned checkpoint in the forms other tools write (``task.prepare_audit``:
a classifier's state_dict or a Hugging Face directory; a detector's state_dict, torchvision-references
training checkpoint or DDP state_dict) and prepares the run as ``finetune`` would. The model becomes the
``transfer`` arm (seed 0): it is evaluated on the target's validation and test splits as a trained arm is
and saved with the run's state_dict keys; it has no training history. With ``baseline="scratch"`` the
paired scratch arm is trained by the engine on the same splits (``train_pair`` skips the finished transfer
arm) and the verdict follows. From then on the run's other stages treat the directory like any other run.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .. import rundir
from ..config import RunConfig
from ..engine.trainer import Runtime, SplitData, evaluate_model
from ..errors import ConfigError, RunDirError
from ..modalities.registry import check_options
from ..sweeps import sweep_of
from ..tasks.base import Task
from ..tasks.descriptor import describe_task
from ..tasks.registry import task_for
from .finetune import describe_runtime, runtime_for, train_pair

AUDIT_NOTE = "trained outside xferdiag and evaluated as is by 'xferdiag audit': no training history"


def evaluate_arm(model: nn.Module, data: SplitData, runtime: Runtime, task: Task, batch_size: int, folder: rundir.SeedDir) -> dict:
    """Evaluate a model that xferdiag did not train and write it as a finished seed (no history)."""
    results = evaluate_model(model.to(runtime.device), data, runtime, task, batch_size)
    metrics = {"test": results["test"].summary(), "val": results["val"].summary(), "epochs_run": None, "best_epoch": None,
               "train_seconds": None, "note": AUDIT_NOTE}
    rundir.write_finished_seed(folder, state_dict=model.state_dict(), records=results["test"].record(), metrics=metrics)
    return metrics


def audit(checkpoint: str | Path, config: RunConfig, out: str | Path, *, quiet: bool = False,
          command: list[str] | None = None) -> Path:
    """Evaluate the fine-tuned ``checkpoint`` (architecture, pretrained weights and data from ``config``)
    into the new run directory ``out``; train the scratch baseline too when ``config.baseline`` asks."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"{out}: already exists and is not an empty folder; choose another --out")
    task = task_for(config)
    if not describe_task(task.name).supports("audit"):
        raise ConfigError(f"audit: {describe_task(task.name).not_yet(task.name)}; 'xferdiag finetune' trains and judges both arms")
    if len(config.shots) != 1:
        raise ConfigError("audit: give one --shots value (the training size of the scratch baseline), not several")
    if sweep_of(config.to_dict()):
        raise ConfigError(f"audit: one fine-tuned model has one {sweep_of(config.to_dict()).setting}; give one value, not a sweep")
    audited = task.prepare_audit(config.replace(seeds=1), checkpoint, quiet=quiet)
    check_options(audited.prepared.config, audited.prepared.spec.kind)
    config, point = audited.prepared.config.replace(task=task.name), audited.point  # run.json names the task, as finetune's
    audited.prepared.announce()
    runtime, threads = runtime_for(config, quiet)
    env = describe_runtime(runtime, threads, config.batch_size)
    run = rundir.RunDir(out)
    with rundir.locked(out):
        evaluate_arm(audited.model, point.data, runtime, task, config.batch_size, run.seed("transfer", 0))
        train_pair(out, config, audited.prepared, point, runtime, env, command or ["python-api", "audit"])
        meta = rundir.read_json(run.run_json)
        meta["audit"] = {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_form": audited.form, "arm": "transfer",
                         "note": AUDIT_NOTE}
        rundir.write_json(run.run_json, meta)
    return out
