"""The fine-tuning engine through its public interface: strategies, BatchNorm, cache, resume, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.engine.strategies import Phase, make_optimizer, parameter_groups
from xferdiag.engine.trainer import ArmPlan, ArmTrainer, Runtime, SplitData, _all_finite
from xferdiag.models import ModelSource, build_transfer_model, load_pretrained_classifier, load_state_dict
from xferdiag.tasks.classification.metrics import evaluate_logits
from xferdiag.tasks.classification.task import ClassificationTask

BASE = dict(data="digits:rotated", model="builtin:digits-cnn", epochs=2, seeds=1, shots=[5],
            baseline="none", test_fraction=0.3, threads=1, lr=3e-3)


def run(tmp_path, checkpoint, name="run", **overrides):
    config = RunConfig(**{**BASE, "pretrained_checkpoint": str(checkpoint), **overrides})
    return finetune(config, tmp_path / name, quiet=True)


def trained_state(out, arm="transfer", seed=0):
    return torch.load(out / "arms" / arm / f"seed-{seed}" / "model.pt", weights_only=True)


def pretrained_state(checkpoint):
    """The pretrained backbone's state, named as in a TransferModel."""
    source = ModelSource.parse("builtin:digits-cnn")
    model = build_transfer_model(source, 10, pretrained=load_pretrained_classifier(source, str(checkpoint)))
    return {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}


def changed(before, after, prefix):
    return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("strategy", ["linear-probe", "freeze"])
def test_frozen_backbone_keeps_weights_and_batchnorm_statistics(tmp_path, digits_checkpoint, strategy):
    out = run(tmp_path, digits_checkpoint, strategy=strategy)
    before, after = pretrained_state(digits_checkpoint), trained_state(out)
    assert changed(before, after, "backbone.") == set()  # running_mean/var included
    head_before = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 10, pretrained=None).head.weight
    assert after["head.weight"].shape == head_before.shape
    history = (out / "arms/transfer/seed-0/history.csv").read_text().splitlines()
    assert len(history) == 1 + BASE["epochs"]


def test_partial_trains_only_the_last_blocks(tmp_path, digits_checkpoint):
    out = run(tmp_path, digits_checkpoint, strategy="partial", partial_blocks=1)
    before, after = pretrained_state(digits_checkpoint), trained_state(out)
    moved = changed(before, after, "backbone.")
    assert moved and all(k.startswith("backbone.block3.") for k in moved)
    assert "backbone.block3.1.running_mean" in moved  # the trainable block's BatchNorm does update
    assert "backbone.block3.0.weight" in moved


@pytest.mark.parametrize("strategy", ["full", "lp-ft"])
def test_full_and_lp_ft_train_every_block(tmp_path, digits_checkpoint, strategy):
    out = run(tmp_path, digits_checkpoint, strategy=strategy, epochs=3)
    moved = changed(pretrained_state(digits_checkpoint), trained_state(out), "backbone.")
    for block in ("stem", "block1", "block2", "block3"):
        assert any(k.startswith(f"backbone.{block}.") for k in moved)
    phases = [line.split(",")[1] for line in (out / "arms/transfer/seed-0/history.csv").read_text().splitlines()[1:]]
    assert phases == (["linear-probe", "full", "full"] if strategy == "lp-ft" else ["full"] * 3)


def test_linear_probe_runs_the_backbone_once_per_example(tmp_path, digits_checkpoint, monkeypatch):
    seen = []
    original = build_transfer_model

    def counting_build(*args, **kwargs):
        model = original(*args, **kwargs)
        model.backbone.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
        return model

    monkeypatch.setattr("xferdiag.tasks.classification.prepare.build_transfer_model", counting_build)
    out = run(tmp_path, digits_checkpoint, strategy="linear-probe", epochs=4)
    sizes = json.loads((out / "data.json").read_text())["splits"]["target"]
    assert sum(seen) == sizes["train"] + sizes["val"] + sizes["test"]


def test_mlp_head_and_l2sp(tmp_path, digits_checkpoint):
    out = run(tmp_path, digits_checkpoint, strategy="full", head_hidden=[32], head_dropout=0.1)
    state = trained_state(out)
    assert state["head.0.weight"].shape == (32, 128) and state["head.3.weight"].shape == (10, 32)

    def drift(out_dir):
        before, after = pretrained_state(digits_checkpoint), trained_state(out_dir)
        return sum((before[k].float() - after[k].float()).norm().item() for k in before if "weight" in k)

    sgd = dict(strategy="full", optimizer="sgd", momentum=0.0, lr=5e-2, epochs=4, shots=[20])
    free = run(tmp_path, digits_checkpoint, name="free", **sgd)
    anchored = run(tmp_path, digits_checkpoint, name="anchored", l2sp=10.0, **sgd)
    assert drift(anchored) < 0.5 * drift(free)


def test_same_seed_same_metrics(tmp_path, digits_checkpoint):
    a = run(tmp_path, digits_checkpoint, name="a", strategy="full")
    b = run(tmp_path, digits_checkpoint, name="b", strategy="full")
    ma = json.loads((a / "arms/transfer/seed-0/metrics.json").read_text())
    mb = json.loads((b / "arms/transfer/seed-0/metrics.json").read_text())
    assert ma["test"] == mb["test"] and ma["val"] == mb["val"]
    assert json.loads((a / "run.json").read_text())["environment"]["fused_optimizer"] is True  # the CPU has fused kernels


@pytest.mark.parametrize("checkpoint_every", [0.0, 3600.0])  # a checkpoint after every epoch / none before the crash
def test_resume_matches_an_uninterrupted_run(tmp_path, digits_checkpoint, monkeypatch, checkpoint_every):
    whole = run(tmp_path, digits_checkpoint, name="whole", strategy="lp-ft", epochs=4, patience=10)
    original = ArmTrainer._train_epoch

    def crash_at_epoch_3(self, *args):
        if args[-1] == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(ArmTrainer, "_train_epoch", crash_at_epoch_3)
    config = RunConfig(**{**BASE, "pretrained_checkpoint": str(digits_checkpoint), "strategy": "lp-ft", "epochs": 4,
                          "patience": 10, "checkpoint_every": checkpoint_every})
    with pytest.raises(KeyboardInterrupt):
        finetune(config, tmp_path / "resumed", quiet=True)
    checkpoint = tmp_path / "resumed/arms/transfer/seed-0/checkpoint.pt"
    assert checkpoint.is_file() == (checkpoint_every == 0)
    if checkpoint.is_file():
        assert torch.load(checkpoint, weights_only=True)["epoch"] == 2  # the last completed epoch
    monkeypatch.setattr(ArmTrainer, "_train_epoch", original)
    finetune(config, tmp_path / "resumed", resume=True, quiet=True)
    for name in ("metrics.json",):
        a = json.loads((whole / f"arms/transfer/seed-0/{name}").read_text())
        b = json.loads((tmp_path / f"resumed/arms/transfer/seed-0/{name}").read_text())
        assert a["test"] == b["test"] and a["epochs_run"] == b["epochs_run"] == 4
    assert not (tmp_path / "resumed/arms/transfer/seed-0/checkpoint.pt").exists()
    np.testing.assert_array_equal(
        np.load(whole / "arms/transfer/seed-0/predictions.npz")["probabilities"],
        np.load(tmp_path / "resumed/arms/transfer/seed-0/predictions.npz")["probabilities"],
    )


def test_early_stopping_keeps_the_best_epoch(tmp_path, digits_checkpoint):
    out = run(tmp_path, digits_checkpoint, strategy="full", epochs=30, patience=2, lr=5e-2)
    metrics = json.loads((out / "arms/transfer/seed-0/metrics.json").read_text())
    rows = (out / "arms/transfer/seed-0/history.csv").read_text().splitlines()[1:]
    val_losses = [float(r.split(",")[3]) for r in rows]
    assert metrics["epochs_run"] == len(rows) < 30
    assert metrics["best_epoch"] == 1 + int(np.argmin(val_losses))
    assert metrics["epochs_run"] - metrics["best_epoch"] == 2
    assert metrics["val"]["loss"] == pytest.approx(min(val_losses), rel=1e-9)  # measured in the best epoch, on the weights kept


def test_layer_decay_sets_block_learning_rates(digits_checkpoint):
    model = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 3, pretrained=None)
    groups = parameter_groups(model, Phase("full", 1), lr=1.0, backbone_lr_mult=0.5, layer_decay=0.5, weight_decay=0.0, l2sp=False)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs == {"head": 1.0, "block3": 0.25, "block2": 0.125, "block1": 0.0625, "stem": 0.03125}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_checkpoint_state_dict_loads_safely(digits_checkpoint):
    state = load_state_dict(digits_checkpoint)
    assert state["fc.weight"].shape == (10, 128)


def test_finiteness_check_sees_nan_and_infinity_but_not_large_finite_weights():
    big = torch.full((1000,), 3e38)  # sums to infinity in float32, yet every weight is finite
    assert _all_finite([big, torch.zeros(0), torch.arange(3)])  # integer buffers are not weights
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert not _all_finite([big, torch.tensor([0.0, bad, 1.0])])
    assert not _all_finite([torch.tensor([1.0, float("nan")], dtype=torch.bfloat16)])


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_optimizer_steps_like_the_reference_loop(name):
    torch.manual_seed(0)
    fused_model = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 3, pretrained=None)
    loop_model = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 3, pretrained=None)
    loop_model.load_state_dict(fused_model.state_dict())
    groups = [parameter_groups(m, Phase("full", 1), lr=1e-2, backbone_lr_mult=0.5, layer_decay=1.0, weight_decay=1e-2, l2sp=False)
              for m in (fused_model, loop_model)]
    fused = make_optimizer(name, groups[0], lr=1e-2, momentum=0.9)
    reference = type(fused)(groups[1], lr=1e-2, foreach=False, **({"momentum": 0.9, "nesterov": True} if name == "sgd" else {}))
    assert fused.defaults["fused"] and not reference.defaults["fused"]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(5):
        for model, optimizer in ((fused_model, fused), (loop_model, reference)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for (key, a), b in zip(fused_model.state_dict().items(), loop_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.parametrize("val_labels", ["true", "shuffled"])  # the last epoch is the best / an earlier one is
def test_saved_model_and_validation_metrics_are_the_best_epochs(tmp_path, val_labels):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 8, 8, generator=g)
    y = x[:, 0, :3, :].mean(dim=2).argmax(dim=1)  # the brightest of three rows: learnable
    y_val = y[64:80] if val_labels == "true" else y[64:80][torch.randperm(16, generator=g)]  # learning the rule hurts validation
    data = SplitData(TensorDataset(x[:64], y[:64]), TensorDataset(x[:64], y[:64]), TensorDataset(x[64:80], y_val),
                     TensorDataset(x[80:], y[80:]), num_classes=3)
    torch.manual_seed(0)
    model = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 3, pretrained=None)
    plan = ArmPlan("t", [Phase("full", 5)], lr=3e-3, batch_size=16, task=ClassificationTask())
    result = ArmTrainer(plan, Runtime(progress=False), seed=0).fit(model, data)
    metrics = result.metrics  # the trainer returns its result; the caller saves it
    val_losses = [row["val_loss"] for row in result.history]
    assert metrics["best_epoch"] == 1 + int(np.argmin(val_losses)) and (metrics["best_epoch"] == 5) == (val_labels == "true")
    saved = build_transfer_model(ModelSource.parse("builtin:digits-cnn"), 3, pretrained=None)
    saved.load_state_dict(result.state_dict)
    saved.eval()
    with torch.no_grad():
        val, test = (evaluate_logits(saved(split.tensors[0]), split.tensors[1], 3) for split in (data.val, data.test))
    assert metrics["val"]["loss"] == pytest.approx(min(val_losses), rel=1e-9)
    assert metrics["val"]["loss"] == pytest.approx(val.loss, rel=1e-5)
    assert metrics["test"] == pytest.approx(test.summary(), rel=1e-5)


@pytest.mark.slow
def test_compiled_training_follows_the_eager_run(tmp_path, digits_checkpoint):
    eager = run(tmp_path, digits_checkpoint, name="eager", strategy="full")
    compiled = run(tmp_path, digits_checkpoint, name="compiled", strategy="full", compile=True)
    assert json.loads((compiled / "run.json").read_text())["environment"]["compile"] is True
    histories = [[[float(v) for v in row.split(",")[2:5]]
                  for row in (out / "arms/transfer/seed-0/history.csv").read_text().splitlines()[1:]]
                 for out in (eager, compiled)]
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-3)  # train loss, val loss, val accuracy per epoch
