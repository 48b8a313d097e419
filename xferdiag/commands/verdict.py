"""``verdict``: the paired transfer-vs-scratch verdict of a run directory, written to verdict.json.

The command pairs the arms' seeds, reads each through the run directory's typed readers and hands them to
the run's task, which judges them (classification: per-example correctness; detection: mAP with a paired
image bootstrap) with the shared statistics of :mod:`xferdiag.negative`; what stays here is the same for
every task: the looks of an extended run, the plan of an inconclusive verdict, budgets and the file.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .. import health, rundir, sweeps
from ..catchup import CATCH_UP_MARGIN, catch_up
from ..errors import RunDirError
from ..negative import ALPHA, check_alpha
from ..pairwise import compare_arms
from ..rundir.evidence import run_records, seed_evidence
from ..rundir.layout import finished_seeds_glob
from ..sequential import MIN_EFFECT, check_min_effect, look_alpha, plan
from ..tasks.registry import task_named


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


def _earlier_looks(previous: dict, seeds: list[int], arms: list[str]) -> list[dict]:
    """The looks made before this one: those of the verdict on disk (``previous``) when it was made on fewer of
    these seeds (the run was extended since); a verdict made on these very seeds is this look, computed again."""
    old = previous.get("seeds")
    if not isinstance(old, list) or previous.get("arms", arms) != arms or not set(old) <= set(seeds):
        return []
    looks = previous.get("looks") or [{"look": 1, "seeds": len(old), "alpha": previous.get("alpha")}]  # made before looks were kept
    return looks[:-1] if old == seeds else looks


def _previous(run: rundir.RunDir) -> dict:
    """The verdict.json on disk (empty when there is none or it cannot be read): its looks continue."""
    try:
        previous = rundir.read_json(run.verdict_json) if run.verdict_json.is_file() else {}
    except RunDirError:
        return {}
    return previous if isinstance(previous, dict) else {}


def _budget(metrics: dict) -> dict | None:
    """What an arm was given (metrics.json's ``budget``), so a reader sees whether the comparison was fair."""
    return metrics["budget"] if isinstance(metrics.get("budget"), dict) else None


def _look(number: int, acc, alpha: float) -> dict:
    """One look: how many seeds it saw, its level and its boundary (the |gap| it needed: the half-width)."""
    low, high = acc.ci95
    boundary = max(acc.gap - low, high - acc.gap)
    return {"look": number, "seeds": acc.n_seeds, "n_test": acc.n_test, "alpha": alpha,
            "boundary": boundary if math.isfinite(boundary) else None, "gap": acc.gap, "verdict": acc.verdict}


def _plan(components: tuple[float, float, float] | None, n_seeds: int, n_test: int | None, min_effect: float,
          nominal: float, look: int) -> dict | None:
    """What would decide an inconclusive verdict (see :mod:`xferdiag.sequential`); None where it needs
    seed variation or test examples that one seed or one example cannot show."""
    if components is None or not n_test or n_test < 2:
        return None
    return plan(*components, n_seeds, n_test, min_effect=min_effect, alpha_now=look_alpha(look, nominal),
                alpha_next=look_alpha(look + 1, nominal)).to_dict()


def with_remedy(warning: dict, config: dict, search: dict | None) -> dict:
    """A did-not-learn warning with what would help (:func:`xferdiag.health.remedy`) and, for the scratch arm of a
    run that searched its rate, the search's outcome (``lr_search``: did any rate learn, in how many epochs)."""
    out = {**warning, "remedy": health.remedy(warning.get("code"), config, search)}
    if search and warning.get("code") == "baseline-did-not-learn":
        out["lr_search"] = {key: search.get(key) for key in ("learned", "epochs", "chosen")}
    return out


def verdict_for_run(run_dir: str | os.PathLike, arm_a: str | None = None, arm_b: str = sweeps.SCRATCH,
                    alpha: float = ALPHA, min_effect: float | None = None) -> dict:
    """Compare two arms of a run directory seed by seed; write and return ``verdict.json``.

    The run's task judges the seeds (classification: accuracy from ``predictions.npz``, macro-F1 beside it;
    detection: mAP from ``detections.json`` against ``test_annotations.json``). ``warnings`` says when an
    arm did not learn (then the gap is no evidence about transfer) and ``budgets`` what each arm was given
    (metrics.json's ``budget``), so a reader sees whether the comparison was fair.

    A run extended by seeds since its last verdict is looked at again: ``looks`` lists every look and
    this one is made at the later looks' level (:func:`~xferdiag.sequential.look_alpha`). An
    inconclusive verdict carries ``plan``: the seeds or test examples that would likely decide a gap of
    ``min_effect`` (default: the run's config, else 3 points).

    Without ``arm_a``, the run's transfer arms: a sweep (:mod:`xferdiag.sweeps`) judges every one of them against
    the shared ``arm_b`` (see :func:`_sweep_verdict`); otherwise the arm ``transfer``. A run made with
    ``--scratch-epochs auto`` adds ``catch_up``: the (first) transfer arm against the scratch arm at each budget.
    """
    run = rundir.RunDir(run_dir)
    meta = run.check()
    config = meta.get("config") or {}
    min_effect = check_min_effect(min_effect if min_effect is not None else config.get("min_effect", MIN_EFFECT))
    nominal = check_alpha(alpha)
    previous = _previous(run)
    arms = [arm_a] if arm_a is not None else sweeps.transfer_arms(config)
    if len(arms) == 1:
        result = _judge_pair(run, meta, arms[0], arm_b, nominal, min_effect, previous)
    else:
        result = _sweep_verdict(run, meta, arms, arm_b, nominal, min_effect, previous)
    if arm_a is None and arm_b == sweeps.SCRATCH and sweeps.catches_up(config):
        result["catch_up"] = _catch_up(run, config, arms[0], nominal)
    rundir.write_json(run.verdict_json, result)
    return result


def _judge(run: rundir.RunDir, config: dict, arm_a: str, arm_b: str, seeds: list[int], alpha: float):
    """The run's task's judgement of ``arm_a`` against ``arm_b`` on ``seeds`` at level ``alpha``, and the seeds' evidence."""
    task = task_named(config.get("task"))
    seeds_of = {arm: [seed_evidence(run.seed(arm, seed), task.descriptor.records) for seed in seeds] for arm in (arm_a, arm_b)}
    data = rundir.read_data(run) if run.data_json.is_file() else {}
    judged = task.judge(seeds_of[arm_a], seeds_of[arm_b], arms=(arm_a, arm_b), seeds=seeds, data=data,
                        run_records=run_records(run), alpha=alpha)
    return judged, seeds_of


def _catch_up(run: rundir.RunDir, config: dict, arm: str, nominal: float) -> dict:
    """verdict.json's ``catch_up`` (``--scratch-epochs auto``): ``arm`` against the scratch arm at each budget, by the
    verdict's paired statistic at ``nominal`` and, for TOST, its (1 - 2 alpha) interval (:mod:`xferdiag.catchup`)."""
    rows = []
    for scratch, multiple in sweeps.scratch_arms(config).items():
        seeds = _paired_seeds(run, arm, scratch)
        usual, seeds_of = _judge(run, config, arm, scratch, seeds, nominal)
        tost = _judge(run, config, arm, scratch, seeds, 2 * nominal)[0].verdict.to_dict()
        own = usual.verdict.to_dict()
        rows.append({"arm": scratch, "multiple": multiple, "budget": _budget(seeds_of[scratch][0]["metrics"]),
                     "gap": own["gap"], "ci95": own["ci95"], "p_value": own.get("p_value"), "verdict": own["verdict"],
                     "tost_interval": tost["ci95"]})
    return {"transfer_arm": arm, **catch_up(rows, config.get("catch_up_margin", CATCH_UP_MARGIN), nominal)}


def _judge_pair(run: rundir.RunDir, meta: dict, arm_a: str, arm_b: str, nominal: float, min_effect: float, previous: dict) -> dict:
    """The verdict of ``arm_a`` against ``arm_b`` (verdict.json's shape), continuing the looks of ``previous``."""
    config = meta.get("config") or {}
    seeds = _paired_seeds(run, arm_a, arm_b)
    looks = _earlier_looks(previous, seeds, [arm_a, arm_b])
    alpha = look_alpha(len(looks) + 1, nominal)
    judged, seeds_of = _judge(run, config, arm_a, arm_b, seeds, alpha)
    acc = judged.verdict
    looks.append(_look(len(looks) + 1, acc, alpha))
    result = {
        **{key: value for key, value in acc.to_dict().items() if key not in ("per_seed", "note")},
        "metric": judged.metric,
        "arms": [arm_a, arm_b],
        "seeds": seeds,
        **judged.extra,
        "per_seed": judged.per_seed,
        "note": judged.note,
        "budgets": {arm: _budget(runs[0]["metrics"]) for arm, runs in seeds_of.items()},
        "warnings": [with_remedy(w, config, meta.get("scratch_lr_search")) for w in judged.warnings],
        "min_effect": min_effect,
        "looks": looks,
    }
    if acc.verdict == "inconclusive":
        result["plan"] = _plan(judged.components, len(seeds), acc.n_test, min_effect, nominal, len(looks))
    baselines = _baselines(run, result["per_seed"], arm_a)
    if baselines:
        result["baselines"] = baselines
    return result


def _sweep_verdict(run: rundir.RunDir, meta: dict, arms: list[str], arm_b: str, nominal: float, min_effect: float,
                   previous: dict) -> dict:
    """A sweep's verdict.json: the first transfer arm's verdict at the top (what a reader of one verdict reads),
    ``verdicts`` with every transfer arm's own against the shared ``arm_b``, ``sweep`` (the swept setting, its
    values, the arms) and ``ranking`` (the arms by their gap, best first). Each verdict answers its own question
    (did this way of transferring help?) at the nominal level; which arm beats which is answered by ``pairs``:
    every pair of transfer arms on the same seeds and test examples, by the verdict's paired statistic,
    Holm-adjusted over the pairs (:func:`xferdiag.pairwise.compare_arms`)."""
    earlier = previous.get("verdicts") if isinstance(previous.get("verdicts"), dict) else {}
    verdicts = {arm: _judge_pair(run, meta, arm, arm_b, nominal, min_effect, earlier.get(arm) or {}) for arm in arms}
    ranking = sorted(arms, key=lambda arm: -verdicts[arm]["gap"])
    sweep, config = sweeps.sweep_of(meta.get("config") or {}), meta.get("config") or {}
    seeds = verdicts[arms[0]]["seeds"]  # every arm's seeds are the scratch arm's: _judge_pair checked each
    task = task_named(config.get("task"))
    evidence = {arm: [seed_evidence(run.seed(arm, seed), task.descriptor.records) for seed in seeds] for arm in arms}
    data = rundir.read_data(run) if run.data_json.is_file() else {}
    pairs = compare_arms(task, evidence, seeds=seeds, data=data, run_records=run_records(run), alpha=nominal)
    return {
        **verdicts[arms[0]],
        "sweep": {**sweep.to_dict(), "baseline": arm_b, "scratch_lr": (verdicts[arms[0]]["budgets"].get(arm_b) or {}).get("lr")},
        "verdicts": verdicts,
        "ranking": [{"rank": i + 1, "arm": arm, "gap": verdicts[arm]["gap"], "ci95": verdicts[arm]["ci95"],
                     "verdict": verdicts[arm]["verdict"], "warnings": [w.get("code") for w in verdicts[arm]["warnings"]]}
                    for i, arm in enumerate(ranking)],
        "pairs": [pair.to_dict() for pair in pairs],
    }
