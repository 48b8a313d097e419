"""xferdiag audit: a torchvision model fine-tuned by a plain PyTorch script, audited into a report;
hand-written run directories accepted or rejected by the documented contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import make_image_folder
from PIL import Image
from torch import nn

from tests.docs_helpers import python_files
from xferdiag.cli import main
from xferdiag.errors import CheckpointError, RunDirError
from xferdiag.rundir import validate

DOCS = Path(__file__).resolve().parents[1] / "docs"
IMAGENET = (torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def split_folder(root: Path) -> Path:
    """root/{train,val,test}/{circle,square}/*.png, 32x32 RGB: xferdiag keeps the folder's own split."""
    for split, n, seed in (("train", 12, 0), ("val", 4, 1), ("test", 8, 2)):
        make_image_folder(root / split, per_class=n, size=32, mode="RGB", seed=seed)
    return root


def read_split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """What a plain script does: classes sorted, files sorted, ImageNet normalisation."""
    xs, ys = [], []
    for label, cls in enumerate(sorted(p.name for p in folder.iterdir())):
        for path in sorted((folder / cls).glob("*.png")):
            x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
            xs.append((x - IMAGENET[0]) / IMAGENET[1])
            ys.append(label)
    return torch.stack(xs), torch.tensor(ys)


def plain_finetune(data: Path, pretrained: Path, out: Path, steps: int = 12) -> np.ndarray:
    """Fine-tune a resnet18 the way a user's own script would; return its test predictions."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(pretrained, weights_only=True))
    model.fc = nn.Linear(512, 2)
    x, y = read_split(data / "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    model.train()
    for _step in range(steps):
        batch = torch.randperm(len(y))[:8]
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), out)
    model.eval()
    x_test, _ = read_split(data / "test")
    with torch.no_grad():
        return model(x_test).argmax(1).numpy()


@pytest.fixture(scope="module")
def resnet_case(tmp_path_factory):
    """Pretrained (random init, saved here), fine-tuned by a plain script, and the data it used."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(1)
    pretrained = root / "resnet18-pretrained.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), pretrained)
    data = split_folder(root / "target")
    source = make_image_folder(root / "source", per_class=10, size=32, mode="RGB", seed=7)
    finetuned = root / "resnet18-finetuned.pt"
    predictions = plain_finetune(data, pretrained, finetuned)
    return {"root": root, "pretrained": pretrained, "data": data, "source": source, "finetuned": finetuned,
            "predictions": predictions}


def audit_args(case, out: Path, *extra: str) -> list[str]:
    return ["audit", "--checkpoint", str(case["finetuned"]), "--model", "resnet18", "--pretrained-checkpoint",
            str(case["pretrained"]), "--data", str(case["data"]), "--image-size", "32", "--threads", "1",
            "--out", str(out), "--quiet", *extra]


@pytest.mark.slow
def test_audit_plain_pytorch_resnet_end_to_end(resnet_case, tmp_path, capsys):
    from xferdiag import analyze, explain
    from xferdiag.rundir import read_npz

    out = tmp_path / "run"
    code = main(audit_args(resnet_case, out, "--source-data", str(resnet_case["source"]), "--baseline", "scratch",
                           "--epochs", "2", "--batch-size", "8", "--no-augment"))
    assert code == 0, capsys.readouterr().err
    transfer = out / "arms" / "transfer" / "seed-0"
    metrics = json.loads((transfer / "metrics.json").read_text())
    saved = read_npz(transfer / "predictions.npz")
    _, y_test = read_split(resnet_case["data"] / "test")
    plain_accuracy = float((resnet_case["predictions"] == y_test.numpy()).mean())
    assert plain_accuracy > 0.5  # a model that learned something, so matching predictions mean something
    np.testing.assert_array_equal(saved["predictions"], resnet_case["predictions"])
    np.testing.assert_array_equal(saved["labels"], y_test.numpy())
    assert metrics["test"]["accuracy"] == pytest.approx(plain_accuracy, abs=1e-12)
    assert metrics["epochs_run"] is None and not (transfer / "history.csv").exists()
    assert f"{100 * plain_accuracy:.1f}% test accuracy" in capsys.readouterr().out

    run = json.loads((out / "run.json").read_text())
    assert run["audit"]["checkpoint_form"] == "classifier"
    assert run["config"]["seeds"] == 1 and run["config"]["model"] == "resnet18"
    state = torch.load(transfer / "model.pt", weights_only=True)
    assert torch.equal(state["head.weight"], torch.load(resnet_case["finetuned"], weights_only=True)["fc.weight"])
    verdict = json.loads((out / "verdict.json").read_text())
    scratch = json.loads((out / "arms" / "scratch" / "seed-0" / "metrics.json").read_text())
    assert verdict["per_seed"][0]["transfer"] == pytest.approx(metrics["test"]["accuracy"])
    assert verdict["gap"] == pytest.approx(metrics["test"]["accuracy"] - scratch["test"]["accuracy"])
    assert scratch["epochs_run"] == 2

    results = analyze(out, max_samples=100, n_permutations=50, quiet=True)
    changes = {row["name"]: row["weight_change"] for row in results["similarity"]["layers"]}
    assert changes["conv1"] > 0  # the plain script moved the pretrained weights
    assert results["shift"]["n_target"] == 48 and results["shift"]["n_source"] == 20
    index = explain(out, methods="gradcam,lime", n=2, lime_samples=20, quiet=True)
    assert index["arms"] == ["transfer", "scratch"] and len(index["examples"]) == 2

    assert main(["report", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text()
    assert "Fine-tuned elsewhere" in html and str(resnet_case["finetuned"]) in html
    assert 'id="shift"' in html and 'id="explanations"' in html and 'id="similarity"' in html


def test_audit_without_baseline_reuses_the_fine_tuned_checkpoint_as_is(resnet_case, tmp_path):
    from xferdiag import audit

    out = audit(resnet_case["finetuned"], out=tmp_path / "run", data=str(resnet_case["data"]), model="resnet18",
                pretrained_checkpoint=str(resnet_case["pretrained"]), image_size=32, baseline="none", threads=1, quiet=True)
    assert not (out / "verdict.json").exists() and not (out / "arms" / "scratch").exists()
    metrics = json.loads((out / "arms" / "transfer" / "seed-0" / "metrics.json").read_text())
    _, y_test = read_split(resnet_case["data"] / "test")
    assert metrics["test"]["accuracy"] == pytest.approx(float((resnet_case["predictions"] == y_test.numpy()).mean()))
    validate(out)


def test_audit_rejects_a_checkpoint_for_other_classes(resnet_case, tmp_path, capsys):
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Linear(512, 3)
    bad = tmp_path / "three-classes.pt"
    torch.save(model.state_dict(), bad)
    case = dict(resnet_case, finetuned=bad)
    assert main(audit_args(case, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "classifier layer 'fc' has 3 outputs but the target data has 2 classes" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_audit_rejects_another_architecture_naming_the_keys(resnet_case, tmp_path):
    from xferdiag import audit

    model = torchvision.models.resnet34(weights=None)
    model.fc = nn.Linear(512, 2)
    bad = tmp_path / "resnet34.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, bad)  # DDP-style prefix is dropped
    expected = r"unexpected: backbone\.layer1\.2\..*read as a whole resnet18 classifier whose layer 'fc' is the head"
    with pytest.raises(CheckpointError, match=expected):
        audit(bad, out=tmp_path / "run", data=str(resnet_case["data"]), model="resnet18",
              pretrained_checkpoint=str(resnet_case["pretrained"]), image_size=32, baseline="none", threads=1, quiet=True)


# --- hand-written run directories ------------------------------------------------------------------

def documented_example(out: Path) -> Path:
    """Run the example script of docs/rundir.md ("Writing one yourself") exactly as printed; the page's own
    commands around it run in tests/test_docs_commands.py."""
    script = out.parent / "write_run.py"
    script.write_text(python_files(DOCS / "rundir.md")["write_run.py"])
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    return out


def test_documented_hand_written_run_directory_is_reported(tmp_path, capsys):
    run = documented_example(tmp_path / "my-run")
    assert main(["report", str(run), "--quiet"]) == 0
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["seeds"] == [0, 1, 2] and verdict["verdict"] == "positive"
    metrics = [json.loads((run / "arms" / a / "seed-0" / "metrics.json").read_text())["test"]["accuracy"]
               for a in ("transfer", "scratch")]
    assert verdict["per_seed"][0]["gap"] == pytest.approx(metrics[0] - metrics[1])
    html = (run / "report.html").read_text()
    assert "Transfer helped" in html and "cat" in html
    assert "domain shift (the run names no source data" in html  # listed as missing, not an error


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "data.json").unlink(), r"data\.json: file not found; write it with at least"),
    (lambda r: (r / "arms" / "transfer" / "seed-1" / "metrics.json").write_text('{"test": {"acc": 0.9}}'),
     r"transfer/seed-1/metrics\.json: needs 'test': \{'accuracy'"),
    (lambda r: (r / "arms" / "scratch" / "seed-0").rename(r / "arms" / "scratch" / "seed0"),
     r"scratch/seed0/metrics\.json: seed folders must be named seed-<k>"),
    (lambda r: np.savez(r / "arms" / "scratch" / "seed-2" / "predictions.npz", labels=np.zeros(5, np.int64),
                        predictions=np.full(5, 7)), r"scratch/seed-2/predictions\.npz: 'predictions' outside 0\.\.2"),
    (lambda r: (r / "run.json").write_text('{"config": {}}'), r"run\.json: missing integer 'schema' field"),
], ids=["no-data-json", "no-test-accuracy", "misnamed-seed-folder", "prediction-out-of-range", "no-schema"])
def test_broken_run_directory_is_rejected_naming_the_problem(tmp_path, capsys, breakage, message):
    run = documented_example(tmp_path / "my-run")
    breakage(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and not (run / "report.html").exists()
    with pytest.raises(RunDirError, match=message):
        validate(run)


def test_analyze_says_what_a_hand_written_run_lacks(tmp_path, capsys):
    run = documented_example(tmp_path / "my-run")
    assert main(["analyze", str(run)]) == 2
    assert "run.json: 'config' has no 'data'; analyze and explain rebuild the data and the model" in capsys.readouterr().err
