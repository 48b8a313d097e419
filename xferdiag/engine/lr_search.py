"""``--scratch-lr auto``: a short learning-rate search for the scratch baseline.

A network trained from random weights usually wants a different learning rate than the new head
of a pretrained one, and a baseline trained at a rate that does not suit it can sit at chance,
which makes any pretrained model look like a triumph. The search gives the baseline a fair rate
without looking at the test split: a few log-spaced rates around ``--lr`` each train the scratch
arm for a few epochs (same optimiser, schedule, batch size, data and seed 0, through the normal
engine), and the rate whose validation score the task ranks first wins (a classifier: the best
validation accuracy, ties going to the lower validation loss), then the lower rate.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import TrainingDivergedError
from ..tasks.base import Task

#: Rates tried, as multiples of ``--lr``: half-decade steps, a decade either way. Scratch training
#: often wants a rate several times higher than a pretrained model's new layers, or lower when it
#: diverges; a decade each side covers both without spending many trainings.
SEARCH_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
#: Epochs per candidate (fewer when the scratch budget is shorter): enough to tell a rate that
#: learns from one that stalls or diverges, cheap next to the real training.
SEARCH_EPOCHS = 3
#: Candidates are clipped to this range: below 1e-6 no optimiser here moves the weights within a
#: short budget; above 1 every one of them diverges on a network trained from scratch.
LR_RANGE = (1e-6, 1.0)


def candidate_rates(lr: float) -> list[float]:
    """The rates to try around ``lr``, ascending, clipped to :data:`LR_RANGE`, without duplicates,
    to three significant digits (0.0009, not 0.0009000000000000001, in run.json)."""
    low, high = LR_RANGE
    return sorted({float(f"{min(max(lr * factor, low), high):.3g}") for factor in SEARCH_FACTORS})


def search_lr(rates: list[float], epochs: int, train: Callable[[float], dict], task: Task,
              learned: Callable[[dict], bool | None] = lambda summary: None) -> dict:
    """Train once per rate with ``train(lr)`` (returning the best epoch's validation summary) and return
    the record run.json keeps: every candidate with its validation scores (``val_<metric>``; None where
    it diverged), whether it ``learned`` (the task's judgement of its summary, :meth:`Task.learned`; None
    where the task cannot tell or it diverged) and the chosen rate; ``learned`` at the top says whether any
    candidate learned (False: none did, so the chosen rate is only the least bad; None: unknown).

    A rate whose training diverges is recorded as such; only when every rate diverges is that an error.
    """
    scored = {}
    for lr in rates:
        try:
            scored[lr] = train(lr)
        except TrainingDivergedError:
            continue
    if not scored:
        raise TrainingDivergedError(f"scratch learning-rate search: training diverged at every rate tried "
                                    f"({', '.join(f'{lr:g}' for lr in rates)}); give --scratch-lr a lower rate")
    chosen = min(scored, key=lambda lr: (*task.rank_key(scored[lr]), lr))
    metrics = list(next(iter(scored.values())))
    judged = {lr: learned(summary) for lr, summary in scored.items()}
    candidates = [{"lr": lr, **{f"val_{m}": scored.get(lr, {}).get(m) for m in metrics}, "diverged": lr not in scored,
                   "learned": judged.get(lr)} for lr in rates]
    return {"split": "val", "seed": 0, "epochs": epochs, "candidates": candidates, "chosen": chosen,
            "learned": any_learned(list(judged.values()))}


def any_learned(judgements: list[bool | None]) -> bool | None:
    """True when any candidate learned, False when every one was judged and none did, else None (unknown)."""
    if any(j is True for j in judgements):
        return True
    return False if judgements and all(j is False for j in judgements) else None
