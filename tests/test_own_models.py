"""Bring your own model (issue 16): the specs users write, the input a model takes, layers that
really run, and the report's words about a frozen backbone, all through the real command line.

The regression cases are the four failures first met with a real ImageNet model: a top-level
module refused as a spec, a 1-channel 16x16 model fed 3-channel 224x224 tensors (traceback), a
model with its blocks in an ``nn.ModuleList`` (analyze crashed on empty features, nested blocks
could not be named), and a report calling a frozen backbone's layers "changed most".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli_helpers import ENV, one_line_error, run_cli_batch, tree_state

pytestmark = pytest.mark.slow

USER_MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class FixedSize(nn.Module):
        """Takes 1-channel 16x16 images only: its first Linear is sized for them."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.hidden = nn.Linear(8 * 16 * 16, 32)
            self.fc = nn.Linear(32, num_classes)

        def forward(self, x):
            return self.fc(torch.relu(self.hidden(torch.relu(self.conv(x)).flatten(1))))


    class Stacked(nn.Module):
        """Blocks in an nn.ModuleList, as EfficientNet-style research code keeps them."""

        def __init__(self, num_classes=10):
            super().__init__()
            self._conv_stem = nn.Conv2d(1, 8, 3, padding=1)
            self._blocks = nn.ModuleList(
                nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()) for _ in range(3))
            self._fc = nn.Linear(8, num_classes)

        def forward(self, x):
            x = self._conv_stem(x)
            for block in self._blocks:
                x = block(x)
            return self._fc(x.mean(dim=(2, 3)))


    def fixed(num_classes=10):
        return FixedSize(num_classes)


    def stacked(num_classes=10):
        return Stacked(num_classes)


    def not_a_model():
        return 42
''')


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A user's working directory: their model file, gray 16x16 digits as .npz, pretrained weights."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("user")
    (root / "mynets.py").write_text(USER_MODELS)
    (root / "lib").mkdir()
    shutil.copy(root / "mynets.py", root / "lib" / "nets_file.py")
    digits = load_digits()
    images = np.kron(digits.images[:300] / 16.0, np.ones((2, 2))).astype(np.float32)  # 8x8 -> 16x16, gray
    np.savez(root / "gray16.npz", x=images, y=digits.target[:300])
    sys.path.insert(0, str(root))
    try:
        import mynets
        torch.manual_seed(0)
        torch.save(mynets.fixed().state_dict(), root / "fixed.pt")
        torch.save(mynets.stacked().state_dict(), root / "stacked.pt")
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("mynets", None)
    return root


def finetune_args(model: str, checkpoint: str, out: str, *extra) -> list[str]:
    return ["finetune", "--data", "gray16.npz", "--model", model, "--pretrained-checkpoint", checkpoint, "--out", out,
            "--epochs", "2", "--seeds", "1", "--batch-size", "32", "--threads", "1", "--quiet", *extra]


def test_console_script_imports_a_top_level_module_from_the_working_directory(workspace):
    """`xferdiag --model mynets:fixed` from the folder holding mynets.py: the installed console script
    does not put the working directory on sys.path, so this failed before."""
    script = Path(sys.executable).with_name("xferdiag")
    if not script.is_file():
        pytest.skip(f"no console script beside {sys.executable}")
    shutil.rmtree(workspace / "console", ignore_errors=True)
    result = subprocess.run([str(script), *finetune_args("mynets:fixed", "fixed.pt", "console", "--image-size", "16",
                                                         "--baseline", "none")],
                            cwd=workspace, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    run = json.loads((workspace / "console" / "run.json").read_text())
    assert run["config"]["model"] == "mynets:fixed"
    assert run["input"] == {"kind": "image", "channels": 1, "size": 16, "mean": [0.5], "std": [0.5],
                            "origin": "channels from the first convolution, ImageNet defaults; size from --image-size"}


def test_input_mismatch_ends_in_one_line_before_anything_is_written(workspace):
    """A 1-channel 16x16 model meets data it cannot take at 224 px (asked for: by default it now takes the
    data's own 16 px): one line naming the model's input, the data's shape and the fix; no run directory."""
    before = tree_state(workspace)
    [result] = run_cli_batch([(finetune_args("mynets:fixed", "fixed.pt", "mismatch", "--image-size", "224"), workspace)])
    assert one_line_error(result, "(1, 224, 224)") is None, result.stderr
    assert "1x16x16" in result.stderr and "--image-size 16" in result.stderr
    assert tree_state(workspace) == before


@pytest.fixture(scope="module")
def stacked_run(workspace):
    """A file-spec model with ModuleList blocks, frozen backbone, fine-tuned from the user's folder."""
    [result] = run_cli_batch([(finetune_args("lib/nets_file.py:stacked", "stacked.pt", "stacked", "--image-size", "16",
                                             "--strategy", "linear-probe", "--source-data", "gray16.npz"), workspace)])
    assert result.returncode == 0, result.stderr
    return workspace / "stacked"


def test_file_spec_is_recorded_with_an_absolute_path(stacked_run, workspace):
    config = json.loads((stacked_run / "run.json").read_text())["config"]
    assert config["model"] == f"{(workspace / 'lib' / 'nets_file.py').resolve()}:stacked"


def test_modulelist_blocks_analyze_from_anywhere_and_name_nested_layers(stacked_run, tmp_path):
    """analyze (run from another folder) picks the ModuleList's blocks, which really run; dotted names
    of nested modules work; a wrong name lists the valid ones and writes nothing."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    jobs = [(["analyze", str(stacked_run), "--permutations", "50", "--quiet"], other)]
    [default] = run_cli_batch(jobs)
    assert default.returncode == 0, default.stderr
    similarity = json.loads((stacked_run / "analysis" / "similarity.json").read_text())
    assert [row["name"] for row in similarity["layers"]] == ["_conv_stem", "_blocks.0", "_blocks.1", "_blocks.2", "penultimate"]
    assert all(row["weight_change"] in (0.0, None) and row["cka_linear"] == pytest.approx(1.0) for row in similarity["layers"])

    before = tree_state(stacked_run)
    nested, wrong = run_cli_batch([
        (["analyze", str(stacked_run), "--layers", "_blocks.1.1,_blocks.2", "--permutations", "50", "--quiet"], other),
        (["analyze", str(stacked_run), "--layers", "_blocks.7", "--quiet"], other),
    ], workers=1)
    assert wrong.returncode == 2 and one_line_error(wrong, "'_blocks.7'") is None, wrong.stderr
    assert "_blocks.0, _blocks.1, _blocks.2" in wrong.stderr
    assert nested.returncode == 0, nested.stderr
    similarity = json.loads((stacked_run / "analysis" / "similarity.json").read_text())
    assert [row["name"] for row in similarity["layers"]] == ["_blocks.1.1", "_blocks.2", "penultimate"]
    assert before != tree_state(stacked_run)  # the successful run rewrote analysis/


def test_frozen_backbone_report_says_frozen_not_changed_most(stacked_run):
    [result] = run_cli_batch([(["report", str(stacked_run), "--quiet"], stacked_run)])
    assert result.returncode == 0, result.stderr
    html = (stacked_run / "report.html").read_text()
    assert "The backbone was frozen (strategy &#39;linear-probe&#39;)" in html
    assert "changed most" not in html
    assert 'alt="CKA and weight change per layer"' not in html  # flat lines at 1 and empty bars say nothing more


BAD_SPECS = {
    "nosuchmodule:build": "cannot import module 'nosuchmodule'",
    "mynets:not_a_model": "returned int, not a torch.nn.Module",
    "mynets:missing": "has no function 'missing'",
    "lib/absent.py:build": "not found",
    "not a model": "not a torchvision architecture",
}


def test_bad_model_specs_end_in_one_line_and_write_nothing(workspace):
    before = tree_state(workspace)
    results = run_cli_batch([(finetune_args(spec, "fixed.pt", "bad-spec"), workspace) for spec in BAD_SPECS])
    problems = {spec: one_line_error(result, needle) for (spec, needle), result in zip(BAD_SPECS.items(), results)}
    assert all(p is None for p in problems.values()), {s: (p, r.stderr) for (s, p), r in zip(problems.items(), results) if p}
    assert tree_state(workspace) == before
