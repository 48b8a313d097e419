"""``xferdiag audit``: a standard run directory for a model fine-tuned elsewhere, without training it.

The fine-tuned checkpoint becomes the ``transfer`` arm (seed 0): it is evaluated on the target's
validation and test splits and saved as a TransferModel state_dict; it has no training history. A
Hugging Face directory (Trainer, ``save_pretrained``) is read with its own classification head.
With ``baseline="scratch"`` the paired scratch arm is trained by the engine on the same splits
(``train_pair`` skips the finished transfer arm) and the verdict follows. From then on analyze,
explain and report treat the directory like any other run.
"""

from __future__ import annotations

from pathlib import Path

from .. import rundir
from ..config import RunConfig
from ..data import load_domain
from ..engine.features import extract_features
from ..engine.trainer import Runtime, SplitData
from ..errors import ConfigError, RunDirError
from ..models import (
    ModelSource,
    TransferModel,
    load_finetuned,
    load_finetuned_directory,
    load_pretrained_classifier,
    own_head_source,
)
from ..models.tabular import model_for_data
from ..sweeps import sweep_of
from ..tasks.classification.metrics import evaluate_logits
from ..tasks.classification.prepare import model_input, prepared_point, say_input, target_splits, warn_left_out
from ..tasks.classification.task import ClassificationTask
from ..tasks.descriptor import describe_task
from ..tasks.prepared import Prepared
from ..tasks.registry import task_for
from .finetune import describe_runtime, runtime_for, train_pair

AUDIT_NOTE = "trained outside xferdiag and evaluated as is by 'xferdiag audit': no training history"


def evaluate_arm(model: TransferModel, data: SplitData, runtime: Runtime, folder: rundir.SeedDir) -> dict:
    """Evaluate a model that xferdiag did not train and write it as a finished seed (no history)."""
    model = model.to(runtime.device).eval()
    results = {}
    for split in ("val", "test"):
        logits, labels = extract_features(model, getattr(data, split), device=runtime.device, workers=runtime.workers)
        results[split] = evaluate_logits(logits, labels, data.num_classes)
    metrics = {"test": results["test"].summary(), "val": results["val"].summary(), "epochs_run": None, "best_epoch": None,
               "train_seconds": None, "note": AUDIT_NOTE}
    rundir.write_finished_seed(folder, state_dict=model.state_dict(), records=results["test"].record(), metrics=metrics)
    return metrics


def audit(config: RunConfig, checkpoint: str | Path, out: str | Path, *, quiet: bool = False,
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
    config = config.replace(seeds=1, model=model_for_data(config.model, config.data))
    source = ModelSource.parse(config.model)
    hf_directory = Path(checkpoint).is_dir()
    if hf_directory:
        source = own_head_source(source, checkpoint)
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    if pretrained is None:
        raise ConfigError(f"audit: give the weights {config.model!r} started from with --pretrained-checkpoint FILE "
                          "or NAME:WEIGHTS; the analysis compares the fine-tuned model with them")
    domain = load_domain(config.data)
    source_domain = load_domain(config.source_data) if config.source_data else None
    spec, choice = model_input(config, source, pretrained, domain, source_domain)
    config = config.replace(model=source.canonical).with_absolute_paths()
    [splits] = target_splits(config, domain, spec, config.shots)
    warn_left_out(splits, spec)
    if hf_directory:
        model, form = load_finetuned_directory(checkpoint, source, domain.classes, input_spec=spec)
    else:
        model, form = load_finetuned(checkpoint, source, len(domain.classes), input_spec=spec, head_hidden=config.head_hidden,
                                     head_dropout=config.head_dropout)
    say_input(spec, choice, config, quiet)  # after the checkpoint loads: a wrong one ends in its one line
    runtime, threads = runtime_for(config, quiet)
    env = describe_runtime(runtime, threads, config.batch_size)
    point = prepared_point(config, source, pretrained, spec, splits)
    prepared = Prepared(ClassificationTask(), config, spec, [point], lambda: None,
                        source_size=len(source_domain) if source_domain is not None else None)
    run = rundir.RunDir(out)
    with rundir.locked(out):
        evaluate_arm(model, point.data, runtime, run.seed("transfer", 0))
        train_pair(out, config, prepared, point, runtime, env, command or ["python-api", "audit"])
        meta = rundir.read_json(run.run_json)
        meta["audit"] = {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_form": form, "arm": "transfer",
                         "note": AUDIT_NOTE}
        rundir.write_json(run.run_json, meta)
    return out

