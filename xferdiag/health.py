"""Did an arm learn at all? Health checks that keep a dead arm from posing as a fair comparison.

A verdict compares two trained models. If one of them never learned (a scratch baseline stuck at
chance because its learning rate or budget was wrong, a transfer arm fed wrongly normalised
inputs), the gap measures the failure, not transfer. Each seed of an arm is checked for three
signs of a model that learned nothing about its inputs; any one flags the seed (the loss only
where validation accuracy shows no learning):

``val-at-chance``
    Its best validation accuracy over all epochs is not clearly above chance, where chance is the
    majority-class rate of the validation split (what always answering the commonest class
    scores). "Clearly" is a one-sided binomial test at level :data:`CHANCE_ALPHA` at the
    validation size: an arm at chance gets each example right with probability ``chance``, so its
    correct count is Binomial(n, chance). Taking the best of several epochs only makes the rule
    more forgiving. Where the validation set is so small that only an accuracy more than
    :data:`MAX_CHANCE_MARGIN` above chance would pass, the test could not tell a real but modest
    learner from luck, so the rule abstains rather than raise a false alarm.
``flat-loss``
    Its lowest training loss is less than :data:`MIN_LOSS_DECREASE` below the loss of predicting
    the training class frequencies (their entropy: the cross-entropy a model reaches by learning
    the label counts and nothing else). The reference is that constant predictor rather than the
    first epoch, because the first epoch's mean already includes what was learned during it (a
    pretrained arm may converge within it) and a badly initialised network may start far above it
    and merely fall to it. Validation accuracy is the direct measure of learning, so the loss
    only speaks where it does not show any: a linear probe on weak frozen features can learn a
    little, slowly (the transfer-hurts demo: 19% validation accuracy at 10% chance, significant,
    with a loss 4% below the constant predictor's), and that is negative transfer, not a failed run.
``one-class``
    At least :data:`ONE_CLASS_SHARE` of its test predictions are one class while the test labels
    are not, on at least :data:`MIN_EXAMPLES_ONE_CLASS` examples.

Pure computation over numbers and arrays; :func:`xferdiag.commands.verdict.verdict_for_run` reads them
from the run directory and writes the warnings into ``verdict.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

#: One-sided level of the binomial test against chance: a working arm should beat chance by far
#: more than this demands, so a strict level costs little and keeps false alarms rare.
CHANCE_ALPHA = 0.01
#: Above this margin (20 points) the validation set is too small to judge: an arm that learned a
#: little would be called dead. Binary labels need about 40 validation examples, ten classes 25.
MAX_CHANCE_MARGIN = 0.20
#: A training loss that never falls 5% below the constant predictor's has learned next to nothing
#: about the inputs; arms that learn go far lower (the demo's: 58-75%).
MIN_LOSS_DECREASE = 0.05
#: 95% of predictions in one class: a collapsed model, allowing a few stray answers.
ONE_CLASS_SHARE = 0.95
#: Below 20 test examples one example is more than the 5% leeway, so "95%" would mean "all", which
#: a model that learned can reach on a handful of examples of a dominant class.
MIN_EXAMPLES_ONE_CLASS = 20


def majority_share(counts: Sequence[int]) -> float | None:
    """The accuracy of always answering the commonest class; None without examples."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return float(counts.max() / total) if total > 0 else None


def constant_loss(counts: Sequence[int]) -> float | None:
    """The cross-entropy of predicting the class frequencies themselves (their entropy, in nats)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return None
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def needed_above_chance(n: int, chance: float, alpha: float = CHANCE_ALPHA) -> float | None:
    """The lowest accuracy on ``n`` examples that is significantly above ``chance`` (one-sided
    binomial test at ``alpha``); None where it would need more than :data:`MAX_CHANCE_MARGIN`."""
    k = int(stats.binom.isf(alpha, n, chance)) + 1  # smallest k with P(X >= k) <= alpha
    needed = k / n
    return needed if needed <= min(1.0, chance + MAX_CHANCE_MARGIN) else None


@dataclass(frozen=True)
class Chance:
    """What a model that learned nothing scores on this run's splits."""

    val_accuracy: float | None  # majority-class rate of the validation split
    val_size: int | None
    train_loss: float | None  # loss of predicting the training class frequencies


@dataclass(frozen=True)
class SeedHealth:
    """The checks of one seed of one arm; a number is None where its rule could not be applied."""

    seed: int
    signals: tuple[str, ...]
    best_val_accuracy: float | None
    val_chance: float | None
    val_needed: float | None
    min_train_loss: float | None
    constant_loss: float | None
    loss_decrease: float | None
    top_class_share: float
    test_accuracy: float
    test_chance: float

    def to_dict(self) -> dict:
        return {**asdict(self), "signals": list(self.signals)}


def seed_health(seed: int, chance: Chance, val_accuracy: Sequence[float] | None, train_loss: Sequence[float] | None,
                labels: np.ndarray, predictions: np.ndarray) -> SeedHealth:
    """Apply the three rules to one seed: its per-epoch validation accuracy and training loss (None
    where not recorded) and its test labels and predictions."""
    signals = []
    best = float(np.max(val_accuracy)) if val_accuracy is not None and len(val_accuracy) else None
    needed = None
    if best is not None and chance.val_accuracy is not None and chance.val_size:
        needed = needed_above_chance(chance.val_size, chance.val_accuracy)
    learned_on_val = needed is not None and best >= needed - 1e-9  # accuracies are k/n: no rounding slips through
    if needed is not None and not learned_on_val:
        signals.append("val-at-chance")
    lowest = float(np.min(train_loss)) if train_loss is not None and len(train_loss) else None
    decrease = None
    if lowest is not None and chance.train_loss:
        decrease = 1 - lowest / chance.train_loss
        if decrease < MIN_LOSS_DECREASE and not learned_on_val:
            signals.append("flat-loss")
    top_share = float(np.bincount(predictions).max() / predictions.size)
    test_chance = float(np.bincount(labels).max() / labels.size)
    if labels.size >= MIN_EXAMPLES_ONE_CLASS and top_share >= ONE_CLASS_SHARE > test_chance:
        signals.append("one-class")
    return SeedHealth(
        seed=seed, signals=tuple(signals), best_val_accuracy=best, val_chance=chance.val_accuracy, val_needed=needed,
        min_train_loss=lowest, constant_loss=chance.train_loss, loss_decrease=decrease, top_class_share=top_share,
        test_accuracy=float(np.mean(labels == predictions)), test_chance=test_chance,
    )


def _span(values: list[float], spec: str) -> str:
    """One number, or the range the seeds cover: '9.5%' or '9.5% to 11.0%'."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low} to {high}"


def _reasons(flagged: list[SeedHealth]) -> list[str]:
    """One phrase per signal, with its numbers over the seeds it flagged."""
    def having(signal: str) -> list[SeedHealth]:
        return [s for s in flagged if signal in s.signals]

    reasons = []
    if seeds := having("val-at-chance"):
        reasons.append(f"best validation accuracy {_span([s.best_val_accuracy for s in seeds], '.1%')}, not clearly above "
                       f"chance ({seeds[0].val_chance:.1%}; {seeds[0].val_needed:.1%} needed)")
    if seeds := having("flat-loss"):
        reasons.append(f"lowest training loss {_span([s.min_train_loss for s in seeds], '.3f')}, not "
                       f"{MIN_LOSS_DECREASE:.0%} below the {seeds[0].constant_loss:.3f} of predicting the class frequencies")
    if seeds := having("one-class"):
        reasons.append(f"{_span([s.top_class_share for s in seeds], '.0%')} of test predictions in one class")
    return reasons


def did_not_learn(code: str, arm: str, seeds: Sequence[SeedHealth]) -> dict | None:
    """The verdict warning for ``arm`` when any of its seeds failed a check, else None.

    ``evidence`` holds every seed's numbers, flagged or not, so a reader sees how far the others were.
    """
    flagged = [s for s in seeds if s.signals]
    if not flagged:
        return None
    which = ("its only seed" if len(seeds) == 1 else f"any of its {len(seeds)} seeds" if len(flagged) == len(seeds)
             else f"{len(flagged)} of its {len(seeds)} seeds")
    evidence = {"seeds_flagged": [s.seed for s in flagged], "seeds": len(seeds),
                "test_accuracy": float(np.mean([s.test_accuracy for s in flagged])),
                "test_chance": flagged[0].test_chance, "per_seed": [s.to_dict() for s in seeds]}
    return {"code": code, "arm": arm, "message": f"the {arm} arm did not learn in {which}: " + "; ".join(_reasons(flagged)),
            "evidence": evidence}


#: The scratch budget a remedy suggests, as a multiple of today's: the largest step of He, Girshick and Dollár's
#: catch-up sweep ("Rethinking ImageNet Pre-training": 1x, 2x, 4x), where scratch training mostly caught up.
LONGER_BUDGET = 4


def remedy(code: str, config: dict, search: dict | None) -> str:
    """What would help the arm of a did-not-learn warning ``code``, given the run's ``config`` and its scratch
    learning-rate search (run.json's ``scratch_lr_search``, None when there was none): never a flag the run
    already tried to no avail."""
    if code != "baseline-did-not-learn":
        return ("check its learning rate (--lr, --backbone-lr-mult), its --strategy and the input normalisation the "
                "pretrained weights expect (--mean, --std)")
    epochs = config.get("scratch_epochs") if isinstance(config.get("scratch_epochs"), int) else config.get("epochs")
    longer = f"--scratch-epochs N, e.g. {LONGER_BUDGET * epochs}" if isinstance(epochs, int) else "--scratch-epochs N"
    if search is None:
        return f"a learning rate that suits training from scratch (--scratch-lr auto tries a few) or a longer budget ({longer})"
    if search.get("learned") is False:
        return (f"--scratch-lr auto found no rate that learns in its {search.get('epochs')}-epoch trials: give the scratch "
                f"arm a longer budget ({longer})")
    return f"a longer budget for the scratch arm ({longer}); its rate was already searched (--scratch-lr auto)"
