"""A scratch arm that cannot learn says what would help (issue 30, item 4): the task judges whether a validation
score shows learning, the lr search records whether any rate learned, and the warning, the terminal and the
report's advice name the remedy the run has not tried yet."""

from __future__ import annotations

import pytest
from scipy import stats

from xferdiag import health
from xferdiag.engine.lr_search import any_learned, search_lr
from xferdiag.errors import TrainingDivergedError
from xferdiag.report.recommend import DID_NOT_LEARN, SEARCHED_BASELINE, Facts, dead_arm, recommend
from xferdiag.tasks.classification.task import ClassificationTask
from xferdiag.tasks.detection.task import DetectionTask

TEN_BY_TWENTY = {"class_counts": {"val": [20] * 10}}  # 200 validation examples, chance 10%


def test_classification_learned_is_the_binomial_test_against_chance():
    task = ClassificationTask()
    # the smallest k with P(X >= k) <= 0.01 for X ~ Binomial(200, 0.1), found by summing the tail directly
    k = next(k for k in range(201) if stats.binom.sf(k - 1, 200, 0.1) <= 0.01)
    assert k == 31
    assert task.learned({"accuracy": k / 200, "loss": 2.0}, TEN_BY_TWENTY) is True
    assert task.learned({"accuracy": (k - 1) / 200, "loss": 2.0}, TEN_BY_TWENTY) is False
    assert task.learned({"accuracy": 0.10, "loss": 2.3}, TEN_BY_TWENTY) is False
    # ten validation examples of two classes: even 10/10 is needed, more than 20 points above chance: cannot tell
    assert task.learned({"accuracy": 1.0, "loss": 0.1}, {"class_counts": {"val": [5, 5]}}) is None
    assert task.learned({"accuracy": 1.0, "loss": 0.1}, {}) is None


def test_detection_cannot_tell_during_the_search():
    assert DetectionTask().learned({"ap50": 0.9, "map": 0.5}, {"box_prior": {}}) is None


def _search(summaries: dict[float, dict | None]) -> dict:
    def train(lr):
        if summaries[lr] is None:
            raise TrainingDivergedError("diverged")
        return summaries[lr]

    task = ClassificationTask()
    return search_lr(list(summaries), 3, train, task, learned=lambda s: task.learned(s, TEN_BY_TWENTY))


def test_search_records_that_no_rate_learned():
    record = _search({1e-4: {"accuracy": 0.10, "loss": 2.30}, 1e-3: {"accuracy": 0.12, "loss": 2.29},
                      1e-2: None, 1e-1: {"accuracy": 0.12, "loss": 2.31}})
    assert record["learned"] is False and record["chosen"] == 1e-3  # the tie on accuracy goes to the lower loss
    assert [c["learned"] for c in record["candidates"]] == [False, False, None, False]  # a diverged rate is not judged


def test_search_records_a_rate_that_learned():
    record = _search({1e-4: {"accuracy": 0.10, "loss": 2.30}, 1e-3: {"accuracy": 0.40, "loss": 1.7}})
    assert record["learned"] is True and record["chosen"] == 1e-3
    assert [c["learned"] for c in record["candidates"]] == [False, True]


def test_any_learned():
    assert any_learned([False, True, None]) is True
    assert any_learned([False, False]) is False
    assert any_learned([False, None]) is None and any_learned([]) is None


def test_remedy_names_only_what_the_run_has_not_tried():
    config = {"epochs": 5, "scratch_epochs": None}
    untried = health.remedy("baseline-did-not-learn", config, None)
    assert "--scratch-lr auto" in untried and "--scratch-epochs N, e.g. 20" in untried
    none_learned = health.remedy("baseline-did-not-learn", {"epochs": 5, "scratch_epochs": 10}, {"learned": False, "epochs": 3})
    assert "found no rate that learns in its 3-epoch trials" in none_learned and "e.g. 40" in none_learned
    searched = health.remedy("baseline-did-not-learn", config, {"learned": True, "epochs": 3})
    assert "--scratch-lr auto" in searched and "already searched" in searched and "e.g. 20" in searched
    assert "--lr" in health.remedy("transfer-did-not-learn", config, None)


def _dead_baseline(search: dict | None) -> dict:
    warning = {"code": "baseline-did-not-learn", "arm": "scratch", "message": "the scratch arm did not learn",
               "evidence": {"per_seed": []}}
    return {**warning, "lr_search": search} if search is not None else warning


def test_the_report_advice_follows_the_search():
    assert dead_arm(_dead_baseline(None)) is DID_NOT_LEARN["baseline-did-not-learn"]
    assert dead_arm(_dead_baseline({"learned": True, "epochs": 3, "chosen": 0.01})) is SEARCHED_BASELINE["searched"]
    none_learned = dead_arm(_dead_baseline({"learned": False, "epochs": 3, "chosen": 0.01}))
    assert none_learned is SEARCHED_BASELINE["no-rate-learned"] and "--scratch-lr auto" not in none_learned.command
    verdict = {"verdict": "positive", "gap": 0.5, "ci95": [0.4, 0.6], "warnings": [_dead_baseline({"learned": False, "epochs": 3,
                                                                                                  "chosen": 0.01})]}
    first = recommend(Facts(arms=["transfer", "scratch"], verdict=verdict))[0]
    assert first.kind == "warning" and first.command == "--scratch-epochs N" and "found no learning rate" in first.advice
    assert first.evidence[-1] == "learning-rate search (3 epochs per rate): no rate tried learned; chosen 0.01"


@pytest.mark.parametrize("code", ["baseline-did-not-learn", "transfer-did-not-learn"])
def test_every_code_has_a_remedy(code):
    assert health.remedy(code, {"epochs": 2}, None)
