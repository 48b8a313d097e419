"""Sweeps in one run directory: one transfer arm per strategy (or per lr, backbone multiplier, layer decay) beside ONE
scratch arm trained once, a verdict per transfer arm, resume of any arm, and the report's ranking.

The known answers: every arm of a sweep starts from the same seeded streams as a single run, so the sweep's scratch
arm and its ``lp-ft`` arm are bit for bit the single ``--strategy lp-ft`` run's scratch and transfer arms (though the
lp-ft arm finds its linear-probe phase's features cached by the linear-probe arm), and the sweep's verdict for
``transfer-lp-ft`` is that run's verdict."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from cli_helpers import one_line_error, run_cli_batch

from xferdiag.commands.finetune import _check_sweep, finetune, resume_config
from xferdiag.config import RunConfig
from xferdiag.errors import ConfigError
from xferdiag.report.html import render_report
from xferdiag.rundir import RunDir, RunStatus, read_json
from xferdiag.sweeps import arm_name, sweep_of, transfer_arms

SMALL = dict(data="digits:rotated", model="builtin:digits-cnn", seeds=2, shots=[5], test_fraction=0.3, batch_size=16,
             lr=3e-3, epochs=2, threads=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_checkpoint, one_thread):
    """A two-strategy sweep and the single ``lp-ft`` run with the same seeds."""
    root = tmp_path_factory.mktemp("sweep")
    base = dict(SMALL, pretrained_checkpoint=str(digits_checkpoint))
    finetune(RunConfig(strategy="linear-probe,lp-ft", **base), root / "sweep", quiet=True)
    finetune(RunConfig(strategy="lp-ft", **base), root / "single", quiet=True)
    return root, base


def _arrays(run: RunDir, arm: str, seed: int) -> dict[str, np.ndarray]:
    with np.load(run.seed(arm, seed).predictions_npz) as npz:
        return {key: npz[key] for key in npz.files}


def test_a_list_is_a_sweep_and_one_value_records_what_it_did_before():
    assert RunConfig(strategy="linear-probe, lp-ft,full").strategy == ["linear-probe", "lp-ft", "full"]
    assert RunConfig(strategy=["full"]).strategy == "full" and RunConfig(lr=[0.01]).lr == 0.01
    assert RunConfig().to_dict()["strategy"] == "full" and sweep_of(RunConfig().to_dict()) is None
    config = RunConfig(layer_decay=[0.65, 1.0]).to_dict()
    assert transfer_arms(config) == ["transfer-layer-decay-0.65", "transfer-layer-decay-1"]
    assert transfer_arms(RunConfig().to_dict()) == ["transfer"]
    assert arm_name("lr", 1e-3) == "transfer-lr-0.001" and arm_name("backbone_lr_mult", 0.1) == "transfer-backbone-lr-mult-0.1"
    assert RunConfig.from_dict(RunConfig(lr=[0.01, 0.001]).to_dict()).lr == [0.01, 0.001]  # run.json round trip (resume)


@pytest.mark.parametrize("values, needle", [
    (dict(strategy="full,nope"), "strategy: unknown value 'nope'"),
    (dict(strategy="full,full"), "each value once"),
    (dict(layer_decay=[1, 1.0]), "each value once"),  # one arm folder, transfer-layer-decay-1
    (dict(strategy="full,lp-ft", lr=[0.1, 0.01]), "one setting at a time"),
    (dict(lr=[0.1, -1.0]), "lr: must be a number >= 0"),
    (dict(layer_decay=[0.5, 1.0], shots="5,all"), "one training size"),
])
def test_bad_sweeps_are_refused_in_one_line(values, needle):
    with pytest.raises(ConfigError, match=needle):
        RunConfig(**values)


def test_a_detection_sweep_is_refused_in_one_line():
    from xferdiag.tasks.detection.task import DetectionTask

    with pytest.raises(ConfigError, match="strategy: a sweep is not available for detection runs yet; give one value"):
        _check_sweep(RunConfig(strategy="full,lp-ft"), DetectionTask(), quiet=True)


@pytest.mark.slow  # the module's runs: about 20 s on a busy 2-core box
def test_the_scratch_arm_is_trained_once_and_is_the_single_runs(runs):
    root, _ = runs
    sweep, single = RunDir(root / "sweep"), RunDir(root / "single")
    assert sorted(p.name for p in sweep.arms_dir.iterdir()) == ["scratch", "transfer-linear-probe", "transfer-lp-ft"]
    for seed in (0, 1):
        for mine, theirs in (("scratch", "scratch"), ("transfer-lp-ft", "transfer")):
            a, b = _arrays(sweep, mine, seed), _arrays(single, theirs, seed)
            assert all(np.array_equal(a[key], b[key]) for key in b), (mine, seed)
    lp = _arrays(sweep, "transfer-linear-probe", 0)["probabilities"]
    assert not np.array_equal(lp, _arrays(sweep, "transfer-lp-ft", 0)["probabilities"])  # the arms do differ


def test_one_verdict_per_transfer_arm_against_the_shared_scratch_arm(runs):
    root, _ = runs
    verdict, single = read_json(RunDir(root / "sweep").verdict_json), read_json(RunDir(root / "single").verdict_json)
    assert list(verdict["verdicts"]) == ["transfer-linear-probe", "transfer-lp-ft"]
    assert verdict["sweep"] == {"setting": "strategy", "values": ["linear-probe", "lp-ft"], "baseline": "scratch",
                                "arms": ["transfer-linear-probe", "transfer-lp-ft"], "scratch_lr": 3e-3}
    own = verdict["verdicts"]["transfer-lp-ft"]
    assert own["arms"] == ["transfer-lp-ft", "scratch"]
    for key in ("gap", "ci95", "p_value", "verdict", "per_seed"):
        assert own[key] == (single[key] if key != "per_seed" else [
            {("transfer-lp-ft" if k == "transfer" else k): v for k, v in row.items()} for row in single["per_seed"]]), key
    top = {k: v for k, v in verdict.items() if k not in ("sweep", "verdicts", "ranking", "pairs")}
    assert top == verdict["verdicts"]["transfer-linear-probe"]  # a reader of one verdict reads the first arm's
    gaps = [verdict["verdicts"][r["arm"]]["gap"] for r in verdict["ranking"]]
    assert gaps == sorted(gaps, reverse=True) and [r["rank"] for r in verdict["ranking"]] == [1, 2]


def test_resume_finishes_any_arm_and_leaves_the_others_alone(runs, tmp_path):
    root, _ = runs
    copy = tmp_path / "sweep"
    shutil.copytree(root / "sweep", copy)
    run = RunDir(copy)
    shutil.rmtree(run.seed("transfer-linear-probe", 1).path)
    kept = {arm: run.seed(arm, 1).metrics_json.stat().st_mtime_ns for arm in ("scratch", "transfer-lp-ft")}
    finetune(resume_config(copy), copy, resume=True, quiet=True)
    assert {arm: run.seed(arm, 1).metrics_json.stat().st_mtime_ns for arm in kept} == kept
    again, before = _arrays(run, "transfer-linear-probe", 1), _arrays(RunDir(root / "sweep"), "transfer-linear-probe", 1)
    assert all(np.array_equal(again[key], before[key]) for key in before)
    assert read_json(run.verdict_json)["verdicts"] == read_json(RunDir(root / "sweep").verdict_json)["verdicts"]


def test_the_report_ranks_every_arm_and_says_what_it_cannot_analyse(runs, tmp_path):
    root, _ = runs
    run = RunDir(root / "sweep")
    status = RunStatus.of(run, read_json(run.run_json)["config"], lambda: True)
    assert status.blocked["analysis"] == "not available for a strategy sweep yet" and "verdict" in status.done
    report = render_report(run.root, tmp_path / "report.html")
    verdict = read_json(run.verdict_json)
    best = verdict["ranking"][0]
    assert "Sweep over the strategy: transfer helped in" in report.html
    assert f"the best, {best['arm']}," in report.html and 'id="sweep"' in report.html
    for arm in ("transfer-linear-probe", "transfer-lp-ft", "scratch"):
        assert f"<td>{arm}</td>" in report.html  # a row of the sweep's table each
    assert any("not available for a strategy sweep yet" in line for line in report.missing)


def test_an_lr_sweep_pins_the_scratch_rate_once_and_says_so(digits_checkpoint, tmp_path, capsys, one_thread):
    config = RunConfig(**dict(SMALL, lr=[3e-3, 1e-3], seeds=1, epochs=1, pretrained_checkpoint=str(digits_checkpoint)))
    finetune(config, tmp_path / "lr", quiet=False)
    assert "scratch arm: one learning rate for every arm of the --lr sweep: the first of --lr, 0.003" in capsys.readouterr().err
    verdict = read_json(RunDir(tmp_path / "lr").verdict_json)
    assert list(verdict["verdicts"]) == ["transfer-lr-0.003", "transfer-lr-0.001"] and verdict["sweep"]["scratch_lr"] == 3e-3
    budgets = {arm: v["budgets"] for arm, v in verdict["verdicts"].items()}
    assert budgets["transfer-lr-0.001"] == {"transfer-lr-0.001": {"epochs": 1, "lr": 1e-3}, "scratch": {"epochs": 1, "lr": 3e-3}}


@pytest.mark.slow  # four processes that import the command line, one of which trains
def test_the_command_line_takes_lists_and_refuses_bad_ones_in_one_line(tmp_path, digits_checkpoint):
    common = ["--data", "digits:rotated", "--model", "builtin:digits-cnn"]
    sweep = [*common, "--pretrained-checkpoint", str(digits_checkpoint), "--seeds", "1", "--epochs", "1", "--shots", "5",
             "--threads", "1", "--quiet", "--strategy", "linear-probe,full", "--out", "sweep"]
    results = run_cli_batch([(["finetune", *common, "--lr", "0.01,0.001", "--strategy", "full,lp-ft", "--out", "x"], tmp_path),
                             (["finetune", *common, "--strategy", "linear-probe,fancy", "--out", "x"], tmp_path),
                             (["audit", *common, "--strategy", "full,lp-ft", "--checkpoint", "model.pt", "--out", "a"], tmp_path),
                             (["finetune", *sweep], tmp_path)])
    assert one_line_error(results[0], "one setting at a time") is None, results[0].stderr
    assert one_line_error(results[1], "strategy: unknown value 'fancy'") is None, results[1].stderr
    assert one_line_error(results[2], "audit: one fine-tuned model has one strategy; give one value") is None, results[2].stderr
    ranking = read_json(RunDir(tmp_path / "sweep").verdict_json)["ranking"]
    lines = [line for line in results[3].stdout.splitlines() if line[:2] in ("1.", "2.")]
    assert results[3].returncode == 0 and [line.split(":")[0] for line in lines] == [f"{r['rank']}. {r['arm']}" for r in ranking]


def test_every_two_transfer_arms_are_compared_paired_and_compare_splits_a_sweep_into_its_arms(runs, tmp_path):
    from xferdiag.report.compare import compare_runs

    root, _ = runs
    run = RunDir(root / "sweep")
    (pair,) = read_json(run.verdict_json)["pairs"]
    accuracy = {arm: [float(np.mean(_arrays(run, arm, s)["predictions"] == _arrays(run, arm, s)["labels"])) for s in (0, 1)]
                for arm in ("transfer-linear-probe", "transfer-lp-ft")}
    assert (pair["a"], pair["b"], pair["test"]) == ("transfer-linear-probe", "transfer-lp-ft", "paired")
    assert pair["difference"] == pytest.approx(np.mean(accuracy["transfer-linear-probe"]) - np.mean(accuracy["transfer-lp-ft"]))
    assert pair["p_holm"] == pair["p_value"]  # one pair: Holm changes nothing
    comparison = compare_runs([root / "sweep", root / "single"])
    assert [r["name"] for r in comparison["runs"]] == ["sweep:transfer-linear-probe", "sweep:transfer-lp-ft", "single"]
    assert [r["strategy"] for r in comparison["runs"]] == ["linear-probe", "lp-ft", "lp-ft"]
    same = next(p for p in comparison["pairwise"] if (p["a"], p["b"]) == ("sweep:transfer-lp-ft", "single"))
    assert same["test"] == "paired" and same["difference"] == 0.0  # the sweep's lp-ft arm is the single run's
