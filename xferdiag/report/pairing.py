"""Which runs given to ``compare`` share their test split, and their transfer arms compared pair by pair.

Two runs are paired only when the run directories show that they were tested on the same examples with the same
seeds: the same task, the same data (data.json's spec, else the config's), split seed, test fraction, classes and
test class counts, the same finished seeds, every seed's test labels equal and the same run-level ground truth.
Anything else falls back to Welch's t-test (:func:`xferdiag.pairwise.welch`), and the pair says which of these
differed. The statistics are :mod:`xferdiag.pairwise`'s; this module only reads (through :mod:`xferdiag.rundir`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import pairwise
from ..errors import RunDirError
from ..rundir import RunDir, read_data, read_metrics
from ..rundir.evidence import run_records, seed_evidence, seed_records
from ..tasks.descriptor import describe_task
from .interpret import ALPHA
from .sections.common import config_value, metric_of, run_config

ARM = "transfer"
"""The arm of each run that compare sets against the other runs'."""


@dataclass(frozen=True)
class Side:
    """What one run brings to its pairs: ``facts`` that fix its test split (by the words a reason uses), its finished
    seeds, their headline scores, their evidence as the task's judge takes it (None without per-example records) and
    the run-level records."""

    name: str
    task: str | None
    facts: dict
    data: dict
    seeds: list[int]
    scores: list[float]
    evidence: list[dict] | None
    records: dict = field(default_factory=dict)


def arm_scores(rd: RunDir, arm: str, key: str) -> list[float]:
    """The test ``key`` (the task's headline metric, or the one beside it) of each finished seed of ``arm`` that records one."""
    values = [metric_of(read_metrics(rd.seed(arm, s)), key) for s in rd.seeds(arm)]
    return [v for v in values if v is not None]


def read_side(rd: RunDir, name: str, metric: str, arm: str = ARM) -> Side:
    """One run's transfer arm (``arm``: one of a sweep's; its headline ``metric`` per seed) and the facts of its test
    split, read through the run directory's readers."""
    config, data = run_config(rd.check()), read_data(rd)
    seeds, scores = rd.seeds(arm), arm_scores(rd, arm, metric)
    names = describe_task(config_value(config, "task")).records  # the test records the run's task keeps
    has_records = bool(seeds) and all(seed_records(rd.seed(arm, s), names) for s in seeds)
    facts = {
        "task": config_value(config, "task") or "classification",
        "data": data.get("spec") if data.get("spec") is not None else config_value(config, "data"),
        "split seed": data.get("split_seed", config_value(config, "split_seed")),
        "test fraction": config_value(config, "test_fraction"),
        "classes": data["classes"],
        "test examples": ((data.get("splits") or {}).get("target") or {}).get("test"),
        "test class counts": (data.get("class_counts") or {}).get("test"),
    }
    return Side(name=name, task=config_value(config, "task"), facts=facts, data=data, seeds=seeds, scores=scores,
                evidence=[seed_evidence(rd.seed(arm, s), names) for s in seeds] if has_records else None,
                records=run_records(rd) if has_records else {})


def _labels(side: Side) -> list[np.ndarray]:
    """Each seed's test labels, from every per-example record that carries them."""
    return [record.labels for seed in side.evidence for record in seed["records"].values() if hasattr(record, "labels")]


def unshared(x: Side, y: Side) -> str | None:
    """Why the two runs' transfer arms cannot be paired, in one phrase; None when they share the test split and seeds."""
    for side in (x, y):
        if not side.seeds:
            return f"{side.name} has no finished {ARM} seed"
        if side.evidence is None:
            return f"{side.name} holds no per-example test predictions"
    for key in x.facts:
        if x.facts[key] != y.facts[key]:
            return f"different {key} ({x.facts[key]} vs {y.facts[key]})"
    if x.seeds != y.seeds:
        return f"different seeds ({x.seeds} vs {y.seeds})"
    labels = _labels(x) + _labels(y)
    if any(not np.array_equal(labels[0], other) for other in labels[1:]):
        return "different test examples (the test labels differ)"
    if x.records != y.records:
        return "different test ground truth"
    return None


def _pair(x: Side, y: Side) -> pairwise.Comparison:
    """Paired where the runs share the test split and seeds and the task can judge them; else Welch, saying why."""
    reason = unshared(x, y)
    if reason is None:
        from ..tasks.registry import task_named  # loads torch: only when a pair can be judged by its task

        try:
            return pairwise.paired(task_named(x.task), x.evidence, y.evidence, names=(x.name, y.name), seeds=x.seeds,
                                   data=x.data, run_records=x.records, alpha=ALPHA)
        except RunDirError as exc:  # a hand-made run the verdict could not judge either (e.g. no test macro-F1)
            reason = f"the task could not judge them ({exc})"
    return pairwise.welch(x.scores, y.scores, names=(x.name, y.name), unpaired_because=reason, alpha=ALPHA)


def compare_pairs(sides: list[Side]) -> list[dict]:
    """Every pair of runs, paired where they share the test split and seeds, else Welch; Holm over all pairs."""
    pairs = [_pair(sides[i], sides[j]) for i in range(len(sides)) for j in range(i + 1, len(sides))]
    return [pair.to_dict() for pair in pairwise.adjust(pairs, ALPHA)]
