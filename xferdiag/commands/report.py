"""``xferdiag report``: compute what the run directory lacks and has the inputs for, then render it."""

from __future__ import annotations

from pathlib import Path

from .. import rundir
from ..explainers.budget import DEFAULT_BUDGET, Budget
from ..modalities import can_explain_kind
from ..models import ModelSource
from ..report import Report, render_report
from .analyze import analyze_run
from .explain import explain_run
from .verdict import verdict_for_run


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def build_report(run_dir: str | Path, out: str | Path | None = None, *, compute: bool = True, quiet: bool = False,
                 budget: Budget | float | None = DEFAULT_BUDGET) -> Report:
    """Compute what is missing (unless ``compute=False``; explanations within ``budget`` seconds, see
    :func:`~xferdiag.commands.explain.explain_run`), then render the HTML report."""
    if compute:
        complete_run(run_dir, quiet=quiet, budget=budget)
    return render_report(run_dir, out)


def complete_run(run_dir: str | Path, *, quiet: bool = False, budget: Budget | float | None = DEFAULT_BUDGET) -> None:
    """Compute what the run directory lacks and has the inputs for (see :class:`~xferdiag.rundir.RunStatus`);
    the report lists the rest. A hand-written run directory with only the required files is rendered as it is."""
    config = rundir.validate(run_dir).get("config") or {}
    status = rundir.RunStatus.of(rundir.RunDir(run_dir), config, lambda: _has_pretrained(config))
    if status.can_compute("verdict"):
        verdict_for_run(run_dir)
    if status.can_compute("analysis"):
        analyze_run(run_dir, quiet=quiet)
    if status.can_compute("explanations") and can_explain_kind(rundir.read_data(rundir.RunDir(run_dir)).get("kind")):
        explain_run(run_dir, quiet=quiet, budget=budget)


def _has_pretrained(config: dict) -> bool:
    """Whether the config names the weights the model started from (a checkpoint, or NAME:WEIGHTS)."""
    source = ModelSource.parse(config["model"])
    return bool(config.get("pretrained_checkpoint") or source.weights or source.is_text)  # a text model's folder holds its weights
