"""xferdiag: did transfer help, why, and where?

The Python API mirrors the command line: ``finetune``, ``audit``, ``analyze``, ``explain``,
``build_report``, ``compare``, ``rank`` and ``demo`` (see :mod:`xferdiag.api`). Statistics live in
:mod:`xferdiag.negative` and :mod:`xferdiag.analyzers`, explainers in :mod:`xferdiag.explainers`.
Imports are lazy so that ``xferdiag --help`` starts fast.
"""

from ._version import __version__

_API = ("analyze", "audit", "build_report", "compare", "demo", "explain", "finetune", "rank")

__all__ = ["RunConfig", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
