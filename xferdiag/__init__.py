"""xferdiag: did transfer help, why, and where?

The Python API mirrors the command line: ``finetune``, ``audit``, ``analyze``, ``explain``,
``build_report``, ``compare`` and ``demo`` (see :mod:`xferdiag.api`); statistics live in :mod:`xferdiag.negative`
and :mod:`xferdiag.analyzers`. Imports are lazy so that ``xferdiag --help`` starts fast.
"""

import sys
import types

__version__ = "0.1.0"

_API = ("RunConfig", "analyze", "audit", "build_report", "compare", "demo", "explain", "finetune")


class _Package(types.ModuleType):
    """API names resolve to the API functions even where a submodule has the same name.

    ``xferdiag.audit``, ``xferdiag.demo`` and ``xferdiag.explain`` are also modules, and importing
    a submodule binds it on the package, so a plain lazy ``__getattr__`` would hand out the module
    after the first import. Submodules stay importable as usual (``from xferdiag.audit import ...``).
    """

    def __getattribute__(self, name: str):
        if name in _API:
            from . import api

            return getattr(api, name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package


__all__ = list(_API)
