"""The toy task's plug-in (see :mod:`xferdiag.tasks.base`): losses from the model's dict, label scores as its
predictions file, mAP over labels to pick the best epoch, and a run prepared from a ``*.labelsets.json`` file
and a built-in table model (the transfer arm starts from ``--pretrained-checkpoint``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from xferdiag.engine.trainer import SplitData, seed_everything
from xferdiag.errors import ConfigError
from xferdiag.models import InputRequest, ModelSource, build_transfer_model, load_pretrained_classifier, resolve_input_spec
from xferdiag.tasks.descriptor import TaskDescriptor
from xferdiag.tasks.prepared import Prepared, PreparedPoint

from . import data as labelsets
from .descriptor import DESCRIPTOR
from .metrics import mean_ap
from .model import MultiLabelNet, multi_hot
from .verdict import judge


@dataclass
class MultiLabelEvaluation:
    mean_ap: float
    scores: np.ndarray
    truth: np.ndarray
    selection_name = "one minus validation mAP"

    @property
    def selection(self) -> float:
        return 1.0 - self.mean_ap

    def summary(self) -> dict[str, float]:
        return {"map": self.mean_ap}

    def history(self) -> dict[str, float]:
        return {"val_map": self.mean_ap}

    def postfix(self) -> dict[str, str]:
        return {"val_map": f"{self.mean_ap:.3f}"}

    def record(self) -> dict:
        return {"label_scores": {"scores": self.scores.astype(np.float32), "truth": self.truth.astype(np.uint8)}}


def new_model(source: ModelSource, spec, classes: int, pretrained, use_pretrained: bool, seed: int) -> MultiLabelNet:
    seed_everything(seed)
    return MultiLabelNet(build_transfer_model(source, classes, pretrained=pretrained if use_pretrained else None, input_spec=spec),
                         classes)


def _splits(n: int, config) -> dict[str, np.ndarray]:
    order = np.random.default_rng(config.split_seed).permutation(n)
    n_test, n_val = max(1, round(n * config.test_fraction)), max(1, round(n * config.val_fraction))
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


def prepare(task, config, *, source_domain=None, resumed: bool = False, recorded_input=None, quiet: bool = False) -> Prepared:
    if config.shots != ["all"]:
        raise ConfigError("shots: the toy multi-label task trains on all its training rows")
    source = ModelSource.parse(config.model)
    pretrained = load_pretrained_classifier(source, config.pretrained_checkpoint)
    if pretrained is None:
        raise ConfigError(f"model {config.model!r}: give --pretrained-checkpoint FILE for the transfer arm")
    classes, rows = labelsets.load(config.data)
    spec = recorded_input or resolve_input_spec(source, pretrained, InputRequest.of(config))
    splits = _splits(len(rows), config)
    sets = {name: rows.subset(idx) for name, idx in splits.items()}
    config = config.replace(model=source.canonical).with_absolute_paths()
    sizes = {name: len(idx) for name, idx in splits.items()}
    point = PreparedPoint(
        shots="all", data=SplitData(sets["train"], sets["train"], sets["val"], sets["test"], num_classes=len(classes)),
        record={"classes": classes, "kind": "label sets", "spec": config.data, "shots": "all", "splits": {"target": sizes}}, sizes=sizes,
        new_model=functools.partial(new_model, source, spec, len(classes), pretrained))
    return Prepared(task, config, spec, [point], announce=lambda: None)


class MultiLabelTask:
    name = "toy-multilabel"
    caches_features = False
    eval_batch_floor = 256
    descriptor = TaskDescriptor(**DESCRIPTOR)

    def claims(self, data: str) -> bool:
        return labelsets.claims(data)

    def prepare(self, config, **options) -> Prepared:
        return prepare(self, config, **options)

    def judge(self, a, b, **context):
        return judge(a, b, **context)

    @staticmethod
    def collate(batch):
        return torch.stack([x for x, _ in batch]), [labels for _, labels in batch]

    def targets_to(self, targets, device):
        return [t.to(device) for t in targets]

    def train_loss(self, module, inputs, targets) -> torch.Tensor:
        return sum(module(inputs, targets).values())

    def predict_batch(self, module, inputs):
        return module(inputs).float().cpu()

    def rank_key(self, summary):
        return (-summary["map"],)

    def headline(self, summary):
        return f"mAP {summary['map']:.3f}"

    def learned(self, summary, record) -> None:
        return None

    def evaluate(self, outputs, targets, num_classes: int) -> MultiLabelEvaluation:
        scores = torch.cat(list(outputs)).numpy()
        truth = multi_hot([t for batch in targets for t in batch], num_classes).numpy()
        return MultiLabelEvaluation(mean_ap(scores, truth), scores, truth)
