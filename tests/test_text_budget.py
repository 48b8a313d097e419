"""The text explanation budget: the passes counted on fixed per-text costs, the ladder's text floors, a
strict budget too small for one text through the command line, and index.json's budget for a text run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.cli_helpers import one_line_error, tree_state, xferdiag
from xferdiag import rundir
from xferdiag.commands.explain import explain_run
from xferdiag.commands.finetune import finetune
from xferdiag.commands.textdemo import text_scenario_config
from xferdiag.errors import InputError
from xferdiag.explainers.budget import PassCosts, fit_plan
from xferdiag.explainers.text_budget import TEXT_FLOORS, TextPlan
from xferdiag.report.interpret import budget_sentence

pytestmark = pytest.mark.usefixtures("one_thread")

COSTS = PassCosts(forward_s=0.01, backward_s=0.03)
PLAN = TextPlan(("ig", "shap", "lime"), arms=2, n=4, lime_samples=300, shap_samples=200, ig_steps=50,
                sanity_examples=4, sanity_steps=2, tokens=30)


def test_text_plan_seconds_by_hand():
    parts = PLAN.seconds(COSTS)
    eraser = 2 * 4 * 11 * 0.01  # arms x texts x (the text + 5 fractions x (deleted, kept))
    ig, shap, lime = 50 * 0.03 + 2 * 0.01, (200 + 2) * 0.01, 300 * 0.01  # per text and arm
    assert parts["ig"] == pytest.approx(2 * 4 * ig)
    assert parts["shap"] == pytest.approx(2 * 4 * shap)
    assert parts["lime"] == pytest.approx(2 * 4 * lime)
    for m, per_text in (("ig", ig), ("shap", shap), ("lime", lime)):
        assert parts[f"{m} checks"] == pytest.approx(2 * 4 * per_text + eraser)  # 2 cascade steps x 4 texts
    # shap's partition explainer needs 2 m + 1 evaluations of m feature tokens, whatever max_evals says
    few = TextPlan(("shap",), 1, 1, 300, 10, 50, 1, 0, tokens=30)
    assert few.seconds(COSTS) == {"shap": pytest.approx((61 + 2) * 0.01)}  # no checks: no checks' part


def test_text_ladder_cuts_the_sanity_subset_then_samples_then_texts_never_below_the_floors():
    budgets = [PLAN.total_s(COSTS) * f for f in (0.9, 0.6, 0.3)]
    fitted = [fit_plan(PLAN, COSTS, b) for b in budgets]
    for f, b in zip(fitted, budgets):
        assert f.plan.total_s(COSTS) <= b and f.plan.ig_steps == 50
        assert f.plan.lime_samples >= TEXT_FLOORS["lime_samples"] and f.plan.shap_samples >= TEXT_FLOORS["shap_samples"]
    assert fitted[0].plan.n == 4 and fitted[0].plan.sanity_examples == 2
    assert fitted[0].reductions == ["the randomisation check re-explains 2 of the examples"]
    assert fitted[1].plan.n == 4 and fitted[1].plan.lime_samples < 300
    assert fitted[2].plan.n < 4 and fitted[2].plan.lime_samples == TEXT_FLOORS["lime_samples"]
    assert fitted[2].to_dict()["per_text"] == {"forward_s": 0.01, "backward_s": 0.03, "segment_s": 0.0}


def test_strict_text_budget_below_one_text_names_the_minimum():
    smallest = TextPlan(PLAN.methods, 2, 1, TEXT_FLOORS["lime_samples"], TEXT_FLOORS["shap_samples"], 50, 1, 2, 30)
    minimum = smallest.total_s(COSTS)
    with pytest.raises(InputError, match=rf"budget: 1 s is less than .*1 text x 3 methods.* --budget {math.ceil(minimum)}\b"):
        fit_plan(PLAN, COSTS, 1.0)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A planted-cue text run (the tiny BERT, one seed, both arms) to explain."""
    root = tmp_path_factory.mktemp("text-budget")
    config = text_scenario_config("text-cues", root / "source").replace(seeds=1, epochs=3)
    return finetune(config, root / "run", quiet=True)


@pytest.mark.slow
def test_strict_budget_too_small_for_one_text_exits_2_and_writes_nothing(text_run):
    before = tree_state(text_run)
    result = xferdiag("explain", text_run, "--budget", "0.001", "--quiet", cwd=text_run.parent)
    assert one_line_error(result, "give at least --budget") is None, result.stderr
    assert tree_state(text_run) == before


def test_text_run_records_its_plan_and_what_it_cut(text_run, monkeypatch):
    # fixed per-text costs: measured ones vary with the machine's load (see test_explain_budget)
    monkeypatch.setattr("xferdiag.explainers.text.measure_text_costs", lambda *args, **kwargs: COSTS)
    index = explain_run(text_run, n=4, lime_samples=300, shap_samples=200, budget=20.0, quiet=True)
    budget = index["budget"]
    assert set(budget) == {"budget_s", "estimated_s", "estimated_s_by_part", "per_text", "chosen", "requested",
                           "reductions", "measured_s_by_part"}
    chosen, asked = budget["chosen"], budget["requested"]
    assert budget["budget_s"] == 20.0 and budget["estimated_s"] <= 20.0 and budget["reductions"]
    assert asked["n"] == 4 and asked["lime_samples"] == 300 and chosen["n"] < 4
    assert set(budget["measured_s_by_part"]) == set(budget["estimated_s_by_part"])
    maps = rundir.read_npz(rundir.RunDir(text_run).maps_npz)
    assert maps["ig__transfer"].shape[0] == len(index["examples"]) == chosen["n"]
    assert index["params"]["lime"]["num_samples"] == chosen["lime_samples"]
    assert index["params"]["shap"]["max_evals"] == chosen["shap_samples"]
    assert all(index["sanity"][m]["examples"] == min(chosen["sanity_examples"], chosen["n"]) for m in index["methods"])
    assert np.all(np.array(list(budget["measured_s_by_part"].values())) >= 0)
    assert f"of the 4 requested examples {'is' if chosen['n'] == 1 else 'are'} explained" in budget_sentence(budget)
