"""How the report speaks of a task's results: a torch-free description each task plug-in gives, looked
up by the task a run records (runs made before tasks were recorded are classification runs)."""

from __future__ import annotations

from dataclasses import dataclass

from .classification.terms import TERMS as CLASSIFICATION
from .detection.terms import TERMS as DETECTION


@dataclass(frozen=True)
class ReportTerms:
    """``metric``: the headline test metric in metrics.json; ``label``: how sentences name it; ``columns``:
    the per-arm table's other test metrics as (key, header, format "pct" or "num"); ``curves``: the
    learning-curve panels as (history column, title, scale), the training loss dashed on the panel of
    ``loss_panel``; ``evidence``: a did-not-learn warning's evidence keys (the arm's score, its baseline)
    and how the banner names them."""

    metric: str
    label: str
    header: str
    columns: tuple[tuple[str, str, str], ...]
    curves: tuple[tuple[str, str, float], ...]
    curves_lede: str
    loss_panel: str
    evidence: tuple[str, str, str, str]


TERMS = {"classification": ReportTerms(**CLASSIFICATION), "detection": ReportTerms(**DETECTION)}


def report_terms(task: str | None) -> ReportTerms:
    """The terms of the task a run records; an unknown name (a newer xferdiag's task) reads as classification."""
    return TERMS.get(task or "classification", TERMS["classification"])
