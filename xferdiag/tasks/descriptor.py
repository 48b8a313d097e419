"""What a task supports and how the report speaks of its results: a torch-free description each task plug-in
gives, looked up by the task a run records (runs made before tasks were recorded are classification runs).
The report, the run directory's status and the CLI read it without loading any model."""

from __future__ import annotations

from dataclasses import dataclass

from .classification.descriptor import DESCRIPTOR as CLASSIFICATION
from .detection.descriptor import DESCRIPTOR as DETECTION


@dataclass(frozen=True)
class TaskDescriptor:
    """``metric``: the headline test metric in metrics.json; ``label``: how sentences name it; ``columns``:
    the per-arm table's other test metrics as (key, header, format "pct" or "num"); ``curves``: the
    learning-curve panels as (history column, title, scale), the training loss dashed on the panel of
    ``loss_panel``; ``evidence``: a did-not-learn warning's evidence keys (the arm's score, its baseline)
    and how the banner names them; ``per_class``: the per-class section made from per-example predictions, None
    where the task has none yet; ``stages``: the commands that work on its runs ("sweep": several transfer arms
    in one run; a stage it lacks ends in one line, and the report says its sections are not available);
    ``sections``: the task's own report sections by name (:mod:`xferdiag.report.sections.task` builds them; the
    run page shows those a run has the files for)."""

    metric: str
    label: str
    header: str
    columns: tuple[tuple[str, str, str], ...]
    curves: tuple[tuple[str, str, float], ...]
    curves_lede: str
    loss_panel: str
    evidence: tuple[str, str, str, str]
    per_class: str | None
    stages: tuple[str, ...]
    sections: tuple[str, ...] = ()

    def supports(self, stage: str) -> bool:
        return stage in self.stages

    def not_yet(self, name: str) -> str:
        """Why a stage this task lacks cannot run, in the words every such message uses."""
        return f"not available for {name} runs yet"


DESCRIPTORS = {"classification": TaskDescriptor(**CLASSIFICATION), "detection": TaskDescriptor(**DETECTION)}


def describe_task(task: str | None) -> TaskDescriptor:
    """The descriptor of the task a run records; an unknown name (a newer xferdiag's task) reads as classification."""
    return DESCRIPTORS.get(task or "classification", DESCRIPTORS["classification"])
