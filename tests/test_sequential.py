"""What would decide an inconclusive verdict, and the looks of a run extended by seeds."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
from scipy import stats

from xferdiag import sequential
from xferdiag.commands.verdict import verdict_for_run
from xferdiag.config import RunConfig
from xferdiag.errors import ConfigError, InputError
from xferdiag.negative import paired_verdict, variance_components
from xferdiag.report.interpret import looks_sentence, plan_sentence
from xferdiag.report.sections.banner import banner
from xferdiag.rundir import RunDir, read_json, write_json
from xferdiag.tasks.descriptor import describe_task
from xferdiag.testing import write_arm_seed, write_data_json, write_run_json


def _tables(rng, n_seeds, n_test, gap=0.0):
    a = rng.random((n_seeds, n_test)) < 0.75 + gap
    b = rng.random((n_seeds, n_test)) < 0.75
    return a, b


@pytest.mark.parametrize("shape", [(2, 5), (3, 40), (7, 300)])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_half_width_is_the_verdicts_interval(shape, alpha):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        a, b = _tables(rng, *shape)
        v = paired_verdict(a, b, alpha)
        var_seeds, var_own, var_test = variance_components(a.astype(float) - b)
        h = sequential.half_width(var_seeds * shape[0], var_own * shape[0], var_test, *shape, alpha)
        assert v.ci95 == pytest.approx((max(v.gap - h, -1.0), min(v.gap + h, 1.0)), abs=1e-12)


@pytest.mark.parametrize("n_seeds,effect", [(3, 0.05), (5, 0.03), (10, 0.02)])
def test_power_is_the_noncentral_t_when_only_seeds_vary(n_seeds, effect):
    """No test noise at all: the verdict is the paired t over seeds, whose power is the noncentral t's."""
    tau2, alpha = 0.03**2, 0.05
    got = float(sequential.power(tau2, 0.0, 0.0, n_seeds, 10**7, effect, alpha))
    ncp = effect / np.sqrt(tau2 / n_seeds)
    want = stats.nct.sf(stats.t.isf(alpha / 2, n_seeds - 1), n_seeds - 1, ncp)
    assert got == pytest.approx(want, abs=2e-3)


def test_the_suggested_seeds_solve_the_formula():
    # a constructed run: 3 seeds x 600 examples, tau^2 (one seed's gap) 0.0002, own test noise 0.00015, shared 0.000005
    tau2, own, shared, n_test = 2e-4, 1.5e-4, 5e-6, 600
    planned = float(sequential.upper_tau2(tau2, own, 3))
    assert planned == pytest.approx(tau2 * 2 / stats.chi2.ppf(0.2, 2)) == pytest.approx(4.481 * tau2, rel=1e-3)
    s = int(sequential.seeds_needed(tau2, own, shared, 3, n_test, 0.03, 0.01))
    assert 3 < s <= sequential.MAX_SEEDS
    assert sequential.power(planned, own, shared, s, n_test, 0.03, 0.01) >= 0.8
    assert sequential.power(planned, own, shared, s - 1, n_test, 0.03, 0.01) < 0.8
    plan = sequential.plan(tau2 / 3, own / 3, shared, 3, n_test, min_effect=0.03, alpha_now=0.05, alpha_next=0.01)
    assert plan.seeds == s and not plan.powered and plan.alpha == 0.01
    # 3 seeds cannot rule out seed-to-seed variation (its bound is 4.5 times the estimate): test examples alone do not do
    assert plan.test_examples is None


def test_the_suggested_test_examples_solve_the_formula():
    # 8 seeds whose gaps vary by test noise alone, and a large shared test-set part: more examples decide
    tau2, own, shared, n_test = 1e-4, 1e-4, 4e-5, 600
    plan = sequential.plan(tau2 / 8, own / 8, shared, 8, n_test, min_effect=0.03, alpha_now=0.01, alpha_next=0.005)
    n, extra = plan.test_examples, float(sequential.upper_tau2(tau2, own, 8)) - own
    assert n > n_test
    for size, enough in ((n, True), (int(0.98 * n), False)):  # the search stops within 1% of the smallest size
        scale = n_test / size
        assert (sequential.power(extra + own * scale, own * scale, shared * scale, 8, size, 0.03, 0.005) >= 0.8) == enough


def test_the_planned_seed_variance_never_drops_below_test_noise():
    assert float(sequential.upper_tau2(0.0, 3e-4, 3)) == 3e-4


def test_plans_shrink_as_the_gap_to_decide_grows():
    effects = (0.02, 0.03, 0.05, 0.08)
    plans = [sequential.plan(2e-4 / 3, 1.5e-4 / 3, 5e-6, 3, 600, min_effect=e, alpha_now=0.05, alpha_next=0.01) for e in effects]
    seeds = [p.seeds if p.seeds is not None else sequential.MAX_SEEDS + 1 for p in plans]
    assert seeds == sorted(seeds, reverse=True) and seeds[0] > seeds[-1]
    plans = [sequential.plan(1e-4 / 8, 1e-4 / 8, 4e-5, 8, 600, min_effect=e, alpha_now=0.01, alpha_next=0.005) for e in effects]
    examples = [p.test_examples if p.test_examples is not None else sequential.MAX_TEST + 1 for p in plans]
    assert examples == sorted(examples, reverse=True) and examples[0] > examples[-1]


def test_an_infeasible_plan_says_none():
    # seeds that disagree by 10 points: no 20 seeds decide 2 points, and no test set removes seed variation
    plan = sequential.plan(0.1**2 / 3, 3e-4 / 3, 2e-5, 3, 600, min_effect=0.02, alpha_now=0.05, alpha_next=0.01)
    assert plan.seeds is None and plan.test_examples is None


def test_a_run_of_many_seeds_may_be_told_to_double_them():
    plan = sequential.plan(0.04**2 / 25, 3e-4 / 25, 1e-6, 25, 600, min_effect=0.03, alpha_now=0.05, alpha_next=0.005)
    assert plan.max_seeds == 50 and 25 < plan.seeds <= 50


def test_a_run_with_power_to_spare_says_so():
    plan = sequential.plan(1e-6, 1e-6, 1e-6, 3, 600, min_effect=0.2, alpha_now=0.05, alpha_next=0.01)
    assert plan.powered


def test_look_levels():
    assert [sequential.look_alpha(k, 0.05) for k in (1, 2, 3, 4)] == [0.05, 0.005, 0.0025, 0.00125]


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan"), "3", True])
def test_min_effect_is_checked(bad):
    with pytest.raises(InputError, match="min_effect"):
        sequential.check_min_effect(bad)


# --- the verdict of a run directory ------------------------------------------------------------------


def _run(root, n_seeds, n_test=200):
    rd = RunDir(root)
    if not rd.run_json.is_file():
        root.mkdir(parents=True, exist_ok=True)
        write_run_json(rd)
        write_data_json(rd, [str(c) for c in range(4)], n_test=n_test)
    for seed in range(n_seeds):
        if not rd.seed("transfer", seed).metrics_json.is_file():
            rng = np.random.default_rng(seed)
            for arm, accuracy in (("transfer", 0.80), ("scratch", 0.79)):
                write_arm_seed(rd, arm, seed, accuracy, 4, n_test=n_test, epochs=3, rng=rng)
    return rd


def test_an_inconclusive_verdict_carries_its_plan(tmp_path):
    rd = _run(tmp_path / "run", 3)
    verdict = verdict_for_run(rd.root)
    assert verdict["verdict"] == "inconclusive" and verdict["alpha"] == 0.05 and verdict["min_effect"] == 0.03
    assert verdict["looks"] == [{"look": 1, "seeds": 3, "n_test": 200, "alpha": 0.05, "verdict": "inconclusive",
                                 "gap": verdict["gap"], "boundary": pytest.approx(verdict["ci95"][1] - verdict["gap"])}]
    plan = verdict["plan"]
    assert plan["min_effect"] == 0.03 and plan["alpha"] == 0.005 and plan["seeds_now"] == 3 and plan["n_test"] == 200
    assert plan == verdict_for_run(rd.root, min_effect=0.03)["plan"]  # computed again on the same seeds: the same look
    bigger = verdict_for_run(rd.root, min_effect=0.1)
    assert len(bigger["looks"]) == 1 and bigger["plan"]["min_effect"] == 0.1
    assert (bigger["plan"]["test_examples"] or 10**9) <= (plan["test_examples"] or 10**9)


def test_min_effect_comes_from_the_runs_config(tmp_path):
    rd = _run(tmp_path / "run", 3)
    meta = read_json(rd.run_json)
    write_json(rd.run_json, {**meta, "config": {**meta["config"], "min_effect": 0.08}})
    assert verdict_for_run(rd.root)["plan"]["min_effect"] == 0.08
    with pytest.raises(InputError, match="min_effect"):
        verdict_for_run(rd.root, min_effect=2)


def test_adding_seeds_is_a_second_look_at_a_smaller_level(tmp_path):
    rd = _run(tmp_path / "run", 3)
    first = verdict_for_run(rd.root)
    _run(rd.root, 5)
    second = verdict_for_run(rd.root)
    assert [(look["look"], look["seeds"], look["alpha"]) for look in second["looks"]] == [(1, 3, 0.05), (2, 5, 0.005)]
    assert second["looks"][0] == first["looks"][0] and second["alpha"] == 0.005 and second["seeds"] == [0, 1, 2, 3, 4]
    correct = [np.array([np.load(rd.seed(arm, s).predictions_npz)["predictions"] == np.load(rd.seed(arm, s).predictions_npz)["labels"]
                         for s in range(5)]) for arm in ("transfer", "scratch")]
    assert second["ci95"] == pytest.approx(list(paired_verdict(*correct, 0.005).ci95))
    assert verdict_for_run(rd.root)["looks"] == second["looks"]  # the same seeds again: no new look
    if second["verdict"] == "inconclusive":
        assert second["plan"]["alpha"] == 0.0025


def test_a_verdict_from_before_looks_were_kept_counts_as_the_first_look(tmp_path):
    rd = _run(tmp_path / "run", 3)
    old = {k: v for k, v in verdict_for_run(rd.root).items() if k not in ("looks", "plan", "min_effect")}
    write_json(rd.verdict_json, old)
    assert verdict_for_run(rd.root)["looks"][0]["alpha"] == 0.05  # same seeds: still look 1, same numbers
    assert verdict_for_run(rd.root)["ci95"] == old["ci95"]
    write_json(rd.verdict_json, old)
    _run(rd.root, 4)
    assert [look["seeds"] for look in verdict_for_run(rd.root)["looks"]] == [3, 4]


# --- in words ----------------------------------------------------------------------------------------


PLAN = {"min_effect": 0.03, "power": 0.8, "alpha": 0.005, "seeds_now": 3, "n_test": 600, "powered": False, "seeds": 5,
        "test_examples": 1234, "max_seeds": 20,
        "seed_variance": "80% upper confidence bound of the seed variance, from 3 seeds: 2 degrees of freedom"}


def test_the_plan_in_words():
    line = plan_sentence(PLAN, "runs/a")
    assert line == ("Too uncertain to call. To decide a 3-point gap with 80% power at the next look's level (α = 0.005): "
                    "about 5 seeds in total (2 more: `xferdiag finetune --resume runs/a --seeds 5`), or about 1,200 test "
                    "examples with these seeds; the seed estimate is conservative (an 80% upper confidence bound of the "
                    "seed variance, from 3 seeds: 2 degrees of freedom).")
    assert "more than 20 seeds" in plan_sentence({**PLAN, "seeds": None}, "r")
    assert "not more test examples alone (with 3 seeds" in plan_sentence({**PLAN, "test_examples": None}, "r")
    assert "no feasible extension" in plan_sentence({**PLAN, "seeds": None, "test_examples": None}, "r")
    assert "most likely smaller" in plan_sentence({**PLAN, "powered": True}, "r")
    assert plan_sentence(None, "r") is None


def test_the_looks_in_words():
    looks = [{"look": 1, "seeds": 3, "alpha": 0.05}, {"look": 2, "seeds": 5, "alpha": 0.005}]
    assert looks_sentence(looks).startswith("Look 2 at this run (3 seeds, then 5 seeds)")
    assert "α = 0.005" in looks_sentence(looks) and looks_sentence(looks[:1]) is None


def test_the_banner_says_what_would_decide_it_and_which_look_it_is(tmp_path):
    rd = _run(tmp_path / "run", 3)
    verdict = verdict_for_run(rd.root)
    shown = banner(verdict, {}, rd, describe_task(None))
    assert "(95% CI" in shown["headline"]
    assert shown["details"][0] == plan_sentence(verdict["plan"], shlex.quote(str(rd.root)))
    _run(rd.root, 5)
    verdict = verdict_for_run(rd.root)
    shown = banner(verdict, {}, rd, describe_task(None))
    assert "(99.5% CI" in shown["headline"] and looks_sentence(verdict["looks"]) in shown["details"]


@pytest.mark.parametrize("bad", [0, 1, -0.02, "big", True])
def test_the_configs_min_effect_is_checked(bad):
    with pytest.raises(ConfigError, match="min_effect"):
        RunConfig(min_effect=bad)
    assert RunConfig().min_effect == sequential.MIN_EFFECT == 0.03
