"""The Python API, one function per command, for notebooks and research scripts.

Each mirrors its CLI subcommand and returns something useful in memory (a path, a dict of
results, a :class:`~xferdiag.report.Report` that displays itself in Jupyter).
"""

from __future__ import annotations

from pathlib import Path

from . import rundir
from .analysis import analyze_run as analyze
from .audit import audit as _audit
from .config import RunConfig
from .demo import run_demo as demo
from .engine.run import finetune as _finetune
from .explanation import explain_run as explain
from .models.tabular import resolve_config
from .report import Report, render_compare, render_report

__all__ = ["RunConfig", "analyze", "audit", "build_report", "compare", "demo", "explain", "finetune"]


def finetune(config: RunConfig | dict | None = None, out: str | Path = "xferdiag-run", *, resume: bool = False, quiet: bool = False, **settings) -> Path:
    """Train the transfer arm and its scratch baseline; ``settings`` are RunConfig fields."""
    return _finetune(_config(config, settings), out, resume=resume, quiet=quiet)


def audit(checkpoint: str | Path, config: RunConfig | dict | None = None, out: str | Path = "xferdiag-audit", *,
          quiet: bool = False, **settings) -> Path:
    """A run directory for a model fine-tuned elsewhere (``checkpoint``); ``settings`` are RunConfig fields
    (data, model, pretrained_checkpoint, head settings, and the scratch baseline's training budget)."""
    return _audit(_config(config, settings), checkpoint, out, quiet=quiet)


def _config(config: RunConfig | dict | None, settings: dict) -> RunConfig:
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    config = (config or RunConfig()).replace(**settings) if settings else (config or RunConfig())
    return resolve_config(config)


@rundir.holds_lock  # one writer per run directory (docs/guarantees.md)
def build_report(run_dir: str | Path, out: str | Path | None = None, *, compute: bool = True, quiet: bool = False) -> Report:
    """Compute what is missing (unless ``compute=False``), then render the HTML report."""
    if compute:
        complete_run(run_dir, quiet=quiet)
    return render_report(run_dir, out)


def compare(run_dirs: list[str | Path], out: str | Path) -> Report:
    """Several runs side by side, with CSV and JSON exports next to ``out``."""
    return render_compare(run_dirs, out)


def complete_run(run_dir: str | Path, *, quiet: bool = False) -> None:
    """Compute what the run directory lacks and has the inputs for; the report lists the rest.

    The verdict needs both standard arms with predictions; explanations need the config's data and
    model and the transfer arm's model.pt; the analyses need the pretrained weights too. A
    hand-written run directory with only the required files is rendered as it is.
    """
    from .models import ModelSource
    from .negative import verdict_for_run

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
        analyze(run_dir, quiet=quiet)
    if not (run.explanations / "index.json").is_file():
        explain(run_dir, quiet=quiet)
