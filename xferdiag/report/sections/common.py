"""What several sections read from a run: each arm's finished seeds, test metrics, and a few config fields."""

from __future__ import annotations

import json
from typing import TypedDict

import numpy as np

from ...errors import RunDirError
from ...rundir import (
    Predictions,
    RunDir,
    layout,
    read_history,
    read_metrics,
    read_predictions,
)
from .. import fmt


class Arm(TypedDict):
    """One arm's finished seeds: metrics for each, history and predictions where the seed has them."""

    seeds: list[int]
    metrics: dict[int, dict]
    history: dict[int, dict[str, np.ndarray]]
    predictions: dict[int, Predictions]


def load_arms(rd: RunDir, n_classes: int) -> dict[str, Arm]:
    """Every arm with at least one finished seed, standard arms first."""
    arms = {}
    for name in rd.arms():
        seeds = [rd.seed(name, s) for s in rd.seeds(name)]
        if seeds:
            arms[name] = Arm(seeds=[s.seed for s in seeds],
                             metrics={s.seed: read_metrics(s) for s in seeds},
                             history={s.seed: read_history(s) for s in seeds if s.history_csv.is_file()},
                             predictions={s.seed: read_predictions(s, n_classes)
                                          for s in seeds if s.predictions_npz.is_file()})
    if not arms:
        raise RunDirError(f"{rd.root}: no finished arm ({layout.SEED_PATTERN}/{layout.METRICS_JSON}); "
                          "run 'xferdiag finetune' first")
    return arms


def mean(values: list) -> float | None:
    """Mean of the numbers among ``values``; hand-written files may hold nulls or strings."""
    numbers = [x for x in map(fmt.as_number, values) if x is not None]
    return float(np.mean(numbers)) if numbers else None


def metric_of(metrics: dict | None, key: str = "accuracy") -> float | None:
    """A test-split metric from metrics.json, or None when the seed or the number is absent."""
    return fmt.as_number(((metrics or {}).get("test") or {}).get(key))


def config_value(config: dict, key: str):
    """First value stored under ``key`` anywhere in the (possibly nested) config, else None.

    The config layout belongs to the trainer and may nest sections; the report only needs a few
    well-known fields and should not break when they move.
    """
    if not isinstance(config, dict):
        return None
    if key in config:
        return config[key]
    for value in config.values():
        found = config_value(value, key)
        if found is not None:
            return found
    return None


def model_name(config: dict) -> str | None:
    model = config_value(config, "model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("arch") or json.dumps(model, sort_keys=True)
    return None if model is None else str(model)


def run_config(run: dict) -> dict:
    """run.json's config, or an empty one when a hand-written file lacks it (validate checks it is an object)."""
    return run.get("config") or {}


def class_name(classes: list[str], k: object) -> str:
    """The class a run file names by index, or the value itself when it is no valid index."""
    return classes[k] if isinstance(k, int) and 0 <= k < len(classes) else str(k)
