"""A task's own report sections, built by the names its descriptor lists (``TaskDescriptor.sections``), so the
run page shows them by what the descriptor and the run's files say, never by testing the task's name."""

from __future__ import annotations

from ...rundir import RunDir, layout
from ...tasks.descriptor import TaskDescriptor
from ..interpret_boxes import BOX_METHODS_WORDS
from .common import Arm
from .detection import SECTIONS as DETECTION, SectionInputs

BUILDERS = {**DETECTION}
MISSING = {  # what each section needs, for the "Not in this report" line of a section the run cannot show yet
    "precision_recall": f"precision-recall curves (needs {layout.TEST_ANNOTATIONS_JSON} and "
                        f"{layout.SEED_PATTERN}/{layout.DETECTIONS_JSON})",
    "gallery": f"gallery of the images where the arms differ most (needs {layout.TEST_ANNOTATIONS_JSON} and "
               f"{layout.DETECTIONS_JSON} of a seed both arms ran)",
}

EXPLANATION_WORDS = {"box_explanations": BOX_METHODS_WORDS}
"""How the "Not in this report" line names a task's own explanations, by its section's name."""


def task_sections(terms: TaskDescriptor, rd: RunDir, data: dict, arms: dict[str, Arm], verdict: dict | None) -> dict:
    """{section name: its data or None} for every section the task names."""
    inputs = SectionInputs(rd, data, arms, verdict)
    return {name: BUILDERS[name](inputs) for name in terms.sections}


def task_missing(sections: dict, verdict: dict | None, report_command: str) -> list[str]:
    """Lines for the task sections a run lacks: the per-image ones without stored detections, the error
    breakdown of a verdict made before it was recorded."""
    missing = [line for name, line in MISSING.items() if name in sections and sections[name] is None]
    if "error_breakdown" in sections and sections["error_breakdown"] is None and verdict is not None:
        missing.append(f"TIDE error breakdown ({layout.VERDICT_JSON} was made before it was recorded: delete it and "
                       f"{report_command} to compute it again)")
    return missing
