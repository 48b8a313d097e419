"""Bad input through the real command line: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from PIL import Image

from tests.conftest import make_image_folder


def xferdiag(*args, cwd=None, env_extra=None):
    env = {**os.environ, "TORCH_HOME": str(cwd or "."), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "xferdiag", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_user_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def folder_cases(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = make_image_folder(tmp_path / "noimg")
    for f in (no_images / "square").iterdir():
        f.unlink()
    broken = make_image_folder(tmp_path / "broken")
    (broken / "circle" / "0.png").write_bytes(b"not an image at all")
    one_class = tmp_path / "one"
    make_image_folder(one_class, classes=("only",))
    return {
        "missing folder": (["--data", str(tmp_path / "nope")], "not found"),
        "empty folder": (["--data", str(empty)], "empty"),
        "class without images": (["--data", str(no_images)], "no images"),
        "unreadable image": (["--data", str(broken)], "0.png"),
        "one class": (["--data", str(one_class)], "at least 2"),
    }


def test_bad_data_folders(tmp_path, digits_checkpoint):
    for name, (args, needle) in folder_cases(tmp_path).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        result = xferdiag("finetune", *args, "--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(digits_checkpoint),
                          "--out", str(out), "--epochs", "1", "--seeds", "1", "--quiet", cwd=tmp_path)
        assert_user_error(result, needle)


def test_bad_models_and_checkpoints(tmp_path, digits_checkpoint):
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    cases = {
        "unknown model": (["--model", "not_a_net"], "not a torchvision architecture"),
        "checkpoint does not fit": (["--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(wrong)], "does not fit"),
        "weights need a download": (["--model", "resnet18:IMAGENET1K_V1"], "--pretrained-checkpoint"),
        "unknown strategy": (["--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(digits_checkpoint),
                              "--strategy", "magic"], "strategy"),
        "zero epochs": (["--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(digits_checkpoint), "--epochs", "0"], "epochs"),
        "missing checkpoint": (["--model", "builtin:digits-cnn", "--pretrained-checkpoint", str(tmp_path / "none.pt")], "not found"),
    }
    for _name, (args, needle) in cases.items():
        result = xferdiag("finetune", "--data", "digits:rotated", *args, "--out", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
        assert_user_error(result, needle)
        assert not (tmp_path / "o" / "run.json").exists()


def test_existing_run_is_not_overwritten(tmp_path, digits_checkpoint):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "run.json").write_text('{"schema": 1}')
    result = xferdiag("finetune", "--data", "digits:rotated", "--model", "builtin:digits-cnn", "--pretrained-checkpoint",
                      str(digits_checkpoint), "--out", str(out), cwd=tmp_path)
    assert_user_error(result, "--resume")
    assert (out / "run.json").read_text() == '{"schema": 1}'


def test_usage_errors_are_one_line(tmp_path):
    assert_user_error(xferdiag("finetune", "--epochs", "many", cwd=tmp_path), "epochs")
    assert_user_error(xferdiag("finetune", "--data", "digits:rotated", cwd=tmp_path), "--out")


def test_image_modes_are_converted(tmp_path, digits_checkpoint):
    """Grayscale, RGB, RGBA and 16-bit images in one folder train together."""
    root = make_image_folder(tmp_path / "mixed", per_class=8)
    Image.new("RGBA", (20, 20), (200, 10, 10, 128)).save(root / "circle" / "rgba.png")
    Image.new("RGB", (24, 18), (10, 200, 10)).save(root / "square" / "rgb.png")
    Image.fromarray((torch.rand(20, 20).numpy() * 60000).astype("uint16")).save(root / "square" / "deep.png")
    result = xferdiag("finetune", "--data", str(root), "--model", "builtin:digits-cnn", "--pretrained-checkpoint",
                      str(digits_checkpoint), "--out", str(tmp_path / "run"), "--epochs", "1", "--seeds", "1",
                      "--quiet", "--test-fraction", "0.3", "--val-fraction", "0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "arms" / "transfer" / "seed-0" / "metrics.json").is_file()
