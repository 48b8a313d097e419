"""``xferdiag report``: compute what the run directory lacks and has the inputs for, then render it."""

from __future__ import annotations

from pathlib import Path

from .. import rundir
from ..models import ModelSource
from ..report import Report, render_report
from .analyze import analyze_run
from .explain import explain_run
from .verdict import verdict_for_run


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def build_report(run_dir: str | Path, out: str | Path | None = None, *, compute: bool = True, quiet: bool = False) -> Report:
    """Compute what is missing (unless ``compute=False``), then render the HTML report."""
    if compute:
        complete_run(run_dir, quiet=quiet)
    return render_report(run_dir, out)


def complete_run(run_dir: str | Path, *, quiet: bool = False) -> None:
    """Compute what the run directory lacks and has the inputs for; the report lists the rest.

    The verdict needs both standard arms with predictions; explanations need the config's data and
    model and the transfer arm's model.pt; the analyses need the pretrained weights too. A
    hand-written run directory with only the required files is rendered as it is.
    """
    run = rundir.RunDir(run_dir)
    meta = rundir.validate(run_dir)
    arms = rundir.STANDARD_ARMS
    if not run.verdict_json.is_file() and all(run.seeds(a) for a in arms) and all(
            (run.seed_dir(a, s) / "predictions.npz").is_file() for a in arms for s in run.seeds(a)):
        verdict_for_run(run_dir)
    config = meta.get("config") or {}
    seeds = run.seeds("transfer")
    if not (config.get("data") and config.get("model") and seeds and (run.seed_dir("transfer", seeds[0]) / "model.pt").is_file()):
        return
    has_pretrained = config.get("pretrained_checkpoint") or ModelSource.parse(config["model"]).weights
    if has_pretrained and not all((run.analysis / f).is_file() for f in ("transferability.json", "similarity.json")):
        analyze_run(run_dir, quiet=quiet)
    if not (run.explanations / "index.json").is_file():
        explain_run(run_dir, quiet=quiet)
