"""Contract tests over the task registry (timm's pattern): every registered task, the toy multi-label task of
``tests/toy_tasks/`` included, runs finetune -> verdict -> analyze -> explain -> report on a tiny case through
the public command line. A stage its descriptor lists must work; a stage it lacks must end in one clear line
(exit 2) and the report must say the section is not available, so a task can land before all its analyses do."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from sklearn.metrics import average_precision_score

from tests.cli_helpers import ENV
from tests.toy_tasks.multilabel import MultiLabelTask, write_label_sets
from tests.toy_tasks.multilabel.metrics import mean_ap, resample_weights
from xferdiag.cli import main
from xferdiag.errors import ConfigError
from xferdiag.models import ModelSource
from xferdiag.rundir import RunDir
from xferdiag.tasks.base import Task
from xferdiag.tasks.descriptor import REQUIRED, STAGES, TaskDescriptor, describe_task
from xferdiag.tasks.detection.data import make_scenes, write_coco
from xferdiag.tasks.registry import TASKS, register_task

register_task(MultiLabelTask())  # the toy task's one registration line


@dataclass(frozen=True)
class Tiny:
    """A task's tiny case: finetune's flags (no --out), the data and model audit and rank are given, and the
    flags that keep analyze and explain small."""

    finetune: list[str]
    data: str
    model: str
    analyze: list[str] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)


def _classification(root: Path) -> Tiny:
    """Tables: a source CSV the checkpoint is pretrained on and a shifted target CSV (analyze compares them)."""
    from xferdiag.commands.demo import pretrain_source

    rng = np.random.default_rng(0)
    for name, shift in (("source", 0.0), ("target", 1.5)):
        x = rng.normal(size=(120, 4))
        x[:, 1] += shift
        y = (x[:, 0] + x[:, 1] - shift > 0).astype(int)
        (root / f"{name}.csv").write_text("a,b,c,d,label\n" + "".join(f"{','.join(f'{v:.4f}' for v in r)},{k}\n" for r, k in zip(x, y)))
    model = "builtin:tabular-mlp:hidden=16"
    checkpoint = pretrain_source(str(root / "source.csv"), root, epochs=3, quiet=True, model=model)
    return Tiny(["--data", root / "target.csv", "--source-data", root / "source.csv", "--model", model,
                 "--pretrained-checkpoint", checkpoint, "--batch-size", "16"], str(root / "target.csv"), model,
                analyze=["--max-samples", "60", "--permutations", "20"],
                explain=["--n", "2", "--lime-samples", "40", "--shap-samples", "20"])


def _detection(root: Path) -> Tiny:
    """Twelve 64-pixel scenes in a COCO folder, detected at 64 px; the backbone's weights are a random MobileNetV2's (no
    download)."""
    write_coco(make_scenes(12, seed=3, size=64), root / "scenes")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), root / "mnv2.pt")
    return Tiny(["--data", root / "scenes", "--model", "fasterrcnn", "--backbone", "mobilenet_v2", "--pretrained-checkpoint",
                 root / "mnv2.pt", "--batch-size", "4", "--image-size", "64"], str(root / "scenes"), "fasterrcnn",
                explain=["--n", "1"])  # explain: one box at the mask floor, each forward at 64 px (the CPU scale's 128 costs 4x)


def _toy_multilabel(root: Path) -> Tiny:
    """120 rows of 8 features with 0 to 4 labels each; the checkpoint is a seeded table model's."""
    write_label_sets(root / "tags.labelsets.json", 120, 4, seed=0)
    model = "builtin:tabular-mlp:features=8"
    torch.manual_seed(0)
    torch.save(ModelSource.parse(model).build_classifier().state_dict(), root / "pre.pt")
    return Tiny(["--data", root / "tags.labelsets.json", "--model", model, "--pretrained-checkpoint", root / "pre.pt",
                 "--batch-size", "16"], str(root / "tags.labelsets.json"), model)


TINY = {"classification": _classification, "detection": _detection, "toy-multilabel": _toy_multilabel}
"""One tiny case per registered task: a task registered without one fails the first test below."""
ON_RUN, ON_DATA = ("analyze", "explain", "compare"), ("audit", "rank", "sweep")
"""The stages a task may lack: commands on a finished run, and commands that take data (before any run)."""
LACKING = [(name, stage) for name, task in TASKS.items() for stage in ON_DATA if not task.descriptor.supports(stage)]


def cli(*argv) -> tuple[int, str, str]:
    """``xferdiag ARGV`` in this process (a task registered by a test exists only here): exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line(code: int, err: str, needle: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("xferdiag: error:") and needle in lines[0], (code, err)


def finetuned(tiny: Tiny, root: Path) -> Path:
    """The run directory finetune makes of a tiny case under ``root``: 1 epoch, 2 seeds (the contracts' shared run)."""
    code, _, err = cli("finetune", *tiny.finetune, "--epochs", "1", "--seeds", "2", "--threads", "1", "--quiet", "--out", root / "run")
    assert code == 0, err
    return root / "run"


@pytest.fixture(scope="module", params=list(TASKS))
def finished(request, tmp_path_factory, one_thread):
    """(task name, its tiny case, a run directory finetune made of it: 1 epoch, 2 seeds)."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    tiny = TINY[name](root)
    return name, tiny, finetuned(tiny, root)


def test_every_registered_task_has_a_tiny_case():
    assert set(TINY) == set(TASKS) and "toy-multilabel" in TASKS
    assert sorted({*REQUIRED, *ON_RUN, *ON_DATA}) == sorted(STAGES)  # every stage a descriptor may list is tried below
    order = list(TASKS)
    assert order.index("toy-multilabel") < order.index("detection") and order[-1] == "classification"  # a plug-in is asked first


def test_a_descriptor_is_found_by_its_name_and_checked_when_made():
    assert describe_task("toy-multilabel") is TASKS["toy-multilabel"].descriptor and describe_task(None).metric == "accuracy"
    with pytest.raises(ConfigError, match="'segmentation' is not known here"):  # not read as classification
        describe_task("segmentation")
    toy = TASKS["toy-multilabel"].descriptor
    for stages in (("finetune", "verdict", "reprot"), ("finetune", "report")):  # a typo, and the verdict left out
        with pytest.raises(ValueError, match=", ".join(REQUIRED)):
            TaskDescriptor(**{**toy.__dict__, "stages": stages})
    for records in ((), ("label scores",)):  # nothing for the verdict, and a name that is no file name
        with pytest.raises(ValueError, match="plain identifiers"):
            TaskDescriptor(**{**toy.__dict__, "records": records})


@pytest.mark.parametrize("name", list(TASKS))
def test_every_registered_task_has_every_member_of_the_protocol(name):
    task = TASKS[name]
    members = set(Task.__annotations__) | {member for member in vars(Task) if not member.startswith("_")}
    if not task.descriptor.supports("audit"):  # asked only of a task whose descriptor lists the stage
        members.discard("prepare_audit")
    assert not [member for member in sorted(members) if not hasattr(task, member)]
    assert not task.descriptor.supports("audit") or callable(task.prepare_audit)
    assert task.name == name and isinstance(task.descriptor, TaskDescriptor) and describe_task(name) is task.descriptor
    assert not [m for m in ("claims", "prepare", "judge", "train_loss", "predict_batch", "evaluate") if not callable(getattr(task, m))]


@pytest.mark.slow
def test_finetune_keeps_what_the_descriptor_names_and_the_verdict_judges_it(finished):
    name, _, run = finished
    descriptor, rd = TASKS[name].descriptor, RunDir(run)
    assert json.loads(rd.run_json.read_text())["config"]["task"] == name
    verdict = json.loads(rd.verdict_json.read_text())
    assert verdict["seeds"] == [0, 1] and verdict["verdict"] in ("positive", "negative", "inconclusive")
    for arm in ("transfer", "scratch"):
        for row, seed in zip(verdict["per_seed"], (0, 1)):
            folder = rd.seed(arm, seed)
            assert all(folder.record_files(record) for record in descriptor.records)
            score = json.loads(folder.metrics_json.read_text())["test"][descriptor.metric]
            assert 0 <= score <= 1 and row[arm] == pytest.approx(score, abs=1e-9)  # the verdict judges what was measured
            header = folder.history_csv.read_text().splitlines()[0].split(",")
            assert {column for column, _, _ in descriptor.curves} <= set(header)


@pytest.mark.slow
def test_the_stages_on_a_finished_run_work_where_supported_and_end_in_one_line_where_not(finished):
    name, tiny, run = finished
    descriptor, rd = TASKS[name].descriptor, RunDir(run)
    tried = (("analyze", tiny.analyze, rd.shift_json), ("explain", tiny.explain, rd.index_json),
             ("compare", [run, "--out", run.parent / "compare.html"], run.parent / "compare.html"))
    assert tuple(stage for stage, _, _ in tried) == ON_RUN
    for stage, flags, made in tried:
        code, _, err = cli(stage, run, *flags, "--quiet") if stage != "compare" else cli(stage, run, *flags)
        if descriptor.supports(stage):
            assert code == 0 and made.is_file(), err
        else:
            one_line(code, err, f"not available for {name} runs yet")
            assert not made.exists()


@pytest.mark.slow
def test_the_report_recomputes_the_same_verdict_and_says_what_is_not_available(finished):
    name, _, run = finished
    descriptor, rd = TASKS[name].descriptor, RunDir(run)
    before = json.loads(rd.verdict_json.read_text())
    rd.verdict_json.unlink()
    code, _, err = cli("report", run, "--quiet")
    assert code == 0, err
    assert json.loads(rd.verdict_json.read_text()) == before
    html = rd.report_html.read_text()
    lacking = [stage for stage in ("analyze", "explain") if not descriptor.supports(stage)]
    lacking += [analysis for analysis in ("transferability", "similarity") if not descriptor.supports("analyze") or
                analysis not in descriptor.analyses]  # an analysis its analyze does not write is not available either
    assert (f"not available for {name} runs yet" in html) == bool(lacking)
    assert descriptor.label in html


@pytest.mark.parametrize("name, stage", LACKING)
def test_a_command_on_data_a_task_lacks_ends_in_one_line_and_writes_nothing(name, stage, tmp_path, one_thread):
    tiny = TINY[name](tmp_path)
    out = tmp_path / "out"
    argv = {"audit": ["audit", "--data", tiny.data, "--model", tiny.model, "--checkpoint", tmp_path / "x.pt", "--out", out],
            "rank": ["rank", "--data", tiny.data, "--candidates", tiny.model, "--out", out],
            "sweep": ["finetune", *tiny.finetune, "--strategy", "linear-probe,full", "--out", out]}[stage]
    code, _, err = cli(*argv)
    one_line(code, err, f"not available for {name} runs yet")
    assert not out.exists()


# --- the toy task's numbers, recomputed from its own predictions file ---------------------------------------

def test_the_toy_mean_average_precision_is_sklearns_also_under_resampling():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.7, 0.7], [0.6, 0.2]])
    truth = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    assert mean_ap(scores, truth) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2) / 2)  # label 1: a tie at 0.7 is one threshold
    weights = resample_weights(4, 3, seed=1)
    for row, value in zip(weights, mean_ap(scores, truth, weights)):
        rows = np.repeat(np.arange(4), row)
        present = truth[rows].any(axis=0)
        expected = np.mean([average_precision_score(truth[rows, k], scores[rows, k]) for k in np.flatnonzero(present)])
        assert value == pytest.approx(expected)


@pytest.mark.slow
def test_the_toy_runs_metrics_and_verdict_are_its_stored_label_scores_scored_by_sklearn(tmp_path, one_thread):
    """Also through the scratch arm's learning-rate search (the task's rank_key picks the rate) and a resumed run
    that adds a seed (the verdict's second look)."""
    tiny = _toy_multilabel(tmp_path)
    code, _, err = cli("finetune", *tiny.finetune, "--epochs", "2", "--seeds", "2", "--threads", "1", "--scratch-lr", "auto",
                       "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    rd = RunDir(tmp_path / "run")
    search = json.loads(rd.run_json.read_text())["scratch_lr_search"]
    assert search["chosen"] == max(search["candidates"], key=lambda c: c["val_map"])["lr"] and search["learned"] is None
    code, _, err = cli("finetune", "--resume", rd.root, "--seeds", "3", "--quiet")
    assert code == 0, err
    verdict = json.loads(rd.verdict_json.read_text())
    assert verdict["seeds"] == [0, 1, 2] and [look["seeds"] for look in verdict["looks"]] == [2, 3]
    for arm in ("transfer", "scratch"):
        for row, seed in zip(verdict["per_seed"], (0, 1, 2)):
            stored = np.load(rd.seed(arm, seed).record_file("label_scores", arrays=True))
            truth, scores = stored["truth"], stored["scores"]
            present = truth.any(axis=0)
            expected = average_precision_score(truth[:, present], scores[:, present], average="macro")
            assert json.loads(rd.seed(arm, seed).metrics_json.read_text())["test"]["map"] == pytest.approx(expected, abs=1e-6)
            assert row[arm] == pytest.approx(expected, abs=1e-6)
    assert verdict["prior_map"] == pytest.approx(truth[:, present].mean(axis=0).mean())
    assert verdict["method"] == "seeds x test examples, test-set terms from a paired bootstrap over examples, Banerjee t-interval"
    assert verdict["gap"] == pytest.approx(np.mean([r["gap"] for r in verdict["per_seed"]]))


@pytest.mark.slow
def test_a_toy_arm_that_learned_nothing_is_flagged_in_the_toys_own_words(tmp_path, one_thread):
    """Scratch seeds whose stored scores are constant (AP = each label's share: the label prior) did not learn: the
    toy's verdict flags them and the report's banner names the descriptor's evidence."""
    tiny = _toy_multilabel(tmp_path)
    assert cli("finetune", *tiny.finetune, "--epochs", "1", "--seeds", "2", "--threads", "1", "--quiet", "--out", tmp_path / "run")[0] == 0
    rd = RunDir(tmp_path / "run")
    for seed in (0, 1):
        path = rd.seed("scratch", seed).record_file("label_scores", arrays=True)
        truth = np.load(path)["truth"]
        np.savez(path, scores=np.full(truth.shape, 0.5, dtype=np.float32), truth=truth)
    rd.verdict_json.unlink()
    code, _, err = cli("report", rd.root, "--quiet")
    assert code == 0, err
    verdict = json.loads(rd.verdict_json.read_text())
    assert [w["code"] for w in verdict["warnings"]] == ["baseline-did-not-learn"]
    assert verdict["warnings"][0]["evidence"]["map_min"] == pytest.approx(verdict["prior_map"])
    assert "test mAP, label prior" in rd.report_html.read_text()


@pytest.mark.slow
def test_a_task_an_installed_package_declares_works_in_a_fresh_process(tmp_path, one_thread):
    """The toy declared by a package (a dist-info with an ``xferdiag.tasks`` entry point on the path) instead of
    registered in the process: ``python -m xferdiag`` trains and judges it (the registry finds it) and refuses analyze
    of its run in one line (the descriptor is found); the two processes run side by side."""
    dist = tmp_path / "site" / "xferdiag_toy_tasks-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xferdiag-toy-tasks\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[xferdiag.tasks]\ntoy-multilabel = tests.toy_tasks.multilabel:MultiLabelTask\n")
    tiny = _toy_multilabel(tmp_path)
    flags = [*tiny.finetune, "--epochs", "1", "--seeds", "2", "--threads", "1", "--quiet"]
    assert cli("finetune", *flags, "--out", tmp_path / "here")[0] == 0
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(Path(__file__).resolve().parents[1])])}
    jobs = [subprocess.Popen([sys.executable, "-m", "xferdiag", *map(str, argv)], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for argv in (["finetune", *flags, "--out", tmp_path / "there"], ["analyze", tmp_path / "here"])]
    (_, trained), (_, refused) = (job.communicate(timeout=300) for job in jobs)
    assert jobs[0].returncode == 0 and json.loads((tmp_path / "there" / "verdict.json").read_text())["metric"] == "map", trained
    one_line(jobs[1].returncode, refused, "not available for toy-multilabel runs yet")


def test_a_broken_plug_in_a_package_declares_ends_in_one_line_naming_it(tmp_path, monkeypatch):
    from xferdiag.tasks import descriptor

    dist = tmp_path / "broken_tasks-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tasks\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[xferdiag.tasks]\nbroken = tests.toy_tasks.nowhere:Nothing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(descriptor, "_looked", [])  # look again, with the package on the path
    with pytest.raises(ConfigError, match=r"task plug-in 'broken' \(tests.toy_tasks.nowhere:Nothing\) does not load: No module"):
        describe_task("broken")
