"""The explanation budget: the cost model's arithmetic, the ladder of cheaper plans, and a budget run end to end."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from explain_helpers import patch_data, tiny_cnn, trained_patch_cnn

from xferdiag.config import DEFAULT_BUDGET
from xferdiag.errors import InputError
from xferdiag.explainers import ImageRequest, explain_arms
from xferdiag.explainers.budget import FLOORS, Budget, ExplainPlan, PassCosts, about_seconds, fit_plan

pytestmark = pytest.mark.usefixtures("one_thread")

COSTS = PassCosts(forward_s=0.01, backward_s=0.05, segment_s=0.2)
PLAN = ExplainPlan(("gradcam", "shap", "lime"), arms=2, n=4, lime_samples=100, shap_samples=10, deletion_steps=9,
                   sanity_examples=2, background=8)


def test_plan_seconds_by_hand():
    parts = PLAN.seconds(COSTS)
    curves = 2 * 4 * 2 * 10 * 0.01  # arms x n x (deletion + insertion) x 10 points
    assert parts["gradcam"] == pytest.approx(2 * 4 * 0.05)
    assert parts["gradcam checks"] == pytest.approx(2 * 0.05 + curves)  # the sanity re-run on 2 examples
    assert parts["shap"] == pytest.approx(2 * (4 * 10 * 0.05 + 8 * 0.01))  # + the background, once per model
    assert parts["shap checks"] == pytest.approx(2 * 10 * 0.05 + 8 * 0.01 + curves)
    assert parts["lime"] == pytest.approx(2 * 4 * (100 * 0.01 + 0.2))
    assert parts["lime checks"] == pytest.approx(2 * (100 * 0.01 + 0.2) + curves)
    assert PLAN.total_s(COSTS) == pytest.approx(sum(parts.values()))


def test_plan_line_says_under_1_s_not_0_s():
    # the demo's plan estimates well under a second: rounding gave "~ 0 s (budget 90 s)"
    quick = PassCosts(forward_s=1e-5, backward_s=1e-5, segment_s=1e-5)
    assert PLAN.total_s(quick) < 0.5
    line = fit_plan(PLAN, quick, DEFAULT_BUDGET).line()
    assert line.endswith("SHAP 10 samples under 1 s (budget 90 s)") and "~ 0 s" not in line
    assert fit_plan(PLAN, quick, None).line().endswith("SHAP 10 samples under 1 s")
    # from a second on, whole seconds: the parts of test_plan_seconds_by_hand add up to 22.54 s
    assert PLAN.total_s(COSTS) == pytest.approx(0.4 + 1.7 + 4.16 + 2.68 + 9.6 + 4.0)
    assert fit_plan(PLAN, COSTS, None).line().endswith("SHAP 10 samples ~ 23 s")
    assert [about_seconds(s) for s in (0.0, 0.49, 0.999, 1.0, 1.49, 90.4)] == [
        "under 1 s", "under 1 s", "under 1 s", "~ 1 s", "~ 1 s", "~ 90 s"]


def test_no_budget_or_enough_budget_runs_the_request():
    assert fit_plan(PLAN, COSTS, None).plan == PLAN
    fitted = fit_plan(PLAN, COSTS, PLAN.total_s(COSTS) + 0.01)
    assert fitted.plan == PLAN and fitted.reductions == []


def test_ladder_cuts_checks_first_then_samples_then_examples():
    big = ExplainPlan(("gradcam", "shap", "lime"), 2, 8, 1000, 200, 20, 8, 32)
    smallest = ExplainPlan(big.methods, 2, 1, FLOORS["lime_samples"], FLOORS["shap_samples"], FLOORS["deletion_steps"],
                           1, 32)
    budgets = [big.total_s(COSTS) * f for f in (0.9, 0.5, 0.2)] + [smallest.total_s(COSTS) * 1.5]
    fitted = [fit_plan(big, COSTS, b) for b in budgets]
    for f, b in zip(fitted, budgets):
        assert f.plan.total_s(COSTS) <= b
    assert fitted[0].plan.n == 8 and fitted[0].plan.sanity_examples < 8  # the sanity subset goes first
    assert fitted[1].plan.n == 8 and fitted[1].plan.lime_samples < 1000  # then samples, keeping every example
    assert fitted[-1].plan.n < 8 and fitted[-1].plan.lime_samples == FLOORS["lime_samples"]
    assert fitted[-1].reductions[0].startswith("the randomisation check re-explains 4")
    sizes = [(f.plan.n, f.plan.lime_samples, f.plan.shap_samples) for f in fitted]
    assert sizes == sorted(sizes, reverse=True)  # less time never buys more


def test_fewer_examples_come_a_quarter_at_a_time():
    floors = ExplainPlan(("gradcam", "shap", "lime"), 2, 8, FLOORS["lime_samples"], FLOORS["shap_samples"], 20, 1, 32)
    explained = []
    for n in (8, 6, 4, 3, 2, 1):  # a budget just above each size's cost explains exactly that many
        fitted = fit_plan(floors, COSTS, replace(floors, n=n).total_s(COSTS) + 1e-6)
        explained.append(fitted.plan.n)
    assert explained == [8, 6, 4, 3, 2, 1]


def test_budget_below_the_smallest_plan_says_the_minimum():
    # sizes asked below a floor stay as asked; only examples, the sanity subset and the steps go lower
    smallest = ExplainPlan(PLAN.methods, 2, 1, 100, 10, FLOORS["deletion_steps"], 1, 8)
    minimum = smallest.total_s(COSTS)
    with pytest.raises(InputError, match=rf"budget: 0.1 s is less than .* give at least --budget {math.ceil(minimum)}\b"):
        fit_plan(PLAN, COSTS, 0.1)
    with pytest.raises(InputError, match="budget: must be a number > 0"):
        fit_plan(PLAN, COSTS, -1)
    # the default budget is no user's choice: a model too slow for it gets the smallest plan, said so
    fitted = fit_plan(PLAN, COSTS, Budget(0.1, strict=False))
    assert fitted.plan == smallest and fitted.budget_s == 0.1
    assert fitted.reductions[-1] == f"even the smallest plan needs about {minimum:.0f} s, more than the 0.1 s budget"


def test_a_budget_run_records_its_plan_and_what_it_cut(monkeypatch):
    # the plan's arithmetic on fixed per-image costs: measured ones vary with the machine's load, and a
    # budget a quarter of the request's estimate must cut something whatever else the machine is doing
    monkeypatch.setattr("xferdiag.explainers.image.measure_costs", lambda *args, **kwargs: COSTS)
    x, y, _ = patch_data(12, seed=3)
    torch.manual_seed(1)
    models = {"transfer": trained_patch_cnn(), "scratch": tiny_cnn()}
    background = patch_data(8, seed=22)[0]
    asked = ImageRequest(models=models, images=x[:6], labels=y[:6], background=background, seed=0, lime_samples=400,
                         shap_samples=64)
    free, _ = explain_arms(asked, progress=False)
    estimate = free["budget"]["estimated_s"]
    index, maps = explain_arms(replace(asked, budget=max(estimate / 4, 0.5)), progress=False)
    budget = index["budget"]
    assert budget["reductions"] and budget["chosen"] != budget["requested"]
    assert budget["estimated_s"] <= budget["budget_s"]
    chosen = budget["chosen"]
    assert maps["lime__transfer"].shape[0] == len(index["examples"]) == chosen["n"]
    assert index["params"]["lime"]["num_samples"] == chosen["lime_samples"]
    assert index["params"]["faithfulness"]["steps"] == chosen["deletion_steps"]
    assert all(index["sanity"][m]["examples"] == min(chosen["sanity_examples"], chosen["n"]) for m in index["methods"])
    assert np.all(np.array(list(budget["measured_s_by_part"].values())) >= 0)
