"""The Python API, one function per command, for notebooks and research scripts.

Each mirrors its CLI subcommand and returns something useful in memory (a path, a dict of
results, a :class:`~xferdiag.report.Report` that displays itself in Jupyter).
"""

from __future__ import annotations

from pathlib import Path

from .analysis import analyze_run as analyze
from .config import RunConfig
from .demo import run_demo as demo
from .engine.run import finetune as _finetune
from .explanation import explain_run as explain
from .report import Report, render_compare, render_report

__all__ = ["RunConfig", "analyze", "build_report", "compare", "demo", "explain", "finetune"]


def finetune(config: RunConfig | dict | None = None, out: str | Path = "xferdiag-run", *, resume: bool = False, quiet: bool = False, **settings) -> Path:
    """Train the transfer arm and its scratch baseline; ``settings`` are RunConfig fields."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    config = (config or RunConfig()).replace(**settings) if settings else (config or RunConfig())
    return _finetune(config, out, resume=resume, quiet=quiet)


def build_report(run_dir: str | Path, out: str | Path | None = None, *, compute: bool = True, quiet: bool = False) -> Report:
    """Compute what is missing (unless ``compute=False``), then render the HTML report."""
    if compute:
        complete_run(run_dir, quiet=quiet)
    return render_report(run_dir, out)


def compare(run_dirs: list[str | Path], out: str | Path) -> Report:
    """Several runs side by side, with CSV and JSON exports next to ``out``."""
    return render_compare(run_dirs, out)


def complete_run(run_dir: str | Path, *, quiet: bool = False) -> None:
    """Run the analyses and explanations that the run directory does not have yet."""
    from . import rundir

    run = rundir.RunDir(run_dir)
    run.check()
    if not (run.analysis / "transferability.json").is_file() or not (run.analysis / "similarity.json").is_file():
        analyze(run_dir, quiet=quiet)
    if not (run.explanations / "index.json").is_file():
        explain(run_dir, quiet=quiet)
