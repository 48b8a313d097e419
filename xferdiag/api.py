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
    from .commands.rank_finetune import Ranking

__all__ = ["RunConfig", "analyze", "audit", "build_report", "compare", "demo", "explain", "finetune", "rank"]


def __getattr__(name: str):
    """``analyze``, ``demo`` and ``explain`` are their commands' own functions, imported on first use."""
    if name == "analyze":
        from .commands.analyze import analyze_run

        return analyze_run
    if name == "demo":
        from .commands.demo import run_demo

        return run_demo
    if name == "explain":
        from .commands.explain import explain_run

        return explain_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def finetune(config: RunConfig | dict | None = None, out: str | Path = "xferdiag-run", *, resume: bool | str | Path = False,
             quiet: bool = False, label_column: str | None = None, text_column: str | None = None,
             command: list[str] | None = None, **settings) -> Path:
    """Train the transfer arm and its scratch baseline; ``settings`` are RunConfig fields.

    ``resume=RUN_DIR`` continues that run with the settings it records, ``seeds=N`` (only) adding seeds
    to it, as ``xferdiag finetune --resume RUN_DIR --seeds N`` does. ``label_column`` and ``text_column``
    name the columns of CSV/JSONL data; ``command`` is what run.json records as the command line.
    """
    from .commands.finetune import finetune as run_finetune, resume_config

    if resume is not False and resume is not True:
        if config is not None or set(settings) - {"seeds"}:
            raise ConfigError("resume: a run resumed by its folder keeps the settings it records; give only seeds=N")
        return run_finetune(resume_config(resume, settings.get("seeds")), resume, resume=True, quiet=quiet, command=command)
    config = _config(config, settings, label_column, text_column)
    return run_finetune(config, out, resume=resume, quiet=quiet, command=command)


def audit(checkpoint: str | Path, config: RunConfig | dict | None = None, out: str | Path = "xferdiag-audit", *,
          quiet: bool = False, label_column: str | None = None, text_column: str | None = None,
          command: list[str] | None = None, **settings) -> Path:
    """A run directory for a model fine-tuned elsewhere (``checkpoint``); ``settings`` are RunConfig fields
    (data, model, pretrained_checkpoint, head settings, and the scratch baseline's training budget)."""
    from .commands.audit import audit as run_audit

    return run_audit(checkpoint, _config(config, settings, label_column, text_column), out, quiet=quiet, command=command)


def rank(data: str, candidates: list[str], out: str | Path = "xferdiag-rank", *, config: RunConfig | dict | None = None,
         then_finetune: int | None = None, include_random: bool = False, quiet: bool = False,
         command: list[str] | None = None, **settings) -> Ranking:
    """Score ``candidates`` on ``data`` before training (ranking.json and ranking.csv in ``out``); ``settings``
    are RunConfig fields (``shots``, the split fractions and seed, ``image_size``, ``max_length``, ``truncate``,
    ``device``) over ``config``. With ``then_finetune=K``, fine-tune the top K pretrained candidates with that
    config, each beside its own scratch arm, and compare the predicted order with the measured one."""
    from .commands.rank_finetune import rank_and_finetune

    config = _settings(config, {**settings, "data": data})
    return rank_and_finetune(config, candidates, out, then_finetune=then_finetune, include_random=include_random,
                             quiet=quiet, command=command)


def compare(run_dirs: list[str | Path], out: str | Path) -> Report:
    """Several runs side by side, with CSV and JSON exports next to ``out``."""
    from .report import render_compare

    return render_compare(run_dirs, out)


def _settings(config: RunConfig | dict | None, settings: dict) -> RunConfig:
    """``config`` (a RunConfig, a dict of its fields or None for the defaults) with ``settings`` over it."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    return (config or RunConfig()).replace(**settings) if settings else (config or RunConfig())


def _config(config: RunConfig | dict | None, settings: dict, label_column: str | None = None,
            text_column: str | None = None) -> RunConfig:
    from .modalities.resolve import resolve_config

    return resolve_config(_settings(config, settings), label_column, text_column)
