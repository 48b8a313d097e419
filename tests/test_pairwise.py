"""Pairwise comparisons between arms and runs (:mod:`xferdiag.pairwise`, ``compare``'s pairing): the paired seeds x
examples statistic where two arms share the test split and seeds, Welch where they do not (and each pair says so),
Holm over all pairs. Known answers are worked out by hand in the comments."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from cli_helpers import run_cli_batch
from scipy import stats

from xferdiag.errors import InputError
from xferdiag.negative import paired_verdict
from xferdiag.pairwise import adjust, compare_arms, holm, paired, welch
from xferdiag.report import render_compare
from xferdiag.rundir import Predictions, RunDir, read_data, read_json, read_predictions, write_json, write_npz
from xferdiag.tasks.registry import task_named
from xferdiag.testing import write_full_run

CLASSIFICATION = task_named("classification")
LABELS = np.array([0, 1, 0, 1])


def _seed(correct: list[int], name: str) -> dict:
    """One seed's evidence as the verdict reads it, right exactly where ``correct`` says."""
    predictions = np.where(np.array(correct) == 1, LABELS, 1 - LABELS)
    accuracy = float(np.mean(correct))
    return {"name": name, "metrics": {"test": {"accuracy": accuracy, "macro_f1": accuracy}, "val": {"accuracy": accuracy}},
            "history": None, "records": {"predictions": Predictions(LABELS, predictions, None)}}


def test_paired_two_arms_matches_the_hand_computed_variance_components():
    # per-example differences d = a - b: seed 0 [0, 1, 1, 0], seed 1 [1, 0, 0, 1]; gap 0.5
    a = [_seed([1, 1, 1, 0], "a0"), _seed([1, 1, 0, 1], "a1")]
    b = [_seed([1, 0, 0, 0], "b0"), _seed([0, 1, 0, 0], "b1")]
    pair = paired(CLASSIFICATION, a, b, names=("lp", "full"), seeds=[0, 1], data={})
    # per-seed gaps are both 0.5 and every example's mean difference is 0.5: var_seeds = 0, MS_examples = 0; the
    # residual d - 0.5 is +-0.5 in all 8 cells, MS_residual = 8 * 0.25 / ((2 - 1)(4 - 1)) = 2/3, so each seed's own
    # test noise is (2/3) / 8 = 1/12 (3 df) and the shared test-set term is max(0 - 2/3, 0) = 0. Half-width
    # t_{3, .975} sqrt(1/12); the p-value is where that margin reaches 0.5: t = 0.5 / sqrt(1/12) = sqrt(3) on 3 df.
    half = stats.t.ppf(0.975, 3) * math.sqrt(1 / 12)
    assert pair.test == "paired" and pair.difference == pytest.approx(0.5)
    assert pair.ci95 == pytest.approx((0.5 - half, 1.0))  # the upper end is cut at an accuracy gap of 1
    assert pair.p_value == pytest.approx(2 * stats.t.sf(math.sqrt(3), 3), rel=1e-6)
    assert pair.unpaired_because is None and pair.n_seeds == (2, 2)
    with pytest.raises(InputError, match="one entry per seed"):
        paired(CLASSIFICATION, a, b[:1], names=("lp", "full"), seeds=[0, 1], data={})


def test_welch_known_answer_and_its_reason():
    a, b = [0.80, 0.82, 0.84], [0.70, 0.75, 0.80]
    pair = welch(a, b, names=("x", "y"), unpaired_because="different split seed (0 vs 1)")
    # variances over seeds 0.0004 and 0.0025, each over 3 seeds; Welch-Satterthwaite df from them
    va, vb = 0.0004 / 3, 0.0025 / 3
    t, df = 0.07 / math.sqrt(va + vb), (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert pair.test == "welch" and pair.difference == pytest.approx(0.07)
    assert pair.p_value == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert pair.ci95 == pytest.approx((0.07 - half, 0.07 + half))
    assert pair.to_dict()["unpaired_because"] == "different split seed (0 vs 1)"
    short = welch([0.8], b, names=("x", "y"), unpaired_because="r")
    flat = welch([0.8, 0.8], [0.8, 0.8], names=("x", "y"), unpaired_because="r")
    assert (short.test, short.p_value, short.note) == (None, None, "needs ≥ 2 seeds in each")
    assert (flat.test, flat.p_value, flat.note) == (None, None, "no seed-to-seed variation")


def test_holm_against_a_hand_computation():
    # sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1: 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.20
    assert holm([0.04, 0.01, 0.20, 0.03]) == pytest.approx([0.09, 0.04, 0.20, 0.09])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    pairs = [welch(x, [0.5, 0.52, 0.54], names=("x", "y"), unpaired_because="r") for x in ([0.6, 0.62, 0.64], [0.5])]
    first, untested = adjust(pairs)
    assert first.p_holm == pytest.approx(first.p_value) and first.significant == (first.p_value < 0.05)
    assert untested.p_holm is None and untested.significant is None  # a pair without a test takes no share of alpha


def test_compare_arms_pairs_every_arm_and_holm_corrects_over_them():
    rng = np.random.default_rng(0)
    arms = {name: [_seed(list(rng.random(4) < p), f"{name}{s}") for s in range(3)]
            for name, p in (("linear-probe", 0.9), ("lp-ft", 0.6), ("full", 0.3))}
    pairs = compare_arms(CLASSIFICATION, arms, seeds=[0, 1, 2], data={})
    assert [(p.a, p.b) for p in pairs] == [("linear-probe", "lp-ft"), ("linear-probe", "full"), ("lp-ft", "full")]
    for p in pairs:  # each pair's statistic is the verdict's on the two arms' correctness tables
        correct = [np.array([s["records"]["predictions"].predictions == LABELS for s in arms[n]]) for n in (p.a, p.b)]
        assert p.p_value == pytest.approx(paired_verdict(*correct).p_value)
    assert [p.p_holm for p in pairs] == pytest.approx(holm([p.p_value for p in pairs]))


# --- compare: which runs share a test split ---------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on the same split (different strategies), one with another split seed, one tested on other labels."""
    root = tmp_path_factory.mktemp("pairing")
    same = [write_full_run(root / name, transfer_acc=acc, seed=i, n_explained=1, shots=False, strategy=strategy)
            for i, (name, acc, strategy) in enumerate([("lp", 0.9, "linear-probe"), ("full", 0.8, "full")])]
    other_split = write_full_run(root / "split1", transfer_acc=0.7, seed=2, n_explained=1, shots=False)
    rd = RunDir(other_split)
    write_json(rd.data_json, {**read_data(rd), "split_seed": 1})
    other_labels = root / "relabelled"
    shutil.copytree(same[1], other_labels)
    rd = RunDir(other_labels)
    for s in rd.seeds("transfer"):
        p = read_predictions(rd.seed("transfer", s))
        write_npz(rd.seed("transfer", s).predictions_npz, labels=np.roll(p.labels, 1), predictions=p.predictions)
    return [*same, other_split, other_labels]


def test_compare_pairs_runs_that_share_the_split_and_says_why_others_fall_back(tmp_path, runs):
    report = render_compare(runs, tmp_path / "cmp.html")
    pairs = {(p["a"], p["b"]): p for p in json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))["pairwise"]}
    shared = pairs[("lp", "full")]
    assert shared["test"] == "paired" and shared["unpaired_because"] is None
    correct = []
    for run in runs[:2]:  # the verdict's statistic on the two transfer arms, read back from their files
        rd = RunDir(run)
        seeds = [read_predictions(rd.seed("transfer", s)) for s in rd.seeds("transfer")]
        correct.append(np.array([p.predictions == p.labels for p in seeds]))
    expected = paired_verdict(*correct)
    assert shared["difference"] == pytest.approx(expected.gap) and shared["p_value"] == pytest.approx(expected.p_value)
    assert shared["ci95"] == pytest.approx(list(expected.ci95))
    assert pairs[("lp", "split1")]["test"] == "welch"
    assert pairs[("lp", "split1")]["unpaired_because"] == "different split seed (0 vs 1)"
    assert pairs[("full", "relabelled")]["unpaired_because"] == "different test examples (the test labels differ)"
    assert [p["p_holm"] for p in pairs.values()] == pytest.approx(holm([p["p_value"] for p in pairs.values()]))
    assert report.html.count("not paired: different split seed") == 3  # split1 against each of the others
    assert "unpaired (Welch)" in report.html and "Holm-corrected over 6 comparisons" in report.html


def test_compare_does_not_pair_runs_with_different_seeds(tmp_path, runs):
    fewer = tmp_path / "fewer"
    shutil.copytree(runs[1], fewer)
    shutil.rmtree(RunDir(fewer).seed("transfer", 2).path)
    render_compare([runs[0], fewer], tmp_path / "seeds.html")
    [pair] = read_json(tmp_path / "seeds.json")["pairwise"]
    assert (pair["test"], pair["unpaired_because"]) == ("welch", "different seeds ([0, 1, 2] vs [0, 1])")


def test_compare_falls_back_when_the_task_cannot_judge_a_hand_made_run(tmp_path, runs):
    bare = tmp_path / "bare"
    shutil.copytree(runs[1], bare)
    for s in RunDir(bare).seeds("transfer"):  # a run written by hand without the test macro-F1 the verdict reads
        metrics = read_json(RunDir(bare).seed("transfer", s).metrics_json)
        write_json(RunDir(bare).seed("transfer", s).metrics_json, {**metrics, "test": {"accuracy": metrics["test"]["accuracy"]}})
    render_compare([runs[0], bare], tmp_path / "bare.html")
    [pair] = read_json(tmp_path / "bare.json")["pairwise"]
    assert pair["test"] == "welch" and pair["unpaired_because"].startswith("the task could not judge them (")
    assert "macro_f1" in pair["unpaired_because"]


SMALL = ["--data", "digits:rotated", "--model", "builtin:digits-cnn", "--shots", "5", "--epochs", "1", "--seeds", "2",
         "--test-fraction", "0.3", "--batch-size", "16", "--lr", "3e-3", "--threads", "1", "--quiet"]


@pytest.mark.slow
def test_compare_through_the_cli_on_tiny_real_runs(tmp_path, digits_checkpoint):
    pretrained = ["--pretrained-checkpoint", str(digits_checkpoint)]
    jobs = [(["finetune", *SMALL, *pretrained, "--strategy", "linear-probe", "--out", "lp"], tmp_path),
            (["finetune", *SMALL, *pretrained, "--strategy", "full", "--out", "full"], tmp_path),
            (["finetune", *SMALL, *pretrained, "--strategy", "full", "--split-seed", "1", "--out", "other"], tmp_path),
            (["compare", "lp", "full", "other", "--out", "cmp.html"], tmp_path)]
    results = run_cli_batch(jobs, workers=1)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    pairs = {(p["a"], p["b"]): p for p in read_json(tmp_path / "cmp.json")["pairwise"]}
    assert pairs[("lp", "full")]["test"] == "paired"
    assert pairs[("lp", "other")]["test"] == "welch" and pairs[("full", "other")]["test"] == "welch"
    assert pairs[("lp", "other")]["unpaired_because"].startswith("different split seed (0 vs 1)")
    lp, full = (RunDir(tmp_path / name) for name in ("lp", "full"))
    correct = [np.array([(p.predictions == p.labels) for p in (read_predictions(rd.seed("transfer", s)) for s in (0, 1))])
               for rd in (lp, full)]
    assert pairs[("lp", "full")]["p_value"] == pytest.approx(paired_verdict(*correct).p_value)
