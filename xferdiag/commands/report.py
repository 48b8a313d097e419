"""``xferdiag report``: compute what the run directory lacks and has the inputs for, then render it.

Rendering a computed run needs no model: the commands that compute (and torch with them) are imported
only where something is missing, so ``report`` on a computed run imports no torch and takes about 2 s
as a whole process, not 7 (benchmarks/bench_report_process.py).
"""

from __future__ import annotations

from pathlib import Path

from .. import rundir
from ..config import DEFAULT_BUDGET, Budget
from ..report import Report, render_report


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
        from .verdict import verdict_for_run

        verdict_for_run(run_dir)
    if status.can_compute("analysis"):
        from .analyze import analyze_run

        analyze_run(run_dir, quiet=quiet)
    if status.can_compute("explanations"):
        from ..modalities.descriptor import describe_modality
        from .explain import explain_run

        if describe_modality(rundir.read_data(rundir.RunDir(run_dir))["kind"]).can_explain():
            explain_run(run_dir, quiet=quiet, budget=budget)


def _has_pretrained(config: dict) -> bool:
    """Whether the config names the weights the model started from (a checkpoint, or NAME:WEIGHTS)."""
    from ..models import ModelSource  # asked only when the analysis is missing: parsing a name may load torchvision

    if config.get("pretrained_checkpoint"):  # a checkpoint answers before the name is parsed (a detector's is no classifier's)
        return True
    source = ModelSource.parse(config["model"])
    return bool(source.weights or source.from_directory  # a directory holds its weights
                or source.ships_weights)
