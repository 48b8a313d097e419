"""xferdiag: did transfer help, why, and where?

The Python API mirrors the command line: ``finetune``, ``analyze``, ``explain``, ``build_report``,
``compare`` and ``demo`` (see :mod:`xferdiag.api`); statistics live in :mod:`xferdiag.negative`
and :mod:`xferdiag.analyzers`. Imports are lazy so that ``xferdiag --help`` starts fast.
"""

__version__ = "0.1.0"

_API = ("RunConfig", "analyze", "build_report", "compare", "demo", "explain", "finetune")


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'xferdiag' has no attribute {name!r}")


__all__ = list(_API)
