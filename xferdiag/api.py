"""The Python API, one plain function per command, for notebooks and research scripts.

Each mirrors its CLI subcommand and returns something useful in memory (a path, a dict of
results, a :class:`~xferdiag.report.Report` that displays itself in Jupyter). Configuration
arguments take a :class:`~xferdiag.config.RunConfig`, a dict of its fields, or the fields as
keyword arguments. The commands that train or compute load torch; they are imported when first
used, so that ``build_report`` on a computed run never loads it, and ``compare`` only to judge a pair
of runs that share their test split with the runs' task (the paired test).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .commands.report import build_report
from .config import RunConfig
from .errors import ConfigError
from .report import Report

if TYPE_CHECKING:  # the names as readers and type checkers see them; at run time __getattr__ imports them
    from .commands.analyze import analyze_run as analyze
    from .commands.demo import run_demo as demo
    from .commands.explain import explain_run as explain
    from .commands.rank import rank_models as rank

__all__ = ["RunConfig", "analyze", "audit", "build_report", "compare", "demo", "explain", "finetune", "rank"]


def __getattr__(name: str):
    """``analyze``, ``demo``, ``explain`` and ``rank`` are their commands' own functions, imported on first use."""
    if name == "analyze":
        from .commands.analyze import analyze_run

        return analyze_run
    if name == "demo":
        from .commands.demo import run_demo

        return run_demo
    if name == "explain":
        from .commands.explain import explain_run

        return explain_run
    if name == "rank":
        from .commands.rank import rank_models

        return rank_models
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def finetune(config: RunConfig | dict | None = None, out: str | Path = "xferdiag-run", *, resume: bool | str | Path = False,
             quiet: bool = False, **settings) -> Path:
    """Train the transfer arm and its scratch baseline; ``settings`` are RunConfig fields.

    ``resume=RUN_DIR`` continues that run with the settings it records, ``seeds=N`` (only) adding seeds
    to it, as ``xferdiag finetune --resume RUN_DIR --seeds N`` does.
    """
    from .commands.finetune import finetune as run_finetune, resume_config

    if resume is not False and resume is not True:
        if config is not None or set(settings) - {"seeds"}:
            raise ConfigError("resume: a run resumed by its folder keeps the settings it records; give only seeds=N")
        return run_finetune(resume_config(resume, settings.get("seeds")), resume, resume=True, quiet=quiet)
    return run_finetune(_config(config, settings), out, resume=resume, quiet=quiet)


def audit(checkpoint: str | Path, config: RunConfig | dict | None = None, out: str | Path = "xferdiag-audit", *,
          quiet: bool = False, **settings) -> Path:
    """A run directory for a model fine-tuned elsewhere (``checkpoint``); ``settings`` are RunConfig fields
    (data, model, pretrained_checkpoint, head settings, and the scratch baseline's training budget)."""
    from .commands.audit import audit as run_audit

    return run_audit(_config(config, settings), checkpoint, out, quiet=quiet)


def compare(run_dirs: list[str | Path], out: str | Path) -> Report:
    """Several runs side by side, with CSV and JSON exports next to ``out``."""
    from .report import render_compare

    return render_compare(run_dirs, out)


def _config(config: RunConfig | dict | None, settings: dict) -> RunConfig:
    from .models.tabular import resolve_config

    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    config = (config or RunConfig()).replace(**settings) if settings else (config or RunConfig())
    return resolve_config(config)
