"""The Python API, one plain function per command, for notebooks and research scripts.

Each mirrors its CLI subcommand and returns something useful in memory (a path, a dict of
results, a :class:`~xferdiag.report.Report` that displays itself in Jupyter). Configuration
arguments take a :class:`~xferdiag.config.RunConfig`, a dict of its fields, or the fields as
keyword arguments.
"""

from __future__ import annotations

from pathlib import Path

from .commands.analyze import analyze_run as analyze
from .commands.audit import audit as _audit
from .commands.demo import run_demo as demo
from .commands.explain import explain_run as explain
from .commands.finetune import finetune as _finetune, resume_config
from .commands.rank import rank_models as rank
from .commands.report import build_report
from .config import RunConfig
from .errors import ConfigError
from .models.tabular import resolve_config
from .report import Report, render_compare

__all__ = ["RunConfig", "analyze", "audit", "build_report", "compare", "demo", "explain", "finetune", "rank"]


def finetune(config: RunConfig | dict | None = None, out: str | Path = "xferdiag-run", *, resume: bool | str | Path = False,
             quiet: bool = False, **settings) -> Path:
    """Train the transfer arm and its scratch baseline; ``settings`` are RunConfig fields.

    ``resume=RUN_DIR`` continues that run with the settings it records, ``seeds=N`` (only) adding seeds
    to it, as ``xferdiag finetune --resume RUN_DIR --seeds N`` does.
    """
    if resume is not False and resume is not True:
        if config is not None or set(settings) - {"seeds"}:
            raise ConfigError("resume: a run resumed by its folder keeps the settings it records; give only seeds=N")
        return _finetune(resume_config(resume, settings.get("seeds")), resume, resume=True, quiet=quiet)
    return _finetune(_config(config, settings), out, resume=resume, quiet=quiet)


def audit(checkpoint: str | Path, config: RunConfig | dict | None = None, out: str | Path = "xferdiag-audit", *,
          quiet: bool = False, **settings) -> Path:
    """A run directory for a model fine-tuned elsewhere (``checkpoint``); ``settings`` are RunConfig fields
    (data, model, pretrained_checkpoint, head settings, and the scratch baseline's training budget)."""
    return _audit(_config(config, settings), checkpoint, out, quiet=quiet)


def compare(run_dirs: list[str | Path], out: str | Path) -> Report:
    """Several runs side by side, with CSV and JSON exports next to ``out``."""
    return render_compare(run_dirs, out)


def _config(config: RunConfig | dict | None, settings: dict) -> RunConfig:
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    config = (config or RunConfig()).replace(**settings) if settings else (config or RunConfig())
    return resolve_config(config)
