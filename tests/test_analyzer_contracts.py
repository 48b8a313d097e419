"""Contracts every analyzer keeps, checked over all of them at once (in the spirit of scikit-learn's
``test_common`` and captum's hook-removal test).

- every public analyzer is listed here, so a new one cannot skip these checks;
- an analyzer that draws random numbers takes ``seed`` and gives the same answer for the same seed;
- results follow one protocol: a float for a single score, a frozen dataclass whose ``to_dict()``
  holds plain JSON values for a multi-part one;
- bad input (NaN, a wrong number of dimensions, mismatched lengths) raises an ``XferdiagError``
  whose message starts with the offending parameter's name;
- code that runs a model leaves no hook behind and every module's train/eval flag as it was.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from xferdiag import analyzers
from xferdiag.engine.features import extract_features, extract_layer_features
from xferdiag.errors import XferdiagError
from xferdiag.models.layers import trace

pytestmark = pytest.mark.usefixtures("one_thread")

RNG = np.random.default_rng(0)
SOURCE, TARGET = RNG.normal(size=(30, 4)), RNG.normal(0.5, 1.0, size=(26, 4))
WIDE = RNG.normal(size=(20, 3))
FEATURES = RNG.normal(size=(40, 6))
LABELS = np.arange(40) % 4
PROBS = np.exp(RNG.normal(size=(40, 5)))
PROBS /= PROBS.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Case:
    """How to call one analyzer: valid keyword arguments, which of them are arrays to spoil, and
    which pairs must describe the same examples (the second one is named in the error)."""

    fn: Callable
    kwargs: dict
    arrays: tuple[str, ...]
    same_rows: tuple[tuple[str, str], ...] = ()
    extra: dict = field(default_factory=dict)  # keeps the call cheap (fewer permutations, PCA)


CASES = {
    "mmd_test": Case(analyzers.mmd_test, {"x": SOURCE, "y": TARGET}, ("x", "y"),
                     extra={"n_permutations": 50, "device": "cpu"}),
    "proxy_a_distance": Case(analyzers.proxy_a_distance, {"x": SOURCE, "y": TARGET}, ("x", "y")),
    "classifier_two_sample_test": Case(analyzers.classifier_two_sample_test, {"x": SOURCE, "y": TARGET}, ("x", "y")),
    "frechet_distance": Case(analyzers.frechet_distance, {"x": SOURCE, "y": TARGET}, ("x", "y")),
    "ks_shift": Case(analyzers.ks_shift, {"x": SOURCE, "y": TARGET}, ("x", "y")),
    "feature_shift": Case(analyzers.feature_shift, {"x": SOURCE, "y": TARGET}, ("x", "y")),
    "label_shift": Case(analyzers.label_shift, {"source_labels": LABELS, "target_labels": LABELS[:30] % 3},
                        ("source_labels", "target_labels")),
    "linear_cka": Case(analyzers.linear_cka, {"x": SOURCE[:20], "y": WIDE}, ("x", "y"), (("x", "y"),)),
    "rbf_cka": Case(analyzers.rbf_cka, {"x": SOURCE[:20], "y": WIDE}, ("x", "y"), (("x", "y"),)),
    "embed_2d": Case(analyzers.embed_2d, {"x": SOURCE, "y": TARGET}, ("x", "y"), extra={"method": "pca"}),
    "logme": Case(analyzers.logme, {"features": FEATURES, "labels": LABELS}, ("features", "labels"),
                  (("features", "labels"),)),
    "logme_regression": Case(analyzers.logme_regression, {"features": FEATURES, "targets": FEATURES[:, :2] + RNG.normal(size=(40, 2))},
                             ("features", "targets"), (("features", "targets"),)),
    "h_score": Case(analyzers.h_score, {"features": FEATURES, "labels": LABELS}, ("features", "labels"),
                    (("features", "labels"),)),
    "leep": Case(analyzers.leep, {"source_probs": PROBS, "labels": LABELS}, ("source_probs", "labels"),
                 (("source_probs", "labels"),)),
    "nce": Case(analyzers.nce, {"source_preds": PROBS.argmax(axis=1), "labels": LABELS}, ("source_preds", "labels"),
                (("source_preds", "labels"),)),
    "two_sample_shift": Case(analyzers.two_sample_shift, {"x": SOURCE, "y": TARGET}, ("x", "y"), extra={"n_permutations": 20}),
    "transferability_scores": Case(analyzers.transferability_scores,
                                   {"features": FEATURES, "labels": LABELS, "source_probs": PROBS},
                                   ("features", "labels", "source_probs"),
                                   (("features", "labels"), ("features", "source_probs"))),
}
RANDOM = {"mmd_test", "proxy_a_distance", "classifier_two_sample_test", "embed_2d", "two_sample_shift"}
ARRAY_RESULTS = {"embed_2d": "2-D coordinates for a plot (arrays, not a JSON record)",
                 "transferability_scores": "the analysis/transferability.json record itself (a dict)",
                 "two_sample_shift": "a layer's part of analysis/shift.json itself (a dict)"}


def call(name: str, **changes):
    case = CASES[name]
    return case.fn(**{**case.kwargs, **case.extra, **changes})


def test_every_public_analyzer_is_covered():
    assert set(CASES) == set(analyzers.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_random_analyzers_and_only_they_take_seed(name):
    assert ("seed" in inspect.signature(CASES[name].fn).parameters) == (name in RANDOM)


def _comparable(result):
    if dataclasses.is_dataclass(result) and hasattr(result, "to_dict"):
        return result.to_dict()
    if dataclasses.is_dataclass(result):  # an array result: compare every field
        return {f.name: np.asarray(getattr(result, f.name)).tolist() for f in dataclasses.fields(result)}
    return result


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_seed_same_answer(name):
    first, second = call(name, seed=3), call(name, seed=3)
    assert _comparable(first) == _comparable(second)


@pytest.mark.parametrize("name", sorted(set(CASES) - set(ARRAY_RESULTS)))
def test_result_is_a_float_or_a_frozen_record_of_plain_values(name):
    result = call(name)
    if isinstance(result, float):
        return
    assert dataclasses.is_dataclass(result) and result.__dataclass_params__.frozen, type(result)
    record = result.to_dict()
    assert json.loads(json.dumps(record, allow_nan=False)) == record  # plain JSON: no NumPy scalars or tuples


def _spoiled(value, how: str):
    arr = np.array(value, dtype=np.float64)
    if how == "nan":
        arr.reshape(-1)[1] = np.nan
        return arr
    return arr[..., None, None] if arr.ndim == 1 else arr[..., None]  # one dimension too many


@pytest.mark.parametrize("how", ["nan", "ndim"])
@pytest.mark.parametrize("name, argument", [(n, a) for n in sorted(CASES) for a in CASES[n].arrays])
def test_bad_array_is_named(name, argument, how):
    with pytest.raises(XferdiagError) as error:
        call(name, **{argument: _spoiled(CASES[name].kwargs[argument], how)})
    assert str(error.value).startswith(f"{argument}:"), str(error.value)


@pytest.mark.parametrize("name, pair", [(n, p) for n in sorted(CASES) for p in CASES[n].same_rows])
def test_mismatched_lengths_name_the_second_argument(name, pair):
    _, second = pair
    shorter = np.asarray(CASES[name].kwargs[second])[:-3]
    with pytest.raises(XferdiagError) as error:
        call(name, **{second: shorter})
    assert str(error.value).startswith(f"{second}:"), str(error.value)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_bad_seed_is_named(name):
    for seed in (-1, 1.5, "0"):
        with pytest.raises(XferdiagError, match="^seed:"):
            call(name, seed=seed)


# ------------------------------------------------------------------------- code that runs models


def _model() -> nn.Module:
    """Mixed flags, as in a frozen-BatchNorm fine-tune: the model trains, one BatchNorm stays in eval."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.train()
    model[1].eval()
    return model


def _state(model: nn.Module) -> tuple[dict, int]:
    flags = {name: m.training for name, m in model.named_modules()}
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    return flags, hooks


DATA = TensorDataset(torch.rand(6, 1, 8, 8), torch.arange(6) % 2)
MODEL_RUNNERS = {
    "trace": lambda model: trace(model, torch.rand(2, 1, 8, 8)),
    "extract_features": lambda model: extract_features(model, DATA, batch_size=4),
    "extract_layer_features": lambda model: extract_layer_features(model, DATA, ["0", "2"], batch_size=4),
}


@pytest.mark.parametrize("run", MODEL_RUNNERS.values(), ids=MODEL_RUNNERS.keys())
def test_running_a_model_leaves_no_hooks_and_the_same_flags(run):
    model = _model()
    before = _state(model)
    run(model)
    assert _state(model) == before


@pytest.mark.parametrize("run", [MODEL_RUNNERS["trace"], lambda model: extract_layer_features(model, DATA, ["0"])],
                         ids=["trace", "extract_layer_features"])
def test_a_failing_forward_leaves_no_hooks(run):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())  # takes 3 channels, gets 1: the forward raises
    before = _state(model)
    with pytest.raises(RuntimeError):
        run(model)
    assert _state(model) == before
