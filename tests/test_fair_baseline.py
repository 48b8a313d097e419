"""A fair baseline, and a loud one when it is not: a scratch arm that cannot learn is flagged in
verdict.json and in the report's banner; --scratch-lr auto searches a rate; --scratch-epochs
gives the baseline its own budget."""

from __future__ import annotations

import shutil

import pytest
from cli_helpers import one_line_error, run_cli_batch

from xferdiag.commands import finetune as engine_run
from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.report.html import banner
from xferdiag.report.recommend import Facts, recommend
from xferdiag.rundir import RunDir, read_csv, read_json
from xferdiag.tasks.descriptor import describe_task

SMALL = ["--data", "digits:rotated", "--model", "builtin:digits-cnn", "--seeds", "1", "--shots", "5",
         "--test-fraction", "0.3", "--batch-size", "16", "--lr", "3e-3", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_checkpoint):
    """One batch of real ``xferdiag`` processes: a baseline that cannot learn (lr 1e-7) and its report,
    a searched and longer baseline, two bad values, and a search that finds no rate that learns and its report."""
    root = tmp_path_factory.mktemp("fair")
    common = [*SMALL, "--pretrained-checkpoint", str(digits_checkpoint)]
    jobs = [
        ["finetune", *common, "--epochs", "3", "--scratch-lr", "1e-7", "--out", "dead"],
        ["report", "dead", "--no-compute", "--quiet"],
        ["finetune", *common, "--epochs", "2", "--scratch-epochs", "4", "--scratch-lr", "auto", "--out", "auto"],
        ["finetune", *common, "--scratch-lr", "fast", "--out", "bad-lr"],
        ["finetune", *common, "--scratch-epochs", "0", "--out", "bad-epochs"],
        ["finetune", *common, "--epochs", "1", "--lr", "1e-7", "--scratch-lr", "auto", "--out", "no-rate"],  # searches 1e-6 only
        ["report", "no-rate", "--no-compute", "--quiet"],
    ]
    results = run_cli_batch([(argv, root) for argv in jobs], workers=1)  # in order: the report needs its run
    return root, results


def test_a_baseline_that_cannot_learn_is_flagged_and_the_banner_says_so(runs):
    root, results = runs
    for result in results[:2]:
        assert result.returncode == 0, result.stderr
    assert "xferdiag: warning: the scratch arm did not learn" in results[0].stderr
    assert "what would help: a learning rate that suits training from scratch (--scratch-lr auto" in results[0].stderr
    assert "--scratch-epochs N, e.g. 12" in results[0].stderr  # 4x its 3 epochs
    verdict = read_json(root / "dead" / "verdict.json")
    assert [w["code"] for w in verdict["warnings"]] == ["baseline-did-not-learn"]
    evidence = verdict["warnings"][0]["evidence"]["per_seed"][0]
    assert "val-at-chance" in evidence["signals"] and evidence["best_val_accuracy"] < evidence["val_needed"]
    assert verdict["budgets"]["scratch"]["lr"] == 1e-7 and verdict["budgets"]["transfer"]["lr"] == 3e-3

    html = (root / "dead" / "report.html").read_text()
    assert "Transfer helped:" not in html
    assert 'class="banner warning"' in html and "Not a fair comparison" in html
    assert "but the scratch baseline never learned" in html and "so this is not evidence" in html
    assert "--scratch-lr auto" in html and "--scratch-epochs N" in html
    assert "Budgets differ: transfer 3 epochs at learning rate 0.003; scratch 3 epochs at learning rate 1e" in html


def test_scratch_lr_auto_and_scratch_epochs(runs):
    root, results = runs
    assert results[2].returncode == 0, results[2].stderr
    run = RunDir(root / "auto")
    search = read_json(run.run_json)["scratch_lr_search"]
    rates = [c["lr"] for c in search["candidates"]]
    assert rates == [3e-4, 9e-4, 3e-3, 9e-3, 3e-2] and search["chosen"] in rates
    assert search["epochs"] == 3 and search["split"] == "val" and search["seed"] == 0
    best = max(c["val_accuracy"] for c in search["candidates"] if not c["diverged"])
    assert next(c for c in search["candidates"] if c["lr"] == search["chosen"])["val_accuracy"] == best
    assert len(read_csv(run.seed_dir("scratch", 0) / "history.csv")) == 4
    assert len(read_csv(run.seed_dir("transfer", 0) / "history.csv")) == 2
    verdict = read_json(run.verdict_json)
    assert verdict["budgets"] == {"transfer": {"epochs": 2, "lr": 3e-3}, "scratch": {"epochs": 4, "lr": search["chosen"]}}
    assert not list((root / "auto").rglob("*lr-search*"))  # the candidates trained elsewhere


def test_resume_reads_the_search_back(runs, tmp_path, monkeypatch):
    root, _ = runs
    out = shutil.copytree(root / "auto", tmp_path / "auto")
    (RunDir(out).seed_dir("scratch", 0) / "metrics.json").unlink()  # an interrupted scratch arm
    recorded = read_json(RunDir(out).run_json)["scratch_lr_search"]

    def no_search(*args, **kwargs):
        raise AssertionError("the search ran again on resume")

    monkeypatch.setattr(engine_run, "search_lr", no_search)
    config = RunConfig.from_dict(read_json(RunDir(out).run_json)["config"])
    finetune(config, out, resume=True, quiet=True)
    metrics = read_json(RunDir(out).seed_dir("scratch", 0) / "metrics.json")
    assert metrics["budget"] == {"epochs": 4, "lr": recorded["chosen"]}


def test_a_search_that_finds_no_rate_that_learns_says_so(runs):
    root, results = runs
    for result in results[5:7]:
        assert result.returncode == 0, result.stderr
    assert "xferdiag: warning: --scratch-lr auto found no learning rate at which the scratch arm learns" in results[5].stderr
    search = read_json(RunDir(root / "no-rate").run_json)["scratch_lr_search"]
    assert [c["lr"] for c in search["candidates"]] == [1e-6] and search["learned"] is False
    assert search["candidates"][0]["learned"] is False and search["epochs"] == 1
    warning = next(w for w in read_json(root / "no-rate" / "verdict.json")["warnings"] if w["code"] == "baseline-did-not-learn")
    assert warning["lr_search"] == {"learned": False, "epochs": 1, "chosen": 1e-6}
    assert "found no rate that learns in its 1-epoch trials" in warning["remedy"] and "e.g. 4)" in warning["remedy"]
    assert "what would help: --scratch-lr auto found no rate" in results[5].stderr
    html = (root / "no-rate" / "report.html").read_text()
    assert "found no learning rate at which it learns" in html and "no rate tried learned" in html


@pytest.mark.parametrize("index, needle", [(3, "--scratch-lr"), (4, "--scratch-epochs")])  # the flag the user typed
def test_bad_values_exit_2_with_one_line(runs, index, needle):
    root, results = runs
    assert one_line_error(results[index], needle) is None, results[index].stderr
    assert not (root / ("bad-lr" if index == 3 else "bad-epochs")).exists()


# --- the banner and the advice, on hand-made verdicts ------------------------------------------------

def dead_arm(code: str, arm: str, flagged: list[int], seeds: int = 3) -> dict:
    return {"code": code, "arm": arm, "message": f"the {arm} arm did not learn in ...",
            "evidence": {"seeds_flagged": flagged, "seeds": seeds, "test_accuracy": 0.1, "test_chance": 0.1,
                         "per_seed": [{"seed": s, "signals": ["one-class"], "best_val_accuracy": 0.1, "val_chance": 0.1,
                                       "min_train_loss": 2.3, "constant_loss": 2.303, "top_class_share": 1.0}
                                      for s in flagged]}}


def verdict(kind: str, gap: float, warnings: list[dict], budgets: dict | None = None) -> dict:
    return {"verdict": kind, "gap": gap, "ci95": [gap - 0.05, gap + 0.05], "seeds": [0, 1, 2],
            "warnings": warnings, "budgets": budgets}


ARMS = {arm: {"seeds": [0, 1, 2], "metrics": {s: {"test": {"accuracy": acc}} for s in range(3)}}
        for arm, acc in (("transfer", 0.694), ("scratch", 0.1))}


def test_banner_for_a_dead_baseline():
    dead = [dead_arm("baseline-did-not-learn", "scratch", [0, 1, 2])]
    shown = banner(verdict("positive", 0.594, dead), ARMS, RunDir("."), describe_task(None))
    assert shown["kind"] == "warning"
    assert shown["headline"].startswith("Transfer looks better by +59.4 points of test accuracy")
    assert ("but the scratch baseline never learned (10.0% test accuracy, chance 10.0%), so this is not evidence "
            "that transfer helped.") in shown["headline"]
    assert "--scratch-lr auto" in shown["details"][0] and "--scratch-epochs N" in shown["details"][0]


def test_banner_for_a_dead_transfer_arm_and_different_budgets():
    budgets = {"transfer": {"epochs": 10, "lr": 0.001}, "scratch": {"epochs": 30, "lr": 0.003}}
    dead = [dead_arm("transfer-did-not-learn", "transfer", [1])]
    shown = banner(verdict("negative", -0.2, dead, budgets), ARMS, RunDir("."), describe_task(None))
    assert shown["kind"] == "warning"
    assert "but the transfer arm did not learn in 1 of 3 seeds" in shown["headline"]
    assert shown["headline"].endswith("so this is not evidence that transfer hurt.")
    assert "Budgets differ: transfer 10 epochs at learning rate 0.001; scratch 30 epochs at learning rate 0.003." in shown["details"]


def test_healthy_verdict_keeps_its_sentence_and_equal_budgets_stay_quiet():
    same = {"transfer": {"epochs": 10, "lr": 0.001}, "scratch": {"epochs": 10, "lr": 0.001}}
    shown = banner(verdict("positive", 0.1, [], same), ARMS, RunDir("."), describe_task(None))
    assert shown["kind"] == "positive" and shown["headline"].startswith("Transfer helped: +10.0 points")
    assert not any(d.startswith("Budgets differ") for d in shown["details"])


def test_advice_warns_first_and_reads_nothing_into_the_gap():
    facts = Facts(arms=["transfer", "scratch"], strategy="linear-probe",
                  verdict=verdict("positive", 0.594, [dead_arm("baseline-did-not-learn", "scratch", [0, 1, 2])]))
    recs = recommend(facts)
    assert [r.title for r in recs] == ["The scratch baseline did not learn"]  # not "Fine-tuning more layers may help"
    assert recs[0].kind == "warning" and recs[0].command == "--scratch-lr auto   or   --scratch-epochs N"
    assert any(e.startswith("seed 2: best validation accuracy 10.0% (chance 10.0%)") for e in recs[0].evidence)
