"""``verdict``: the paired transfer-vs-scratch verdict of a run directory, written to verdict.json.

Each seed is read through the run directory's typed readers; the numbers go to the pure
statistics of :mod:`xferdiag.negative` and the learning checks of :mod:`xferdiag.health`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .. import health, rundir
from ..errors import RunDirError
from ..negative import ALPHA, check_alpha, paired_metric_verdict, paired_verdict
from ..rundir.layout import METRICS_JSON, finished_seeds_glob
from ..sequential import MIN_EFFECT, check_min_effect, look_alpha, plan_for_tables

ROLES = ("transfer-did-not-learn", "baseline-did-not-learn")  # warning codes of arm A and arm B


@dataclass(frozen=True)
class _Tested:
    """One arm at one seed as the verdict reads it: test predictions, metrics.json and its macro-F1."""

    folder: rundir.SeedDir
    predictions: rundir.Predictions
    metrics: dict
    macro_f1: float

    @property
    def correct(self) -> np.ndarray:
        return self.predictions.predictions == self.predictions.labels


def _paired_seeds(run: rundir.RunDir, arm_a: str, arm_b: str) -> list[int]:
    seeds_a, seeds_b = run.seeds(arm_a), run.seeds(arm_b)
    for arm, seeds in ((arm_b, seeds_b), (arm_a, seeds_a)):
        if not seeds:
            hint = ("run 'xferdiag finetune --baseline scratch' with the same data and seeds to train it"
                    if arm == "scratch" else "train that arm first, or name another with arm_a/arm_b")
            raise RunDirError(f"{run.root}: no finished runs for arm '{arm}' ({finished_seeds_glob(arm)}); {hint}")
    if seeds_a != seeds_b:
        raise RunDirError(
            f"{run.root}: arms '{arm_a}' and '{arm_b}' have different seeds ({seeds_a} vs {seeds_b}); "
            "the verdict pairs runs by seed, so finish or remove the unmatched seeds"
        )
    return seeds_a


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read(folder: rundir.SeedDir, predictions: rundir.Predictions) -> _Tested:
    metrics = rundir.read_metrics(folder)
    test = metrics.get("test")
    value = test.get("macro_f1") if isinstance(test, dict) else None
    if not _is_number(value):
        raise RunDirError(f"{folder.metrics_json}: no numeric test.macro_f1; rerun the evaluation that writes {METRICS_JSON}")
    return _Tested(folder, predictions, metrics, float(value))


def _read_pairs(run: rundir.RunDir, seeds: list[int], arms: tuple[str, str]) -> dict[str, list[_Tested]]:
    """Every seed of both arms, checked to be tested on the same examples across arms and seeds."""
    tested = {arm: [] for arm in arms}
    reference = None
    for seed in seeds:
        pair = {arm: rundir.read_predictions(run.seed(arm, seed)) for arm in arms}
        labels = pair[arms[0]].labels
        if not np.array_equal(labels, pair[arms[1]].labels):
            raise RunDirError(
                f"{run.root}: arms '{arms[0]}' and '{arms[1]}' were tested on different examples at seed {seed} "
                "(labels differ); evaluate both arms on the same test split"
            )
        if reference is None:
            reference = (seed, labels)
        elif not np.array_equal(labels, reference[1]):
            raise RunDirError(
                f"{run.root}: seed {seed} was tested on different examples than seed {reference[0]} (labels differ); "
                "every seed must use the same test split so examples pair across seeds"
            )
        for arm, predictions in pair.items():
            tested[arm].append(_read(run.seed(arm, seed), predictions))
    return tested


def _finite(column: np.ndarray | None) -> list[float] | None:
    return [float(v) for v in column if math.isfinite(v)] or None if column is not None else None


def _curves(tested: _Tested) -> tuple[list[float] | None, list[float] | None]:
    """Per-epoch validation accuracy and training loss from history.csv. Without one (a model
    trained elsewhere) the validation accuracy in metrics.json stands in and the loss is unknown."""
    if not tested.folder.history_csv.is_file():
        val = tested.metrics.get("val")
        accuracy = val.get("accuracy") if isinstance(val, dict) else None
        return ([float(accuracy)] if _is_number(accuracy) else None), None
    history = rundir.read_history(tested.folder)
    return _finite(history.get("val_accuracy")), _finite(history.get("train_loss"))


def _chance(run: rundir.RunDir, test_labels: np.ndarray) -> health.Chance:
    """Chance levels from data.json's class counts; where a run directory does not record them, the
    test labels' class shares stand in (xferdiag's splits are stratified, so they match)."""
    data = rundir.read_data(run) if run.data_json.is_file() else {}
    counts = data.get("class_counts") if isinstance(data.get("class_counts"), dict) else {}
    val_size = ((data.get("splits") or {}).get("target") or {}).get("val")
    test_counts = np.bincount(test_labels)
    return health.Chance(
        val_accuracy=health.majority_share(counts.get("val", test_counts)),
        val_size=val_size if isinstance(val_size, int) and not isinstance(val_size, bool) else None,
        train_loss=health.constant_loss(counts.get("train", test_counts)),
    )


def _learning_warnings(chance: health.Chance, seeds: list[int], tested: dict[str, list[_Tested]]) -> list[dict]:
    """Did each arm learn? (see :mod:`xferdiag.health`); one warning per arm that did not, coded by its role."""
    warnings = []
    for (arm, runs), code in zip(tested.items(), ROLES):
        checks = [health.seed_health(seed, chance, *_curves(t), t.predictions.labels, t.predictions.predictions)
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


def _baselines(run: rundir.RunDir, per_seed: list[dict], arm: str) -> dict | None:
    """baselines.json's scores beside ``arm`` seed by seed (text runs: TF-IDF + logistic regression)."""
    if not run.baselines_json.is_file():
        return None
    out = {}
    for name, record in rundir.read_json(run.baselines_json).items():
        by_seed = {row["seed"]: row["accuracy"] for row in record.get("per_seed", [])}
        rows = [{"seed": s["seed"], name: by_seed[s["seed"]], arm: s[arm], "gap": s[arm] - by_seed[s["seed"]]}
                for s in per_seed if s["seed"] in by_seed]
        out[name] = {"accuracy": record.get("accuracy"), "macro_f1": record.get("macro_f1"), "per_seed": rows,
                     f"{arm}_minus_baseline": float(np.mean([r["gap"] for r in rows])) if rows else None}
    return out


def _earlier_looks(run: rundir.RunDir, seeds: list[int], arms: list[str]) -> list[dict]:
    """The looks made before this one: those of the verdict.json on disk when it was made on fewer of these
    seeds (the run was extended since); a verdict made on these very seeds is this look, computed again."""
    try:
        previous = rundir.read_json(run.verdict_json) if run.verdict_json.is_file() else {}
    except RunDirError:
        return []
    old = previous.get("seeds")
    if not isinstance(old, list) or previous.get("arms", arms) != arms or not set(old) <= set(seeds):
        return []
    looks = previous.get("looks") or [{"look": 1, "seeds": len(old), "alpha": previous.get("alpha")}]  # made before looks were kept
    return looks[:-1] if old == seeds else looks


def _look(number: int, acc, alpha: float) -> dict:
    """One look: how many seeds it saw, its level and its boundary (the |gap| it needed: the half-width)."""
    low, high = acc.ci95
    boundary = max(acc.gap - low, high - acc.gap)
    return {"look": number, "seeds": acc.n_seeds, "n_test": acc.n_test, "alpha": alpha,
            "boundary": boundary if math.isfinite(boundary) else None, "gap": acc.gap, "verdict": acc.verdict}


def _plan(correct: list[np.ndarray], min_effect: float, nominal: float, look: int) -> dict | None:
    """What would decide an inconclusive verdict (see :mod:`xferdiag.sequential`); None where it needs
    seed variation or test examples that one seed or one example cannot show."""
    if min(correct[0].shape) < 2:
        return None
    return plan_for_tables(*correct, min_effect=min_effect, alpha_now=look_alpha(look, nominal),
                           alpha_next=look_alpha(look + 1, nominal)).to_dict()


def verdict_for_run(run_dir: str | os.PathLike, arm_a: str = "transfer", arm_b: str = "scratch",
                    alpha: float = ALPHA, min_effect: float | None = None) -> dict:
    """Compare two arms of a run directory seed by seed; write and return ``verdict.json``.

    Accuracy comes from ``predictions.npz`` (per-example correctness, so test-set noise is
    counted); macro-F1 from each seed's ``metrics.json`` (per-seed values only). ``warnings`` says
    when an arm did not learn (then the gap is no evidence about transfer) and ``budgets`` what
    each arm was given (metrics.json's ``budget``), so a reader sees whether the comparison was fair.

    A run extended by seeds since its last verdict is looked at again: ``looks`` lists every look and
    this one is made at the later looks' level (:func:`~xferdiag.sequential.look_alpha`). An
    inconclusive verdict carries ``plan``: the seeds or test examples that would likely decide a gap of
    ``min_effect`` (default: the run's config, else 3 points).
    """
    run = rundir.RunDir(run_dir)
    config = run.check().get("config") or {}
    min_effect = check_min_effect(min_effect if min_effect is not None else config.get("min_effect", MIN_EFFECT))
    seeds = _paired_seeds(run, arm_a, arm_b)
    looks = _earlier_looks(run, seeds, [arm_a, arm_b])
    nominal = check_alpha(alpha)
    alpha = look_alpha(len(looks) + 1, nominal)
    tested = _read_pairs(run, seeds, (arm_a, arm_b))
    correct = {arm: np.array([t.correct for t in runs]) for arm, runs in tested.items()}
    acc = paired_verdict(correct[arm_a], correct[arm_b], alpha)
    looks.append(_look(len(looks) + 1, acc, alpha))
    note = acc.note if len(seeds) > 1 else f"{acc.note}; macro-F1 has no interval with one seed"
    result = {
        **{key: value for key, value in acc.to_dict().items() if key not in ("per_seed", "note")},
        "metric": "accuracy",
        "arms": [arm_a, arm_b],
        "seeds": seeds,
        "macro_f1": _macro_f1(*([t.macro_f1 for t in tested[arm]] for arm in (arm_a, arm_b)), alpha),
        "per_seed": [
            {"seed": seed, arm_a: float(np.mean(ca)), arm_b: float(np.mean(cb)), "gap": gap}
            for seed, ca, cb, gap in zip(seeds, correct[arm_a], correct[arm_b], acc.per_seed)
        ],
        "note": note,
        "budgets": {arm: runs[0].metrics["budget"] if isinstance(runs[0].metrics.get("budget"), dict) else None
                    for arm, runs in tested.items()},
        "warnings": _learning_warnings(_chance(run, tested[arm_a][0].predictions.labels), seeds, tested),
        "min_effect": min_effect,
        "looks": looks,
    }
    if acc.verdict == "inconclusive":
        result["plan"] = _plan([correct[arm_a], correct[arm_b]], min_effect, nominal, len(looks))
    baselines = _baselines(run, result["per_seed"], arm_a)
    if baselines:
        result["baselines"] = baselines
    rundir.write_json(run.verdict_json, result)
    return result
