"""Classification made ready for ``finetune`` and ``audit``: the pretrained classifier, the input the model
takes (checked against the data before anything is written), the target's splits per training size,
the datasets, data.json's record and a fresh model per arm and seed (see :mod:`..prepared`)."""

from __future__ import annotations

import dataclasses
import functools
import sys

import numpy as np

from ...config import RunConfig
from ...data import Domain, InputSpec, TargetSplits, split_target
from ...engine import distributed
from ...engine.trainer import SplitData, seed_everything
from ...errors import ConfigError, ModelError
from ...modalities.loading import load_domain
from ...modalities.registry import keep_whole, modality_of
from ...models import (
    InputRequest,
    ModelSource,
    SizeChoice,
    build_transfer_model,
    input_lines,
    load_pretrained_classifier,
    recorded_choice,
    resolve_input,
)
from ...models.inputs import DEFAULT_SIZE
from ..base import Task
from ..prepared import Prepared, PreparedPoint


def split_data(splits: TargetSplits, spec, augment: bool) -> SplitData:
    return SplitData(
        train=splits.dataset("train", spec, augment=augment),
        train_plain=splits.dataset("train", spec),
        val=splits.dataset("val", spec),
        test=splits.dataset("test", spec),
        num_classes=len(splits.domain.classes),
    )


def target_splits(config: RunConfig, domain: Domain, spec: InputSpec | None, shots: list[int | str]) -> list[TargetSplits]:
    """The target's splits for each of ``shots`` as the run trains on them; with truncation off
    (``truncate=False``), texts longer than ``max_length`` are left out (see :func:`~xferdiag.data.split_target`),
    found by tokenising the texts once; ``spec`` is needed only then."""
    keep = keep_whole(domain, [spec], config.truncate)
    return [split_target(domain, config.val_fraction, config.test_fraction, config.split_seed, k, keep) for k in shots]


def warn_left_out(splits: TargetSplits, spec: InputSpec) -> None:
    """One line on stderr when inputs were left out for their length (truncation off), in the modality's words."""
    left_out = sum(splits.left_out.values())
    if left_out and distributed.is_main():
        noun, predicate = modality_of(splits.domain).descriptor.long_inputs
        print(f"xferdiag: warning: {left_out} of {len(splits.domain)} {noun} are {predicate.format(size=spec.size)} "
              "and are left out of their split (--no-truncate)", file=sys.stderr)


def data_record(splits: TargetSplits, spec: InputSpec) -> dict:
    """data.json's content for one training size (the command adds the source split's size)."""
    data = {
        "classes": splits.domain.classes, "kind": splits.domain.kind, "spec": splits.domain.spec,
        "split_seed": splits.split_seed, "shots": splits.shots,
        "splits": {"target": splits.sizes()}, "input": {"channels": spec.channels, "size": spec.size},
        "class_counts": {  # per target split: chance levels for the arms' health checks (xferdiag.health)
            split: np.bincount(splits.domain.labels[idx], minlength=len(splits.domain.classes)).tolist()
            for split, idx in splits.indices.items()
        },
    }
    return {**data, **modality_of(splits.domain).describe_splits(splits, spec)}


def model_input(config: RunConfig, source: ModelSource, pretrained, domain: Domain, source_domain: Domain | None = None,
                resumed: bool = False, recorded: InputSpec | None = None) -> tuple[InputSpec, SizeChoice | None]:
    """The input spec the model takes, checked against the data before anything is written or trained, and
    how its size was chosen. A ``resumed`` run keeps the spec it ``recorded``; one made before run.json
    recorded it is resolved as it was then, without the data's sizes."""
    if recorded is not None:
        spec, choice = recorded, recorded_choice(recorded)
    else:
        sizes = (None, None) if resumed else (domain.image_sizes(), source_domain and source_domain.image_sizes())
        spec, choice = resolve_input(source, pretrained, InputRequest.of(config), *sizes, plain=domain.plain_input())
    domain.check_fits(spec)
    try:
        build_transfer_model(source, len(domain.classes), pretrained=pretrained, input_spec=spec)
    except ModelError as exc:
        raise ModelError(f"{exc}; the data are {domain.describe()}{_runs_at_hint(source, pretrained, spec, domain)}") from None
    return spec, choice


def say_input(spec: InputSpec, choice: SizeChoice | None, config: RunConfig, quiet: bool) -> None:
    """The input's line on stderr (size and where it came from; a warning when images are upsampled a lot)."""
    if not quiet and distributed.is_main():
        for line in input_lines(choice, checkpoint=bool(config.pretrained_checkpoint)):
            print(line, file=sys.stderr)


def _runs_at_hint(source: ModelSource, pretrained, spec: InputSpec, domain: Domain) -> str:
    """When the model does run at the data's own size, or else at ImageNet's, say so: that is usually what the user meant."""
    for size in dict.fromkeys(s for s in (domain.native_side(), DEFAULT_SIZE) if s is not None and s != spec.size):
        try:
            build_transfer_model(source, len(domain.classes), pretrained=pretrained, input_spec=dataclasses.replace(spec, size=int(size)))
        except ModelError:
            continue
        return f"; it runs at {size}x{size}: add --image-size {size}"
    return ""


def new_model(source: ModelSource, config: RunConfig, spec: InputSpec, num_classes: int, pretrained, use_pretrained: bool, seed: int):
    """A fresh model for one seed (``pretrained`` weights, or random ones for the scratch arm), with every
    random stream seeded so both arms, and the scratch lr search, start reproducibly."""
    seed_everything(seed)
    model = build_transfer_model(source, num_classes, pretrained=pretrained if use_pretrained else None, input_spec=spec,
                                 head_hidden=config.head_hidden, head_dropout=config.head_dropout)
    distributed.seed_this_rank(seed)
    return model


def prepared_point(config: RunConfig, source: ModelSource, pretrained, spec: InputSpec, splits: TargetSplits) -> PreparedPoint:
    """One training size of a classification run, ready for the shared training command."""
    return PreparedPoint(
        shots=splits.shots, data=split_data(splits, spec, config.augment), record=data_record(splits, spec), sizes=splits.sizes(),
        new_model=functools.partial(new_model, source, config, spec, len(splits.domain.classes), pretrained),
        baselines=functools.partial(modality_of(splits.domain).baselines, splits.domain, splits.indices),
    )


def pretrained_classifier(config: RunConfig, source: ModelSource):
    """The classifier the transfer arm starts from; a run without pretrained weights ends here in one line."""
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    if pretrained is None:
        raise ConfigError(
            f"model {config.model!r} has no pretrained weights: give --pretrained-checkpoint FILE or NAME:WEIGHTS "
            "(e.g. resnet18:IMAGENET1K_V1)"
        )
    return pretrained


def refuse_detector_settings(config: RunConfig) -> None:
    """A detector's settings given to a classifier run would be silently ignored: say so instead."""
    default = RunConfig.__dataclass_fields__
    for name in ("detector_norm", "detector_scale", "backbone", "fpn_channels"):
        if getattr(config, name) != default[name].default:
            raise ConfigError(f"{name}: applies to detection runs only (a COCO/VOC/YOLO folder, or task detection); "
                              f"this run is classification")


def prepare(task: Task, config: RunConfig, *, source_domain: Domain | None = None, resumed: bool = False,
            recorded_input: InputSpec | None = None, quiet: bool = False) -> Prepared:
    """Everything a classification run trains on, checked: bad data, splits and inputs end here, before any file."""
    refuse_detector_settings(config)
    source = ModelSource.parse(config.model)
    pretrained = pretrained_classifier(config, source)
    domain = load_domain(config.data)
    if source_domain is None and config.source_data:
        source_domain = load_domain(config.source_data)
    spec, choice = model_input(config, source, pretrained, domain, source_domain, resumed, recorded_input)
    config = config.replace(model=source.canonical).with_absolute_paths()
    points = sorted(config.shots, key=lambda s: float("inf") if s == "all" else s)
    splits = target_splits(config, domain, spec, points)

    def announce() -> None:
        warn_left_out(splits[0], spec)
        say_input(spec, choice, config, quiet)

    return Prepared(task, config, spec, [prepared_point(config, source, pretrained, spec, s) for s in splits],
                    announce, source_size=len(source_domain) if source_domain is not None else None)
