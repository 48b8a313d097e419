"""Classification's side of the verdict: per-example correctness of the two arms, seed by seed, into the
shared statistics of :mod:`xferdiag.negative`; macro-F1 beside accuracy; did each arm learn
(:mod:`xferdiag.health`)? Pure: the command reads the run directory and hands each seed over as
``{"name", "metrics", "history", "records"}``."""

from __future__ import annotations

import math

import numpy as np

from ... import health
from ...errors import RunDirError
from ...negative import paired_metric_verdict, paired_verdict, variance_components
from ..base import Judged

ROLES = ("transfer-did-not-learn", "baseline-did-not-learn")  # warning codes of arm A and arm B


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _predictions(seed: dict):
    if "predictions" not in seed["records"]:
        raise RunDirError(f"{seed['name']}: holds no per-example test predictions; a classification verdict needs them")
    return seed["records"]["predictions"]


def _macro_f1_of(seed: dict) -> float:
    test = seed["metrics"].get("test")
    value = test.get("macro_f1") if isinstance(test, dict) else None
    if not _is_number(value):
        raise RunDirError(f"{seed['name']}: its metrics have no numeric test.macro_f1; rerun the evaluation that writes them")
    return float(value)


def _check_same_examples(arms: tuple[str, str], seeds: list[int], a: list[dict], b: list[dict]) -> None:
    """Both arms and every seed were tested on the same examples, in the same order."""
    reference = None
    for seed, sa, sb in zip(seeds, a, b):
        labels = _predictions(sa).labels
        if not np.array_equal(labels, _predictions(sb).labels):
            raise RunDirError(f"arms '{arms[0]}' and '{arms[1]}' were tested on different examples at seed {seed} "
                              "(labels differ); evaluate both arms on the same test split")
        if reference is None:
            reference = (seed, labels)
        elif not np.array_equal(labels, reference[1]):
            raise RunDirError(f"seed {seed} was tested on different examples than seed {reference[0]} (labels differ); "
                              "every seed must use the same test split so examples pair across seeds")


def _finite(column: np.ndarray | None) -> list[float] | None:
    return [float(v) for v in column if math.isfinite(v)] or None if column is not None else None


def _curves(seed: dict) -> tuple[list[float] | None, list[float] | None]:
    """Per-epoch validation accuracy and training loss from the history. Without one (a model trained
    elsewhere) the validation accuracy in its metrics stands in and the loss is unknown."""
    if seed["history"] is None:
        val = seed["metrics"].get("val")
        accuracy = val.get("accuracy") if isinstance(val, dict) else None
        return ([float(accuracy)] if _is_number(accuracy) else None), None
    return _finite(seed["history"].get("val_accuracy")), _finite(seed["history"].get("train_loss"))


def _chance(data: dict, test_labels: np.ndarray) -> health.Chance:
    """Chance levels from data.json's class counts; where a run directory does not record them, the
    test labels' class shares stand in (xferdiag's splits are stratified, so they match)."""
    counts = data.get("class_counts") if isinstance(data.get("class_counts"), dict) else {}
    val_size = ((data.get("splits") or {}).get("target") or {}).get("val")
    test_counts = np.bincount(test_labels)
    return health.Chance(
        val_accuracy=health.majority_share(counts.get("val", test_counts)),
        val_size=val_size if isinstance(val_size, int) and not isinstance(val_size, bool) else None,
        train_loss=health.constant_loss(counts.get("train", test_counts)),
    )


def _learning_warnings(chance: health.Chance, seeds: list[int], tested: dict[str, list[dict]]) -> list[dict]:
    """Did each arm learn? (see :mod:`xferdiag.health`); one warning per arm that did not, coded by its role."""
    warnings = []
    for (arm, runs), code in zip(tested.items(), ROLES):
        checks = [health.seed_health(seed, chance, *_curves(t), _predictions(t).labels, _predictions(t).predictions)
                  for seed, t in zip(seeds, runs)]
        warning = health.did_not_learn(code, arm, checks)
        if warning is not None:
            warnings.append(warning)
    return warnings


def _macro_f1(f1_a: list[float], f1_b: list[float], alpha: float) -> dict:
    """The macro-F1 gap, with the paired t over seeds where there are two or more."""
    if len(f1_a) > 1:
        f1_verdict = paired_metric_verdict(f1_a, f1_b, alpha).to_dict()
        return {key: f1_verdict[key] for key in ("gap", "ci95", "p_value", "verdict", "method")}
    return {"gap": f1_a[0] - f1_b[0], "ci95": [None, None], "p_value": None, "verdict": None, "method": None}


def judge(a: list[dict], b: list[dict], *, arms: tuple[str, str], seeds: list[int], data: dict, run_records: dict,
          alpha: float) -> Judged:
    """Accuracy from per-example correctness (seeds x examples), macro-F1 beside it, and the learning checks."""
    _check_same_examples(arms, seeds, a, b)
    f1 = {arm: [_macro_f1_of(s) for s in runs] for arm, runs in zip(arms, (a, b))}
    correct = {arm: np.array([_predictions(s).predictions == _predictions(s).labels for s in runs]) for arm, runs in zip(arms, (a, b))}
    acc = paired_verdict(correct[arms[0]], correct[arms[1]], alpha)
    per_seed = [{"seed": seed, arms[0]: float(np.mean(ca)), arms[1]: float(np.mean(cb)), "gap": gap}
                for seed, ca, cb, gap in zip(seeds, correct[arms[0]], correct[arms[1]], acc.per_seed)]
    d = correct[arms[0]].astype(float) - correct[arms[1]].astype(float)
    components = tuple(float(v) for v in variance_components(d)) if min(d.shape) >= 2 else None
    note = acc.note if len(seeds) > 1 else f"{acc.note}; macro-F1 has no interval with one seed"
    warnings = _learning_warnings(_chance(data, _predictions(a[0]).labels), seeds, dict(zip(arms, (a, b))))
    return Judged(acc, "accuracy", per_seed, {"macro_f1": _macro_f1(f1[arms[0]], f1[arms[1]], alpha)}, warnings, components, note)
