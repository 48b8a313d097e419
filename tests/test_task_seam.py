"""The training loop is written once over the task protocol (xferdiag/tasks/base.py): every task,
classification and the toy multi-label task shaped like detection (tests/toy_tasks/multilabel), trains, scores and picks its best
epoch through it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from tests.toy_tasks.multilabel import MultiLabelNet, MultiLabelTask, label_sets
from xferdiag.engine.strategies import Phase
from xferdiag.engine.trainer import ArmPlan, ArmTrainer, Runtime, SplitData, evaluate_model
from xferdiag.models import ModelSource, build_transfer_model
from xferdiag.tasks.classification.task import ClassificationTask


def _classification_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 8, generator=g)
    y = x[:, :3].argmax(dim=1)
    parts = [TensorDataset(x[a:b], y[a:b]) for a, b in ((0, 96), (0, 96), (96, 128), (128, 160))]
    torch.manual_seed(0)
    model = build_transfer_model(ModelSource.parse("builtin:tabular-mlp:features=8"), 3, pretrained=None)
    return ClassificationTask(), model, SplitData(*parts, num_classes=3), "accuracy", 1 / 3


def _multilabel_case():
    train, val, test = (label_sets(n, 4, seed) for n, seed in ((96, 0), (32, 1), (64, 2)))
    torch.manual_seed(0)
    net = build_transfer_model(ModelSource.parse("builtin:tabular-mlp:features=8"), 4, pretrained=None)
    return MultiLabelTask(), MultiLabelNet(net, 4), SplitData(train, train, val, test, num_classes=4), "map", 0.5


CASES = {"classification": _classification_case, "toy-multilabel": _multilabel_case}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("strategy", ["full", "linear-probe"])
def test_every_task_trains_scores_and_keeps_its_best_epoch(case, strategy):
    task, model, data, metric, chance = CASES[case]()
    before = ArmTrainer(ArmPlan("t", [Phase("full", 0)], lr=1e-2, task=task), Runtime(progress=False), seed=0)
    untrained = before._evaluate(model, data, None, "test").summary()[metric]
    plan = ArmPlan("t", [Phase(strategy, 6)], lr=1e-2, batch_size=16, task=task)
    result = ArmTrainer(plan, Runtime(progress=False), seed=0).fit(model, data)
    assert result.test.summary()[metric] > max(untrained, chance) + 0.1  # it learned, through the task's own loss
    selections = [1.0 - row["val_map"] if "val_map" in row else row["val_loss"] for row in result.history]
    assert result.metrics["best_epoch"] == 1 + min(range(len(selections)), key=selections.__getitem__)
    assert set(result.history[0]) >= {"epoch", "phase", "train_loss", "lr", "seconds", *result.test.history()}
    assert result.metrics["test"] == result.test.summary()


@pytest.mark.parametrize("floor, largest", [(1, 16), (256, 64)])
def test_an_evaluation_scores_the_training_batch_or_the_tasks_floor_at_once(floor, largest):
    """A detector's evaluation must not batch 256 images (its RoI heads hold every proposal's features)."""
    task, model, data, _, _ = _multilabel_case()
    task.eval_batch_floor = floor
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    evaluate_model(model, data, Runtime(progress=False), task, batch_size=16)
    assert max(seen) == largest and sum(seen) == len(data.val) + len(data.test)  # val 32 and test 64 inputs
