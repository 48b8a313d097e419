"""Advice derived from a run's numbers: each rule fires on evidence and shows that evidence.

A rule is a small function of :class:`Facts` that returns a :class:`Recommendation` or ``None``.
Thresholds are named constants in :mod:`.interpret` with the reason for their value, so a reader
can disagree with a number instead of with a black box. The advice is a starting point, never a conclusion: every
recommendation lists the measurements it rests on.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from . import fmt
from .interpret import SHRINKING_GAP, SMALL_WEIGHT_CHANGE, WIDE_CI, large_shift_evidence

# Strategies (xferdiag.config.STRATEGIES) that keep the pretrained backbone fixed and train only the head,
# and those that already let every layer adapt.
FROZEN_STRATEGIES = {"linear-probe", "freeze"}
ADAPT_ALL_STRATEGIES = {"full", "lp-ft"}


@dataclass(frozen=True)
class DeadArm:
    """How the report speaks of an arm that did not learn: who it is, what to do, the flags to try."""

    who: str
    advice: str
    command: str | None = None


DEAD_BASELINE = "A baseline that never learned makes any pretrained model look good, so the gap says nothing about transfer. "

# verdict.json's warning codes for an arm that did not learn (xferdiag.health); the banner uses the same words.
DID_NOT_LEARN = {
    "baseline-did-not-learn": DeadArm(
        who="the scratch baseline",
        advice=(DEAD_BASELINE + "Give it a learning rate that suits training from scratch ('--scratch-lr auto' tries a few "
                "on the validation split) or a longer budget ('--scratch-epochs N'), then train again."),
        command="--scratch-lr auto   or   --scratch-epochs N"),
    "transfer-did-not-learn": DeadArm(
        who="the transfer arm",
        advice=("A transfer arm that never learned says little about the pretrained weights until its training is "
                "ruled out: check its learning rate (--lr, --backbone-lr-mult), its strategy and the input "
                "normalisation the weights expect (--mean, --std), then train again. If it still learns nothing, "
                "the pretrained features carry nothing about these classes.")),
}


# A scratch baseline that did not learn although its rate was searched (the warning's "lr_search"): by whether any rate learned.
SEARCHED_BASELINE = {
    "searched": DeadArm(
        who="the scratch baseline",
        advice=(DEAD_BASELINE + "Its learning rate was already searched ('--scratch-lr auto'), so give it a longer budget "
                "('--scratch-epochs N', e.g. 4x the transfer arm's: He et al. 2019 found that training from scratch "
                "needs several times the usual schedule to catch up), then train again."),
        command="--scratch-epochs N"),
    "no-rate-learned": DeadArm(
        who="the scratch baseline",
        advice=(DEAD_BASELINE + "'--scratch-lr auto' found no learning rate at which it learns within its short trials, so "
                "another rate alone is unlikely to help: give it a longer budget ('--scratch-epochs N', e.g. 4x the transfer "
                "arm's), then train again. If it still learns nothing, the data may be too few for this "
                "architecture to learn from random weights, and any pretrained start will look good."),
        command="--scratch-epochs N"),
}


@dataclass
class Facts:
    """What the rules look at; every field is optional because every file but run.json is."""

    arms: list[str]
    verdict: dict | None = None
    strategy: str | None = None
    shift: dict | None = None
    similarity: dict | None = None
    sanity: dict | None = None
    shots: dict | None = None
    n_test: int | None = None
    train_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Recommendation:
    title: str
    advice: str
    evidence: list[str]
    kind: str = "action"  # "action", "warning" (do not trust something) or "info"
    command: str | None = None


def _gap_evidence(verdict: dict) -> str:
    seeds = len(verdict.get("seeds") or verdict.get("per_seed") or [])
    return (f"{verdict.get('verdict', '?')} verdict: gap {fmt.points(verdict.get('gap'))} points "
            f"(95% CI {fmt.ci_points(verdict.get('ci95'))}, {seeds} seeds)")


def _median_weight_change(similarity: dict | None) -> float | None:
    changes = [layer.get("weight_change") for layer in (similarity or {}).get("layers", [])]
    changes = [c for c in changes if c is not None]
    return statistics.median(changes) if changes else None


def no_baseline(f: Facts) -> Recommendation | None:
    if f.verdict or "scratch" in f.arms:
        return None
    return Recommendation(
        "Train the scratch baseline",
        "Without a model trained from random initialisation under the same budget, nothing here can say "
        "whether the pretrained weights helped. Rerun 'xferdiag finetune' with the same settings: it trains "
        "both arms on the same data, epochs and seeds.",
        [f"arms present: {', '.join(f.arms)}"], command="--baseline scratch")


def shift_and_negative(f: Facts) -> Recommendation | None:
    shift = large_shift_evidence(f.shift)
    if not f.verdict or f.verdict.get("verdict") != "negative" or not shift:
        return None
    fine_tunes_all = f.strategy in ADAPT_ALL_STRATEGIES
    advice = ("The target data looks unlike what the source model was trained on, and reusing its features hurt. "
              + ("Try a source model closer to your data." if fine_tunes_all else
                 "Let more of the network adapt (fine-tune more layers), or try a source model closer to your data."))
    return Recommendation("Large domain shift and negative transfer", advice, [_gap_evidence(f.verdict), *shift],
                          command=None if fine_tunes_all else "--strategy partial   or   --strategy full")


def negative_small_shift(f: Facts) -> Recommendation | None:
    if not f.verdict or f.verdict.get("verdict") != "negative" or not f.shift or large_shift_evidence(f.shift):
        return None
    return Recommendation(
        "Transfer hurt although the domains look alike",
        "The shift measurements do not explain the loss, so suspect the fine-tuning itself: a learning rate that "
        "erases the pretrained weights, input normalisation different from the source model's, or BatchNorm "
        "statistics updated on small batches.",
        [_gap_evidence(f.verdict), "no large shift: proxy A-distance and MMD below their thresholds"])


def frozen_and_positive(f: Facts) -> Recommendation | None:
    if not f.verdict or f.verdict.get("verdict") != "positive" or f.strategy in ADAPT_ALL_STRATEGIES:
        return None
    change = _median_weight_change(f.similarity)
    frozen = f.strategy in FROZEN_STRATEGIES
    small = change is not None and change < SMALL_WEIGHT_CHANGE
    if not (frozen or small):
        return None
    evidence = [_gap_evidence(f.verdict)]
    if frozen:
        evidence.append(f"strategy '{f.strategy}' keeps the pretrained backbone frozen")
    if small:
        evidence.append(f"median relative weight change {fmt.num(change)} across layers (< {SMALL_WEIGHT_CHANGE:g})")
    return Recommendation(
        "Fine-tuning more layers may help further",
        "Transfer already helps while the backbone barely moved; letting its upper layers adapt to the target "
        "data often adds accuracy on top.", evidence, command="--strategy partial")


def _ci_width(verdict: dict) -> float | None:
    ci = verdict.get("ci95")
    if ci is not None and len(ci) == 2 and None not in ci:
        return ci[1] - ci[0]
    return None


def inconclusive(f: Facts) -> Recommendation | None:
    if not f.verdict or f.verdict.get("verdict") != "inconclusive":
        return None
    width = _ci_width(f.verdict)
    if width is None:
        return None
    evidence = [_gap_evidence(f.verdict), f"interval width {width * 100:.1f} points"]
    if f.n_test:
        evidence.append(f"{f.n_test} test examples per seed")
    if width > WIDE_CI:
        return Recommendation(
            "Too uncertain to call: add seeds or test data",
            "The interval is wide enough to hide a real effect either way. It narrows roughly with the square "
            "root of the number of seeds (4× the seeds halves it); a larger test split reduces each seed's noise.",
            evidence)
    times = [f"{arm} trains in {fmt.seconds(s)} per seed" for arm, s in f.train_seconds.items()]
    return Recommendation(
        "No practical difference: choose on cost",
        "The interval is narrow and includes zero, so pretraining neither helps nor hurts by a margin that "
        "matters here. Pick the arm that is cheaper to train and serve.", evidence + times, kind="info")


def did_not_learn_warnings(verdict: dict | None) -> list[dict]:
    """The verdict's warnings about an arm that did not learn (the codes of :data:`DID_NOT_LEARN`)."""
    warnings = (verdict or {}).get("warnings")
    return [w for w in warnings or [] if w.get("code") in DID_NOT_LEARN]


def dead_arm(warning: dict) -> DeadArm:
    """How to speak of a did-not-learn warning's arm: for a scratch arm whose rate was searched (the warning's
    ``lr_search``), advice that does not send the user back to the search, and says when no rate learned."""
    search = warning.get("lr_search")
    if warning.get("code") == "baseline-did-not-learn" and search is not None:
        return SEARCHED_BASELINE["no-rate-learned" if search.get("learned") is False else "searched"]
    return DID_NOT_LEARN[warning["code"]]


def _search_evidence(warning: dict) -> list[str]:
    search = warning.get("lr_search")
    if search is None:
        return []
    outcome = {False: "no rate tried learned", True: "a rate that learned was chosen",
               None: "whether any rate learned is unknown"}.get(search.get("learned"), "?")
    return [f"learning-rate search ({search.get('epochs')} epochs per rate): {outcome}; chosen {fmt.num(search.get('chosen'))}"]


def _seed_evidence(check: dict) -> str:
    return (f"seed {check.get('seed')}: best validation accuracy {fmt.pct(check.get('best_val_accuracy'))} "
            f"(chance {fmt.pct(check.get('val_chance'))}), lowest training loss {fmt.num(check.get('min_train_loss'))} "
            f"(predicting the class frequencies: {fmt.num(check.get('constant_loss'))}), "
            f"{fmt.pct(check.get('top_class_share'))} of test predictions in one class")


def arms_that_did_not_learn(f: Facts) -> list[Recommendation]:
    out = []
    for warning in did_not_learn_warnings(f.verdict):
        arm = dead_arm(warning)
        checks = (warning.get("evidence") or {}).get("per_seed") or []
        evidence = [str(warning.get("message"))] + [_seed_evidence(c) for c in checks]
        out.append(Recommendation(f"{arm.who.capitalize()} did not learn", arm.advice, evidence + _search_evidence(warning),
                                  kind="warning", command=arm.command))
    return out


def flagged_explanations(f: Facts) -> list[Recommendation]:
    out = []
    for method, check in (f.sanity or {}).items():
        if check.get("flagged"):
            out.append(Recommendation(
                f"Do not trust the {fmt.display_name(method)} maps",
                "They barely change when the model's weights are randomised, so they show the image more than "
                "what the model learned.",
                [f"similarity after randomisation {fmt.num(check.get('similarity_after_randomisation'))}"],
                kind="warning"))
    return out


def low_data_regime(f: Facts) -> Recommendation | None:
    points = [p for p in (f.shots or {}).get("points", [])
              if p.get("gap") is not None and p.get("n_train") is not None]
    if len(points) < 2:
        return None
    points.sort(key=lambda p: p["n_train"])
    small, large = points[0], points[-1]
    if small["gap"] <= 0 or small["gap"] - large["gap"] < SHRINKING_GAP:
        return None
    return Recommendation(
        "Pretraining matters most in the low-data regime",
        "The advantage of the pretrained start shrinks as target data grows; with more labelled data, "
        "training from scratch closes much of the gap.",
        [f"gap {fmt.points(small['gap'])} points at {small.get('shots')} shots (n = {small['n_train']})",
         f"gap {fmt.points(large['gap'])} points at {large.get('shots')} shots (n = {large['n_train']})"],
        kind="info")


RULES: list[Callable[[Facts], Recommendation | None]] = [
    no_baseline, shift_and_negative, negative_small_shift, frozen_and_positive, inconclusive, low_data_regime,
]


def recommend(facts: Facts) -> list[Recommendation]:
    """All recommendations that fire, warnings about untrustworthy results first.

    When an arm did not learn the gap is no evidence, so no rule reads advice into the verdict.
    """
    dead_arms = arms_that_did_not_learn(facts)
    trusted = dataclasses.replace(facts, verdict=None) if dead_arms else facts
    found = dead_arms + flagged_explanations(facts) + [r for rule in RULES if (r := rule(trusted)) is not None]
    return sorted(found, key=lambda r: r.kind != "warning")
