"""Typed readers of the JSON files the report reads: verdict, shift, similarity, transferability,
shots and the explanation index (docs/rundir.md holds each shape).

Each shape is a TypedDict whose annotations :func:`~xferdiag.rundir.conform.conform` enforces when the
file is read: a value of the wrong type is dropped as if absent, ``Required`` containers are always
there (empty when an older file lacks them), keys a newer writer adds are kept. Scalars stay
optional, so callers keep ``get`` with their own defaults but never check a type again.

No ``from __future__ import annotations`` here: TypedDict sees ``Required`` only in evaluated annotations.
"""

from dataclasses import dataclass
from typing import Any, Required, TypedDict, TypeVar

from .conform import conform
from .kinds import with_kind
from .layout import RunDir
from .readers import optional_object

Number = float | None
"""A JSON number or null (``float`` takes integers too)."""
Numbers = list[float | None]
"""Per-example or per-fraction numbers; a wrong entry reads as None and keeps its place."""


class Interval(TypedDict, total=False):
    gap: Number
    ci95: Numbers


class Look(TypedDict, total=False):
    look: int
    seeds: int
    alpha: Number
    gap: Number
    verdict: str


class BaselineScore(TypedDict, total=False):
    accuracy: Number
    macro_f1: Number
    transfer_minus_baseline: Number


class ArmBudget(TypedDict, total=False):
    epochs: Number
    lr: Number


class LrSearch(TypedDict, total=False):
    learned: bool | None
    epochs: int
    chosen: Number


class Evidence(TypedDict, total=False):
    """A did-not-learn warning's evidence; the task names its score keys (kept as written)."""

    seeds: int
    seeds_flagged: list[Any]
    per_seed: list[dict[str, Any]]


class VerdictWarning(TypedDict, total=False):
    code: str
    arm: str
    message: str
    evidence: Required[Evidence]
    lr_search: LrSearch | None


class Plan(TypedDict, total=False):
    min_effect: Number
    power: Number
    alpha: Number
    seeds_now: int
    n_test: int
    powered: bool
    seeds: int | None
    test_examples: Number
    max_seeds: int
    seed_variance: str


class Tide(TypedDict, total=False):
    """Detection: the TIDE error breakdown per arm and the difference between the arms per error type."""

    arms: Required[dict[str, dict[str, Any]]]
    types: list[str]
    difference: Required[dict[str, dict[str, Any]]]


class Verdict(TypedDict, total=False):
    verdict: str
    metric: str
    gap: Number
    ci95: Required[Numbers]
    p_value: Number
    alpha: Number
    method: str
    note: str
    seeds: list[Any]
    per_seed: list[dict[str, Any]]
    macro_f1: Interval | None
    looks: Required[list[Look]]
    baselines: Required[dict[str, BaselineScore]]
    budgets: Required[dict[str, ArmBudget | None]]
    warnings: Required[list[VerdictWarning]]
    plan: Plan | None
    arms: list[str]
    tide: Tide | None


class Estimate(TypedDict, total=False):
    value: Number
    ci95: Numbers


class LabelShift(TypedDict, total=False):
    classes: list[Any]
    source: Numbers
    target: Numbers
    total_variation: Number


class LayerShift(TypedDict, total=False):
    name: str
    mmd2: Number
    p_value: Number
    p_adjusted: Number
    shifted: bool
    proxy_a_distance: Number
    c2st_accuracy: Number
    c2st_p_value: Number
    frechet: Number


class FeatureShift(TypedDict, total=False):
    name: Any
    ks_statistic: Number
    p_value: Number
    p_adjusted: Number
    smd: Number
    shifted: bool


class BoxStatistic(TypedDict, total=False):
    name: str
    n_source: int
    n_target: int
    median_source: Number
    median_target: Number
    ks_statistic: Number
    p_value: Number
    p_adjusted: Number
    shifted: bool


class BoxShift(TypedDict, total=False):
    alpha: Number
    statistics: Required[list[BoxStatistic]]


class ShiftLevel(TypedDict, total=False):
    """One level of a detection run's instance shift: the shared analyses of two sets of boxes."""
    n_source: int
    n_target: int
    n_source_images: int
    n_target_images: int
    mmd: Required[dict[str, Any]]
    proxy_a_distance: Required[Estimate]
    frechet: Required[Estimate]
    c2st: Required[dict[str, Any]]
    ks: Required[dict[str, Any]]


class InstanceShift(TypedDict, total=False):
    layer: str
    stage: str
    stride: int
    inner: Number
    model: str
    min_boxes: int
    skipped: str
    objects: ShiftLevel
    per_class: Required[list[dict[str, Any]]]  # each a ShiftLevel with its "class" (a keyword, so no TypedDict field)
    background: ShiftLevel


class Shift(TypedDict, total=False):
    compared: str
    features_skipped: str
    boxes: Required[BoxShift]
    instance: Required[InstanceShift]
    layer: str
    model: str
    n_source: int
    n_target: int
    mmd: Required[dict[str, Any]]
    proxy_a_distance: Required[Estimate]
    frechet: Required[Estimate]
    c2st: Required[dict[str, Any]]
    ks: Required[dict[str, Any]]
    label_shift: Required[LabelShift]
    embedding: Required[dict[str, Any]]
    per_feature: Required[list[FeatureShift]]
    layers: Required[list[LayerShift]]
    interpretation: Required[list[str]]


class SimilarityLayer(TypedDict, total=False):
    name: str
    cka_linear: Number
    cka_debiased: Number
    weight_change: Number
    skipped: str


class Similarity(TypedDict, total=False):
    arm: str
    seed: int
    strategy: str | None
    layers: Required[list[SimilarityLayer]]


class TransferabilityReference(TypedDict, total=False):
    model: str
    scores: Required[dict[str, Number]]


class Transferability(TypedDict, total=False):
    model: str
    split: str
    n: int
    unit: str
    boxes: int
    background_boxes: int
    scores: Required[dict[str, Number]]
    not_applicable: Required[dict[str, str]]
    notes: Required[dict[str, str]]
    seconds: Required[dict[str, Number]]
    reference: TransferabilityReference


class ShotPoint(TypedDict, total=False):
    shots: int | str
    n_train: float
    gap: float
    ci95: Numbers
    verdict: str


class Shots(TypedDict, total=False):
    metric: str
    points: Required[list[ShotPoint]]


class ExplainedExample(TypedDict, total=False):
    index: int
    label: Any
    pred: dict[str, Any]
    correct: dict[str, bool | None]
    words: list[Any]


class Agreement(TypedDict, total=False):
    spearman: Numbers
    topk_overlap: Numbers


class SanityCheck(TypedDict, total=False):
    similarity_after_randomisation: Number
    flagged: bool
    examples: int


class Faithfulness(TypedDict, total=False):
    deletion_auc: Number
    insertion_auc: Number
    comprehensiveness_aopc: Number
    sufficiency_aopc: Number


class IndexParams(TypedDict, total=False):
    target: str
    agreement: dict[str, Any]


class ExplanationBudget(TypedDict, total=False):
    budget_s: Number
    estimated_s: Number
    measured_s_by_part: dict[str, float]
    requested: dict[str, Any]
    chosen: dict[str, Any]
    reductions: list[str]


class ExplanationIndex(TypedDict, total=False):
    kind: str
    seed: int
    methods: Required[list[str]]
    arms: Required[list[str]]
    feature_names: Required[list[Any]]
    params: Required[IndexParams]
    examples: Required[list[ExplainedExample]]
    agreement: Required[dict[str, Agreement]]
    sanity: Required[dict[str, SanityCheck]]
    faithfulness: Required[dict[str, dict[str, Faithfulness]]]
    shap_additivity_gap: Required[dict[str, Numbers]]
    ig_completeness_gap: Required[dict[str, Numbers]]
    budget: ExplanationBudget | None


class RunRecord(TypedDict, total=False):
    """run.json as the report reads it (:func:`~xferdiag.rundir.validate` returns it)."""

    schema: int
    xferdiag_version: str
    created: str
    command: list[Any]
    config: Required[dict[str, Any]]
    environment: Required[dict[str, Any]]
    model: dict[str, Any]
    audit: dict[str, Any]


Document = TypeVar("Document")


def read_document(path, shape: type[Document]) -> Document | None:
    """The file shaped as ``shape``; None when it does not exist, RunDirError when it is no JSON object."""
    value = optional_object(path)
    return None if value is None else conform(value, shape)


@dataclass(frozen=True)
class RunDocuments:
    """The optional JSON files of a run the report reads, each typed; None where the file is absent.
    Explanations count only with both their index and their arrays."""

    verdict: Verdict | None
    shift: Shift | None
    transferability: Transferability | None
    similarity: Similarity | None
    index: ExplanationIndex | None
    shots: Shots | None

    @classmethod
    def read(cls, rd: RunDir) -> "RunDocuments":
        index = read_document(rd.index_json, ExplanationIndex)  # a corrupt index raises even when the arrays are gone
        return cls(verdict=read_document(rd.verdict_json, Verdict), shift=read_document(rd.shift_json, Shift),
                   transferability=read_document(rd.transferability_json, Transferability),
                   similarity=read_document(rd.similarity_json, Similarity),
                   index=with_kind(index) if rd.maps_npz.is_file() else None, shots=read_document(rd.shots_json, Shots))
