"""The input size of a model whose weights record none (issue 26): the source data's size, else the
target data's own, at most 224 px, and always one line on the terminal that says which and why.

Before, a user's 16 px CNN was fed 16 px digits blown up to 224 px (about 200x the compute per
step) without a word. Recorded sizes (torchvision's weights) and ``--image-size`` still win; a
resumed run keeps the size it began with.
"""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import xferdiag
from tests.cli_helpers import run_cli_batch
from xferdiag.models import ModelSource
from xferdiag.models.inputs import choose_size

SIZENETS = textwrap.dedent('''
    from torch import nn


    def small_cnn(num_classes=10):
        """A small gray CNN pretrained at 16 px; adaptive pooling lets it run at any size."""
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))
''')
GUESS = ("(the model records no input size); if its pretrained weights saw another size, say so: --image-size 224 for a model "
         "pretrained on ImageNet")
OWN_16 = f"input: 16x16 px, the target data's own size {GUESS}"
FAST = ["--strategy", "linear-probe", "--epochs", "1", "--seeds", "1", "--baseline", "none", "--batch-size", "32",
        "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A user's folder: sizenets.py, its weights saved here, digits as 16 px and 32 px .npz."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("sizes")
    (root / "sizenets.py").write_text(SIZENETS)
    digits = load_digits()
    keep = np.concatenate([np.flatnonzero(digits.target == k)[:12] for k in range(10)])
    for side in (16, 32):
        images = np.kron(digits.images[keep] / 16.0, np.ones((side // 8, side // 8))).astype(np.float32)
        np.savez(root / f"digits{side}.npz", x=images, y=digits.target[keep])
    sys.path.insert(0, str(root))
    try:
        import sizenets

        torch.manual_seed(0)
        torch.save(sizenets.small_cnn().state_dict(), root / "small.pt")
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("sizenets", None)
    return root


def read_input(run) -> dict:
    return json.loads((run / "run.json").read_text())["input"]


def info_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("input", "xferdiag: warning: images"))]


@pytest.mark.slow
def test_a_users_model_takes_the_datas_own_size_the_source_datas_or_the_one_asked_for(workspace):
    ft = ["finetune", "--data", "digits16.npz", "--model", "sizenets:small_cnn", "--pretrained-checkpoint", "small.pt", *FAST]
    own, source, asked = run_cli_batch([([*ft, "--out", "own"], workspace),
                                        ([*ft, "--source-data", "digits32.npz", "--out", "source"], workspace),
                                        ([*ft, "--image-size", "224", "--out", "asked"], workspace)])
    for result in (own, source, asked):
        assert result.returncode == 0, result.stderr
    assert read_input(workspace / "own")["size"] == 16
    assert read_input(workspace / "own")["origin"].endswith("; size: the target data's own size")
    assert info_lines(own.stderr) == [OWN_16]

    assert read_input(workspace / "source")["size"] == 32
    assert info_lines(source.stderr) == ["input: 32x32 px, the source data's size, what the pretrained model most likely saw "
                                         + GUESS]

    assert read_input(workspace / "asked")["size"] == 224
    assert info_lines(asked.stderr) == [
        "input: 224x224 px, from --image-size",
        "xferdiag: warning: images of 16 px are upsampled 14x to 224 px, about 196x the compute per image; "
        "--image-size 16 trains at their own size"]


def test_torchvision_weights_keep_the_size_they_record(workspace, tmp_path, capsys, one_thread):
    """mobilenet_v3_small's weights record 224 px: 16 px digits are upsampled to it (and the line warns)."""
    torch.manual_seed(0)
    checkpoint = tmp_path / "mobilenet.pt"
    torch.save(ModelSource.parse("mobilenet_v3_small").build_classifier().state_dict(), checkpoint)
    run = xferdiag.finetune(data=str(workspace / "digits16.npz"), model="mobilenet_v3_small", pretrained_checkpoint=str(checkpoint),
                            out=tmp_path / "run", strategy="linear-probe", epochs=1, seeds=1, baseline="none", threads=1)
    assert read_input(run)["size"] == 224
    assert info_lines(capsys.readouterr().err) == [
        "input: 224x224 px, recorded by torchvision MobileNet_V3_Small_Weights.IMAGENET1K_V1",
        "xferdiag: warning: images of 16 px are upsampled 14x to 224 px, about 196x the compute per image; "
        "--image-size 16 trains at their own size"]


def test_large_photos_are_cut_to_224_for_a_users_model(workspace, tmp_path, capsys, monkeypatch, one_thread):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(tmp_path / "photos" / label / f"{i}.png")
    monkeypatch.chdir(workspace)
    run = xferdiag.finetune(data=str(tmp_path / "photos"), model="sizenets:small_cnn", pretrained_checkpoint="small.pt",
                            out=tmp_path / "run", strategy="linear-probe", epochs=1, seeds=1, baseline="none", threads=1,
                            val_fraction=0.25, test_fraction=0.25)
    assert read_input(run)["size"] == 224
    assert info_lines(capsys.readouterr().err) == [
        f"input: 224x224 px, the most by default for the target data's larger images of 300x400 px {GUESS}"]


def test_rank_says_each_candidates_input(workspace, tmp_path, capsys, monkeypatch, one_thread):
    monkeypatch.chdir(workspace)
    xferdiag.rank("digits16.npz", ["sizenets:small_cnn=small.pt"], tmp_path, shots=3)
    assert info_lines(capsys.readouterr().err) == [
        f"input of sizenets:small_cnn=small.pt: 16x16 px, the target data's own size {GUESS}"]


def test_audit_takes_the_same_size_and_says_it(workspace, tmp_path, capsys, monkeypatch, one_thread):
    monkeypatch.chdir(workspace)
    run = xferdiag.audit("small.pt", out=tmp_path / "run", data="digits16.npz", model="sizenets:small_cnn",
                         pretrained_checkpoint="small.pt", baseline="none", threads=1)
    assert read_input(run)["size"] == 16
    assert info_lines(capsys.readouterr().err) == [OWN_16]


def test_a_resumed_run_keeps_the_size_it_began_with(workspace, tmp_path, capsys, monkeypatch, one_thread):
    """A run that recorded 20 px trains its new seeds at 20 px; one made before run.json recorded the input
    is resolved as it was then (224 px for a model that records no size), not at the data's size."""
    monkeypatch.chdir(workspace)
    settings = dict(data="digits16.npz", model="sizenets:small_cnn", pretrained_checkpoint="small.pt", strategy="linear-probe",
                    epochs=1, baseline="none", threads=1)
    run = xferdiag.finetune(out=tmp_path / "run", seeds=1, quiet=True, **settings)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "input": {**meta["input"], "size": 20}}))
    xferdiag.finetune(out=run, seeds=2, resume=True, **settings)
    assert json.loads((run / "data.json").read_text())["input"]["size"] == 20
    assert info_lines(capsys.readouterr().err) == ["input: 20x20 px, as the run recorded it when it began"]
    (run / "run.json").write_text(json.dumps({key: value for key, value in meta.items() if key != "input"}))
    xferdiag.finetune(out=run, seeds=3, resume=True, quiet=True, **settings)
    assert json.loads((run / "data.json").read_text())["input"]["size"] == 224
    assert all((run / "arms" / "transfer" / f"seed-{k}" / "metrics.json").is_file() for k in range(3))


def test_the_size_rule_on_known_cases():
    photos, mixed = np.array([[300, 400]] * 3), np.array([[30, 40], [20, 50], [100, 20]])
    assert (choose_size(None, None, [[16, 16]]).size, choose_size(None, None, [[16, 16]], [[32, 32]]).size) == (16, 32)
    assert (choose_size(None, None, photos).size, choose_size(None, None, mixed).size) == (224, 20)  # capped; the median shorter side
    assert choose_size((240, "torchvision weights"), None, [[16, 16]]).size == 240  # recorded wins over the data
    assert choose_size((240, "torchvision weights"), 64, [[16, 16]]).size == 64  # and --image-size over everything
    assert choose_size(None, None).size == 224 and choose_size(None, None).guessed  # no data: ImageNet's, as before
