"""xferdiag: did transfer help, why, and where?

The Python API mirrors the command line: ``finetune``, ``audit``, ``analyze``, ``explain``,
``build_report``, ``compare`` and ``demo`` (see :mod:`xferdiag.api`); statistics live in :mod:`xferdiag.negative`
and :mod:`xferdiag.analyzers`. ``audit``, ``demo`` and ``explain`` are modules that run their API
function when called, so ``xferdiag.explain(run_dir)`` and ``xferdiag.explain.grad_cam(...)`` both
work. Imports are lazy so that ``xferdiag --help`` starts fast.
"""

import importlib

__version__ = "0.1.0"

_FUNCTIONS = ("analyze", "build_report", "compare", "finetune")
_CALLABLE_MODULES = ("audit", "demo", "explain")

__all__ = ["RunConfig", *_FUNCTIONS, *_CALLABLE_MODULES]


def __getattr__(name: str):
    if name in _FUNCTIONS:
        from . import api

        return getattr(api, name)
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
