"""Several runs side by side: which transferred best, whether the differences are real, and whether
the transferability scores predicted what was measured.

One row per run directory, computed from the files each run already holds (nothing is trained or
analysed here). Each run is scored by its task's headline test metric (its descriptor's: accuracy, a
detector's mAP@[.5:.95]) with the task's first other metric beside it (macro F1; AP50); runs of different
tasks are not compared. Between runs, the transfer arms are compared pair by pair (:mod:`.pairing`): with the
verdict's paired seeds x examples statistic where two runs share the test split and seeds, else with
Welch's t-test over per-seed scores, which each such pair says; Holm-corrected over all pairs. Each
transferability score is checked against the measured outcome with Kendall's tau, which needs only the
ranking and so suits scores on arbitrary scales.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import InputError
from ..rundir import (
    RunDir,
    read_data,
    read_document,
    write_csv,
    write_json,
)
from ..rundir.conform import conform
from ..rundir.documents import Shift, Transferability, Verdict
from ..sweeps import arm_settings, transfer_arms
from ..tasks.descriptor import TaskDescriptor, describe_task
from . import fmt, plots
from .html import Report, jinja_env, stamp
from .interpret import ALPHA
from .pairing import ARM, Side, arm_scores, compare_pairs, read_side
from .recommend import DID_NOT_LEARN, did_not_learn_warnings
from .sections.common import config_value, model_name, run_config
from .sections.transferability import score_titles

MIN_RUNS_FOR_TAU = 3
#: Kendall's tau's p-value is given from this many runs up: with fewer, even a perfect order has an exact two-sided
#: p of at least 2/4! = 0.083, so it can never be significant at 0.05 and says nothing about how good the scores are.
MIN_RUNS_FOR_P = 5
COLUMNS = ["name", "path", "model", "strategy", "shots", "seeds", "metric",
           "transfer_mean", "transfer_ci_low", "transfer_ci_high",
           "scratch_mean", "scratch_ci_low", "scratch_ci_high", "second_metric",
           "transfer_second_mean", "transfer_second_ci_low", "transfer_second_ci_high",
           "scratch_second_mean", "scratch_second_ci_low", "scratch_second_ci_high",
           "gap", "gap_ci_low", "gap_ci_high", "verdict", "p_value", "not_evidence",
           "mmd_p", "proxy_a_distance"]
"""The CSV's columns before the scores, which are the task's (its descriptor's ``scores``)."""


def t_interval(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean and 95% Student-t interval over seeds; no interval from a single seed."""
    if not values:
        return None, None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return mean, float(mean - half), float(mean + half)


def _arm_columns(rd: RunDir, key: str, prefix: str = "") -> dict:
    """Each arm's mean of ``key`` over seeds with its t-interval, as the row's ``<arm>_<prefix>mean``, ``..ci_low``, ``..ci_high``."""
    out = {}
    for arm in ("transfer", "scratch"):
        mean, low, high = t_interval(arm_scores(rd, arm, key))
        out.update({f"{arm}_{prefix}mean": mean, f"{arm}_{prefix}ci_low": low, f"{arm}_{prefix}ci_high": high})
    return out


def _model(config: dict) -> str | None:
    """The model's name, with the backbone it was built on where the run names one (a detector on --backbone)."""
    name, backbone = model_name(config), config_value(config, "backbone")
    return f"{name} on {backbone}" if name and backbone else name


def _names(roots: list[Path]) -> list[str]:
    """Folder names, with the parent folder added where two runs share a name."""
    names = [r.name for r in roots]
    names = [f"{r.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in roots]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def _row(rd: RunDir, name: str, terms: TaskDescriptor, predicted: dict | None = None, arm: str = ARM) -> tuple[dict, Side]:
    """One run's row, or one transfer ``arm``'s of a sweep (its own verdict against the shared scratch arm)."""
    run = rd.check()
    data = read_data(rd)
    config = run_config(run)
    side = read_side(rd, name, terms.metric, arm)
    transfer, scratch = side.scores, arm_scores(rd, "scratch", terms.metric)
    if not transfer and not scratch:
        raise InputError(f"{rd.root}: no finished transfer or scratch seed to compare; run 'xferdiag finetune' first")
    verdict = read_document(rd.verdict_json, Verdict) or {}
    if arm != ARM:
        own = (verdict.get("verdicts") or {}).get(arm)
        verdict = conform(own, Verdict) if isinstance(own, dict) else {}
        config = {**config, **arm_settings(config)[arm]}
    shift = read_document(rd.shift_json, Shift) or {}
    scores = predicted if predicted is not None else (read_document(rd.transferability_json, Transferability) or {}).get("scores") or {}
    ci = verdict["ci95"] if verdict and len(verdict["ci95"]) == 2 else [None, None]
    second = terms.columns[0][0]
    row = {
        "name": name, "path": str(rd.root), "model": _model(config),
        "strategy": None if config_value(config, "strategy") is None else str(config_value(config, "strategy")),
        "shots": data.get("shots") if data.get("shots") is not None else "all", "seeds": len(transfer),
        "metric": terms.metric, **_arm_columns(rd, terms.metric), "second_metric": second, **_arm_columns(rd, second, "second_"),
        "gap": fmt.as_number(verdict.get("gap")), "gap_ci_low": fmt.as_number(ci[0]), "gap_ci_high": fmt.as_number(ci[1]),
        "verdict": verdict.get("verdict") if verdict else ("no baseline" if not scratch else None),
        "p_value": fmt.as_number(verdict.get("p_value")),
        "not_evidence": "; ".join(f"{DID_NOT_LEARN[w['code']].who} did not learn" for w in did_not_learn_warnings(verdict))
                        or None,
        "has_source": config_value(config, "source_data") is not None,
        "analyzable": terms.supports("analyze"), "task": config_value(config, "task"),
        "mmd_p": fmt.as_number((shift.get("mmd") or {}).get("p_value")),
        "proxy_a_distance": fmt.as_number((shift.get("proxy_a_distance") or {}).get("value")),
        **{k: fmt.as_number(scores.get(k)) for k in terms.scores},
    }
    return row, side


def _collect(run_dirs, scores: dict | None = None) -> tuple[list[dict], list[Side]]:
    """The rows and each run's transfer arm for the pairwise tests; ``scores`` (by resolved run path) stand in for
    the runs' own transferability scores where given (``rank --then-finetune``: the scores rank predicted with)."""
    roots = [Path(p).resolve() for p in run_dirs]
    if not roots:
        raise InputError("run_dirs: give at least one run directory to compare")
    rows, sides = [], []
    for root, name in zip(roots, _names(roots)):
        task = config_value(run_config(RunDir(root).check()), "task")
        terms = describe_task(task)
        if not terms.supports("compare"):
            raise InputError(f"{root}: compare is {terms.not_yet(task)}; 'xferdiag report' renders each run")
        if rows and terms != describe_task(rows[0]["task"]):
            raise InputError(f"{root}: its {terms.label} cannot be compared with the {describe_task(rows[0]['task']).label} "
                             f"of {rows[0]['path']}; compare runs of one task")
        arms = transfer_arms(run_config(RunDir(root).check()))  # a sweep: one row per transfer arm
        for arm in arms:
            label = name if len(arms) == 1 else f"{name}:{arm}"
            row, side = _row(RunDir(root), label, terms, None if scores is None else scores.get(str(root), {}), arm)
            rows.append(row)
            sides.append(side)
    return rows, sides


def compare_table(run_dirs) -> list[dict]:
    """One row per run: setup, each arm's headline metric and the one beside it with 95% t-intervals, gap, verdict,
    shift, scores."""
    return _collect(run_dirs)[0]


def kendall(rows: list[dict], measure: str | None = None, scores: tuple[str, ...] | None = None) -> tuple[str, list[dict]]:
    """Kendall's tau between each score (by default a classification run's, else the task's ``scores``) and ``measure``:
    by default the measured gap (or transfer accuracy when a gap is missing); its p-value from :data:`MIN_RUNS_FOR_P`
    runs up."""
    measure = measure or ("gap" if all(r["gap"] is not None for r in rows) else "transfer_mean")
    results = []
    for key, title in score_titles(scores or describe_task(None).scores).items():
        points = [(r[key], r[measure], r["name"]) for r in rows if r[key] is not None and r[measure] is not None]
        tau = p = None
        if len(points) < MIN_RUNS_FOR_TAU:
            note = f"needs ≥ {MIN_RUNS_FOR_TAU} runs with this score (has {len(points)})"
        else:
            result = stats.kendalltau([x for x, _, _ in points], [y for _, y, _ in points])
            tau, p = fmt.as_number(result.statistic), fmt.as_number(result.pvalue) if len(points) >= MIN_RUNS_FOR_P else None
            note = (None if tau is not None and p is not None else
                    "undefined: the score or the outcome is the same for every run" if tau is None else
                    f"p-value from {MIN_RUNS_FOR_P} runs up: with {len(points)}, even a perfect order is not significant")
        results.append({"score": key, "title": title, "n": len(points), "tau": tau, "p_value": p, "note": note,
                        "x": [x for x, _, _ in points], "y": [y for _, y, _ in points], "names": [n for _, _, n in points]})
    return measure, results


def _missing(rows: list[dict]) -> list[str]:
    missing = []
    for r in rows:
        where = shlex.quote(r["path"])
        if r["verdict"] in (None, "no baseline"):
            missing.append(f"{r['name']}: transfer-vs-scratch verdict (train the scratch baseline, then run "
                           f"'xferdiag report {where}')")
        if not r["analyzable"]:
            missing.append(f"{r['name']}: domain shift and transferability scores "
                           f"({describe_task(r['task']).not_yet(r['task'] or 'classification')})")
            continue
        terms = describe_task(r["task"])
        if r["mmd_p"] is None and r["proxy_a_distance"] is None:
            missing.append(f"{r['name']}: domain shift (run 'xferdiag analyze {where}')" if r["has_source"] or "shift" in terms.analyses
                           else f"{r['name']}: domain shift (the run names no source data: give --source-data to 'xferdiag "
                           "finetune' or 'audit')")
        if all(r[k] is None for k in terms.scores):
            how = f"run 'xferdiag analyze {where}'" if "transferability" in terms.analyses else terms.not_yet(r["task"])
            missing.append(f"{r['name']}: transferability scores ({how})")
    return missing


def _charts(rows: list[dict], scatter: list[dict], measure: str, terms: TaskDescriptor) -> dict:
    names = [r["name"] for r in rows]

    def interval(r: dict, arm: str):
        lo, hi = r[f"{arm}_ci_low"], r[f"{arm}_ci_high"]
        return (lo, hi) if lo is not None else None

    charts = {"forest": None, "accuracy": None, "scatter": None}
    if any(r["gap"] is not None for r in rows):
        charts["forest"] = plots.gap_forest(
            names, [r["gap"] for r in rows],
            [(r["gap_ci_low"], r["gap_ci_high"]) if r["gap_ci_low"] is not None else None for r in rows],
            [r["verdict"] for r in rows], terms.label)
    arms = {arm: [(r[f"{arm}_mean"], interval(r, arm)) for r in rows]
            for arm in ("transfer", "scratch") if any(r[f"{arm}_mean"] is not None for r in rows)}
    charts["accuracy"] = plots.arm_accuracy(names, arms, terms.label)
    if scatter:
        label = "measured gap (points)" if measure == "gap" else f"transfer {terms.label} (%)"
        charts["scatter"] = plots.score_scatter(scatter, label)
    return charts


def compare_runs(run_dirs, *, scores: dict | None = None, measure: str | None = None) -> dict:
    """The comparison's numbers (what compare's JSON export holds, with the charts' points): rows, pairwise tests,
    the measure the scores are checked against and Kendall's tau per score (see :func:`_collect`, :func:`kendall`)."""
    rows, sides = _collect(run_dirs, scores)
    terms = describe_task(rows[0]["task"])
    measure, taus = kendall(rows, measure, terms.scores)
    return {"runs": rows, "pairwise": compare_pairs(sides), "measure": measure, "kendall": taus,
            "orders": orders(rows, terms.scores, measure)}


def _ranks(rows: list[dict], key: str) -> list[int | None]:
    """Each row's place by ``key``, highest first (1 = best; ties share the better place); None without a value."""
    values = [r[key] for r in rows]
    return [None if v is None else 1 + sum(w is not None and w > v for w in values) for v in values]


def orders(rows: list[dict], scores: tuple[str, ...], measure: str) -> dict:
    """Predicted beside measured order, any number of runs: per run its place by each transferability score and by each
    measured outcome (the transfer arm's headline and second metric, and ``measure`` when it is another), 1 = best."""
    measured = list(dict.fromkeys(["transfer_mean", "transfer_second_mean", measure]))
    places = {key: _ranks(rows, key) for key in (*scores, *measured)}
    return {"scores": list(scores), "measured": measured,
            "runs": [{"name": r["name"], **{key: places[key][i] for key in places}} for i, r in enumerate(rows)]}


def render_compare(run_dirs, out: str | Path, comparison: dict | None = None) -> Report:
    """Render the comparison of ``run_dirs`` (or the one already computed, ``comparison``) to ``out`` (HTML) with
    ``out``.csv and ``out``.json beside it."""
    out = Path(out)
    if out.suffix.lower() in (".csv", ".json"):
        raise InputError(f"out: {out} would clash with the CSV/JSON exports written beside it; give an .html file")
    comparison = comparison or compare_runs(run_dirs)
    rows, pairs, measure, taus = (comparison[k] for k in ("runs", "pairwise", "measure", "kendall"))
    terms = describe_task(rows[0]["task"])
    scores = score_titles(terms.scores)
    order = comparison.get("orders") or orders(rows, terms.scores, measure)
    enough = len(rows) >= MIN_RUNS_FOR_TAU
    scatter = [{"title": t["title"], "x": t["x"], "y": t["y"], "names": t["names"], "tau": t["tau"]}
               for t in taus if t["tau"] is not None] if enough else []
    missing = _missing(rows)
    html = jinja_env().get_template("compare.html").render(
        rows=rows, pairs=pairs, taus=taus, measure=measure, enough=enough, min_runs=MIN_RUNS_FOR_TAU, terms=terms,
        second=terms.columns[0][1], alpha=ALPHA, charts=_charts(rows, scatter, measure, terms), missing=missing, scores=scores,
        orders=order,
        title=f"Comparison of {len(rows)} run{'s' if len(rows) != 1 else ''}", **stamp())
    export = {"runs": rows, "pairwise": pairs, "measure": measure, "orders": order,
              "kendall": [{k: v for k, v in t.items() if k not in ("x", "y", "names")} for t in taus]}
    columns = [*COLUMNS, *terms.scores]
    write_csv(out.with_suffix(".csv"), columns, [[r[c] for c in columns] for r in rows])
    write_json(out.with_suffix(".json"), export)
    report = Report(html, missing)
    report.save(out)
    return report
