"""The one-sentence answer at the top of the report, and its colour."""

from __future__ import annotations

import shlex

from ...rundir import RunDir
from ...rundir.documents import ArmBudget, BaselineScore, Verdict
from ...tasks.descriptor import TaskDescriptor
from .. import fmt
from ..interpret import ALPHA, catch_up_sentence, looks_sentence, plan_sentence, sweep_headline
from ..recommend import DID_NOT_LEARN, dead_arm, did_not_learn_warnings
from .common import Arm, mean, metric_of
from .sweep import is_sweep


def banner(verdict: Verdict | None, arms: dict[str, Arm], rd: RunDir, terms: TaskDescriptor) -> dict:
    """The verdict's answer (:func:`_answer`) and, after a catch-up sweep (``--scratch-epochs auto``), its budgets and outcome."""
    out = _answer(verdict, arms, rd, terms)
    catch_up = catch_up_sentence((verdict or {}).get("catch_up"))
    return {**out, "details": [catch_up, *out["details"]]} if catch_up else out


def _answer(verdict: Verdict | None, arms: dict[str, Arm], rd: RunDir, terms: TaskDescriptor) -> dict:
    """The verdict in one sentence; when an arm did not learn (verdict.json's warnings) the sentence
    says the gap is no evidence, in the "warning" colour."""
    means = {name: mean([metric_of(m, terms.metric) for m in arm["metrics"].values()]) for name, arm in arms.items()}
    summary = [f"{name}: {fmt.pct(v)} {terms.label} ({fmt.seeds_phrase(len(arms[name]['seeds']))})" for name, v in means.items()]
    if verdict is None:
        return _no_verdict(arms, rd, summary)
    if is_sweep(verdict):
        return _sweep_banner(verdict, terms, summary)
    kind = verdict["verdict"]  # one of rundir.VERDICTS: validate checked it
    metric_key = verdict.get("metric", "accuracy")
    metric = {terms.metric: terms.label, "macro_f1": "test macro F1"}.get(metric_key, f"test {metric_key}")
    n = len(verdict.get("seeds") or verdict.get("per_seed") or [])
    level = fmt.num(100 * (1 - (fmt.as_number(verdict.get("alpha")) or ALPHA)))
    stats = f"({level}% CI {fmt.ci_points(verdict.get('ci95'))}, {n} seed{'s' if n != 1 else ''})"
    gap = fmt.points(verdict.get("gap"))
    dead_arms = did_not_learn_warnings(verdict)
    if dead_arms:  # the gap is no evidence: the headline itself says so, the details say how to fix it
        headline = _not_evidence(kind, f"{gap} points of {metric} {stats}", dead_arms, terms)
        kind = "warning"
        details = [dead_arm(w).advice for w in dead_arms] + [str(w.get("message")) for w in dead_arms]
    else:
        headline = {
            "positive": f"Transfer helped: {gap} points of {metric} over training from scratch {stats}.",
            "negative": f"Transfer hurt: {gap} points of {metric} compared with training from scratch {stats}.",
            "inconclusive": f"Transfer cannot be told apart from training from scratch: {gap} points of {metric} {stats}.",
        }[kind]
        details = [line for line in (plan_sentence(verdict.get("plan"), shlex.quote(str(rd.root))),) if line]
    return {"kind": kind, "headline": headline, "details": details + _verdict_details(verdict) + summary}


def _sweep_banner(verdict: dict, terms: TaskDescriptor, summary: list[str]) -> dict:
    """A sweep's answer: how many transfer arms helped against the shared scratch arm, the best one's gap, one line
    per arm; an arm that did not learn turns it into the "warning" colour with what would help."""
    verdicts = verdict["verdicts"]
    ranking = [r for r in verdict.get("ranking") or [] if isinstance(r, dict) and isinstance(verdicts.get(r.get("arm")), dict)]
    if not ranking:
        return {"kind": "none", "headline": "The sweep's verdict ranks no arm.", "details": summary}
    n = len(verdict.get("seeds") or [])
    best, kinds = ranking[0], [r.get("verdict") for r in ranking]
    gap = (f"{fmt.points(best.get('gap'))} points of {terms.label} "
           f"(95% CI {fmt.ci_points(best.get('ci95'))}, {n} seed{'s' if n != 1 else ''})")
    headline = sweep_headline(best, kinds.count("positive"), len(ranking), str(verdict["sweep"].get("setting")), gap)
    kind = "positive" if "positive" in kinds else "negative" if set(kinds) == {"negative"} else "inconclusive"
    dead = list({(w.get("code"), w.get("arm")): w for r in ranking for w in did_not_learn_warnings(verdicts[r["arm"]])}.values())
    details = [f"{r['arm']}: {r.get('verdict')}, {fmt.points(r.get('gap'))} points (95% CI {fmt.ci_points(r.get('ci95'))})"
               for r in ranking]
    if dead:
        kind = "warning"
        details = [dead_arm(w).advice for w in dead] + [str(w.get("message")) for w in dead] + details
    return {"kind": kind, "headline": headline, "details": details + summary}


def _no_verdict(arms: dict[str, Arm], rd: RunDir, summary: list[str]) -> dict:
    if "scratch" not in arms:
        return {"kind": "none", "headline": "No scratch baseline was trained, so this report cannot say whether "
                                            "transfer helped.",
                "details": summary + [("To add one, rerun 'xferdiag finetune' with the same settings and "
                                      "'--baseline scratch' (the default), then render the report again.")]}
    return {"kind": "none", "headline": "Both arms are trained but the verdict has not been computed yet.",
            "details": summary + [f"Run 'xferdiag report {shlex.quote(str(rd.root))}' to compute it."]}


def _verdict_details(verdict: Verdict) -> list[str]:
    """The lines under the headline: differing budgets, the test's p-value, the macro-F1 gap, the note."""
    details = []
    budgets = _budgets_differ(verdict.get("budgets"))
    if budgets:
        details.append(budgets)
    if verdict.get("p_value") is not None:
        details.append(f"{fmt.p_is(verdict['p_value'])} ({verdict.get('method', 'test over seeds')}, "
                       f"α = {fmt.num(verdict.get('alpha'))})")
    f1 = verdict.get("macro_f1") or {}
    if f1.get("gap") is not None:
        details.append(f"Macro F1 gap {fmt.points(f1['gap'])} points (95% CI {fmt.ci_points(f1.get('ci95'))})")
    if verdict.get("note"):
        details.append(str(verdict["note"]))
    looks = looks_sentence(verdict.get("looks"))
    if looks:
        details.append(looks)
    return details + _baselines(verdict.get("baselines"))


BASELINE_NAMES = {"tfidf-logreg": "TF-IDF + logistic regression"}


def _baselines(baselines: dict[str, BaselineScore] | None) -> list[str]:
    """verdict.json's non-neural baselines (text: TF-IDF + logistic regression) beside the transfer arm."""
    lines = []
    for name, record in (baselines or {}).items():
        if record.get("accuracy") is None:
            continue
        gap = record.get("transfer_minus_baseline")
        lines.append(f"{BASELINE_NAMES.get(name, name)} on the same splits: {fmt.pct(record['accuracy'])} test accuracy"
                     + (f"; transfer {fmt.points(gap)} points against it" if gap is not None else ""))
    return lines


def _not_evidence(kind: str, gap: str, dead_arms: list[dict], terms: TaskDescriptor) -> str:
    """The headline when an arm did not learn: the gap as it looks, then why it shows nothing."""
    looks = {"positive": f"Transfer looks better by {gap}", "negative": f"Transfer looks worse by {gap}"}.get(
        kind, f"Transfer and training from scratch differ by {gap}")
    failures = []
    for warning in dead_arms:
        evidence = warning.get("evidence") or {}
        flagged, seeds = len(evidence.get("seeds_flagged") or []), evidence.get("seeds")
        when = "never learned" if flagged == seeds else f"did not learn in {flagged} of {seeds} seeds"
        score, score_name, baseline, baseline_name = terms.evidence
        failures.append(f"{DID_NOT_LEARN[warning['code']].who} {when} ({fmt.pct(evidence.get(score))} {score_name}, "
                        f"{baseline_name} {fmt.pct(evidence.get(baseline))})")
    claim = {"positive": "that transfer helped", "negative": "that transfer hurt"}.get(kind, "about transfer")
    return f"{looks}, but {' and '.join(failures)}, so this is not evidence {claim}."


def _budgets_differ(budgets: dict[str, ArmBudget | None] | None) -> str | None:
    """A sentence naming each arm's epochs and learning rate, when the two arms had different ones."""
    if not budgets or len(budgets) != 2 or None in budgets.values():
        return None
    first, second = budgets.values()
    if first == second:
        return None
    return "Budgets differ: " + "; ".join(f"{arm} {fmt.num(b.get('epochs'))} epochs at learning rate {fmt.num(b.get('lr'))}"
                                          for arm, b in budgets.items()) + "."
