"""Did an arm learn? The health rules on hand-made histories and predictions, and in verdict.json."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from xferdiag import health
from xferdiag.commands.verdict import verdict_for_run
from xferdiag.engine.lr_search import candidate_rates, search_lr
from xferdiag.errors import TrainingDivergedError
from xferdiag.rundir import write_csv, write_json, write_npz
from xferdiag.tasks.classification.task import ClassificationTask

CLASSES = 10
BALANCED = [14] * CLASSES  # 140 validation examples, chance 10%
CHANCE = health.Chance(val_accuracy=0.1, val_size=140, train_loss=math.log(CLASSES))
LABELS = np.arange(200) % CLASSES


def learned_predictions(accuracy: float = 0.8) -> np.ndarray:
    wrong = np.random.default_rng(0).random(LABELS.size) > accuracy
    return np.where(wrong, (LABELS + 1) % CLASSES, LABELS)


def dead(chance: health.Chance = CHANCE):
    """An arm stuck at chance: flat validation accuracy, flat loss, one class predicted."""
    return health.seed_health(0, chance, [0.1] * 10, [2.31, 2.30, 2.31] * 3, LABELS, np.full(LABELS.size, 3))


def learning(chance: health.Chance = CHANCE):
    return health.seed_health(0, chance, np.linspace(0.2, 0.8, 10), np.linspace(2.1, 0.4, 10), LABELS, learned_predictions())


def test_a_dead_arm_fails_every_check():
    check = dead()
    assert check.signals == ("val-at-chance", "flat-loss", "one-class")
    assert check.top_class_share == 1.0 and check.test_accuracy == pytest.approx(0.1)
    warning = health.did_not_learn("baseline-did-not-learn", "scratch", [check, dead()])
    assert warning["code"] == "baseline-did-not-learn" and warning["arm"] == "scratch"
    assert "did not learn in any of its 2 seeds" in warning["message"]
    assert "10.0%, not clearly above chance (10.0%" in warning["message"]
    assert "100% of test predictions in one class" in warning["message"]
    evidence = warning["evidence"]
    assert evidence["seeds_flagged"] == [0, 0] and evidence["seeds"] == 2 and evidence["test_chance"] == pytest.approx(0.1)
    seed = evidence["per_seed"][0]
    assert seed["best_val_accuracy"] == 0.1 and seed["val_chance"] == 0.1 and seed["top_class_share"] == 1.0
    assert seed["loss_decrease"] == pytest.approx(1 - 2.30 / math.log(10))
    assert seed["signals"] == ["val-at-chance", "flat-loss", "one-class"]


def test_a_learning_arm_is_not_flagged():
    check = learning()
    assert check.signals == ()
    assert health.did_not_learn("transfer-did-not-learn", "transfer", [check]) is None


def test_one_dead_seed_among_three_is_named():
    warning = health.did_not_learn("baseline-did-not-learn", "scratch", [learning(), dead(), learning()])
    assert "1 of its 3 seeds" in warning["message"] and len(warning["evidence"]["per_seed"]) == 3


def test_a_tiny_validation_set_raises_no_false_alarm():
    tiny = health.Chance(val_accuracy=0.1, val_size=10, train_loss=math.log(CLASSES))
    assert health.needed_above_chance(10, 0.1) is None  # it would take 50% on 10 examples
    # 2 of 10 right at best, a slow start: the test could not tell this from luck, so it abstains
    check = health.seed_health(0, tiny, [0.1, 0.2, 0.2], [2.2, 1.9, 1.6], LABELS, learned_predictions(0.4))
    assert check.signals == () and check.val_needed is None


def test_the_loss_speaks_where_validation_cannot():
    tiny = health.Chance(val_accuracy=0.1, val_size=10, train_loss=math.log(CLASSES))
    check = health.seed_health(0, tiny, [0.2], [2.30, 2.29], LABELS, learned_predictions(0.3))
    assert check.signals == ("flat-loss",)


def test_validation_learning_overrides_a_slow_loss():
    """A linear probe on weak frozen features: significant validation accuracy, slowly falling loss."""
    check = health.seed_health(0, CHANCE, [0.12, 0.16, 0.19], [2.35, 2.25, 2.21], LABELS, learned_predictions(0.2))
    assert check.val_needed < 0.19 and check.loss_decrease < health.MIN_LOSS_DECREASE
    assert check.signals == ()


def test_one_class_needs_varied_labels_and_enough_examples():
    one_label = np.zeros(50, dtype=np.int64)
    assert "one-class" not in health.seed_health(0, CHANCE, None, None, one_label, one_label).signals
    few = np.array([0] * 8 + [1] * 2)
    assert "one-class" not in health.seed_health(0, CHANCE, None, None, few, np.zeros(10, dtype=np.int64)).signals
    mostly = np.where(np.arange(LABELS.size) < 195, 4, LABELS)  # 97.5% one class
    assert health.seed_health(0, CHANCE, None, None, LABELS, mostly).signals == ("one-class",)


def test_chance_threshold_is_a_one_sided_binomial_test():
    for n, chance in ((140, 0.1), (300, 0.5), (50, 0.5)):
        needed = health.needed_above_chance(n, chance)
        k = round(needed * n)
        assert stats.binom.sf(k - 1, n, chance) <= health.CHANCE_ALPHA < stats.binom.sf(k - 2, n, chance)
    assert health.needed_above_chance(30, 0.5) is None  # 23 of 30 needed: more than 20 points above chance


def test_chance_levels_from_counts():
    assert health.majority_share([30, 10]) == 0.75 and health.majority_share([0, 0]) is None
    assert health.constant_loss([5] * 4) == pytest.approx(math.log(4))
    assert health.constant_loss([10, 0]) == 0.0


# --- in verdict.json -----------------------------------------------------------------------------


def write_arm(root, arm: str, seed: int, predictions: np.ndarray, val_accuracy, train_loss, budget=None) -> None:
    folder = root / "arms" / arm / f"seed-{seed}"
    write_npz(folder / "predictions.npz", labels=LABELS, predictions=predictions)
    write_csv(folder / "history.csv", ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"],
              [[e + 1, loss, loss, acc, 1e-3, 0.1] for e, (loss, acc) in enumerate(zip(train_loss, val_accuracy))])
    metrics = {"test": {"accuracy": float(np.mean(predictions == LABELS)), "macro_f1": 0.5, "loss": 1.0}}
    write_json(folder / "metrics.json", {**metrics, **({"budget": budget} if budget else {})})


def write_pair(root, scratch_dead: bool, data_json: bool = True):
    write_json(root / "run.json", {"schema": 1})
    if data_json:
        write_json(root / "data.json", {"classes": [str(c) for c in range(CLASSES)],
                                        "splits": {"target": {"train": 50, "val": 140, "test": LABELS.size}},
                                        "class_counts": {"train": [5] * CLASSES, "val": BALANCED, "test": [20] * CLASSES}})
    for seed in range(2):
        write_arm(root, "transfer", seed, learned_predictions(0.9), [0.5, 0.9], [1.5, 0.3], {"epochs": 2, "lr": 1e-3})
        if scratch_dead:
            write_arm(root, "scratch", seed, np.full(LABELS.size, 7), [0.1, 0.1], [2.31, 2.31], {"epochs": 4, "lr": 1e-7})
        else:
            write_arm(root, "scratch", seed, learned_predictions(0.7), [0.4, 0.7], [1.9, 0.8], {"epochs": 4, "lr": 1e-3})
    return root


def test_verdict_warns_when_the_baseline_did_not_learn(tmp_path):
    verdict = verdict_for_run(write_pair(tmp_path, scratch_dead=True))
    [warning] = verdict["warnings"]
    assert warning["code"] == "baseline-did-not-learn" and warning["arm"] == "scratch"
    assert warning["evidence"]["seeds_flagged"] == [0, 1]
    assert verdict["budgets"] == {"transfer": {"epochs": 2, "lr": 1e-3}, "scratch": {"epochs": 4, "lr": 1e-7}}


@pytest.mark.parametrize("data_json", [True, False])
def test_healthy_arms_get_an_empty_warnings_list(tmp_path, data_json):
    """Without data.json (a hand-written run) the test labels stand in for the chance levels."""
    verdict = verdict_for_run(write_pair(tmp_path, scratch_dead=False, data_json=data_json))
    assert verdict["warnings"] == [] and verdict["verdict"] == "positive"


# --- the scratch learning-rate search ----------------------------------------------------------------


def test_candidate_rates_are_log_spaced_around_lr_and_clipped():
    assert candidate_rates(1e-3) == [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    assert candidate_rates(0.5) == [0.05, 0.15, 0.5, 1.0]


def test_search_picks_best_accuracy_then_lower_loss_and_survives_divergence():
    results = {1e-4: (0.5, 1.0), 3e-4: (0.8, 0.7), 1e-3: (0.8, 0.6), 3e-3: (0.2, 2.0)}

    def train(lr):
        if lr not in results:
            raise TrainingDivergedError("diverged")
        accuracy, loss = results[lr]
        return {"accuracy": accuracy, "loss": loss}

    record = search_lr([1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 3, train, ClassificationTask())
    assert record["chosen"] == 1e-3 and record["epochs"] == 3 and record["split"] == "val"
    assert [c["diverged"] for c in record["candidates"]] == [False] * 4 + [True]
    assert record["candidates"][1] == {"lr": 3e-4, "val_accuracy": 0.8, "val_loss": 0.7, "diverged": False, "learned": None}
    assert record["candidates"][4] == {"lr": 1e-2, "val_accuracy": None, "val_loss": None, "diverged": True, "learned": None}
    assert record["learned"] is None  # no judgement given: unknown
    with pytest.raises(TrainingDivergedError, match="every rate"):
        search_lr([1e-2], 3, train, ClassificationTask())
