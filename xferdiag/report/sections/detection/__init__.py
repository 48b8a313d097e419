"""Detection's report sections, by the names its task descriptor lists (``sections``): the dataset card,
per-class AP, precision-recall curves, the gallery of images where the arms differ most, the TIDE
error breakdown and the box explanations. Each returns the template's data, or None where the run lacks what it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from ....rundir import RunDir
from ..common import Arm
from .card import dataset_card
from .errors import error_breakdown
from .evidence import DetectionEvidence, detection_evidence
from .explanations import box_explanations
from .gallery import gallery
from .per_class_ap import per_class_ap
from .pr_curves import precision_recall


@dataclass
class SectionInputs:
    """What the task sections read; the stored detections are matched once, on first use."""

    rd: RunDir
    data: dict
    arms: dict[str, Arm]
    verdict: dict | None

    @property
    def classes(self) -> list[str]:
        return self.data["classes"]

    @cached_property
    def evidence(self) -> DetectionEvidence | None:
        return detection_evidence(self.rd, self.arms)


SECTIONS: dict[str, Callable[[SectionInputs], dict | None]] = {
    "dataset_card": lambda i: dataset_card(i.data, i.classes, i.evidence),
    "per_class_ap": lambda i: per_class_ap(i.arms, i.classes),
    "precision_recall": lambda i: precision_recall(i.evidence, i.classes),
    "gallery": lambda i: gallery(i.evidence, i.data, i.classes),
    "error_breakdown": lambda i: error_breakdown(i.verdict),
    "box_explanations": lambda i: box_explanations(i.rd, i.classes),
}
