"""Modules that are also the API function of the same name.

The Python API mirrors the command line, so ``xferdiag.explain(run_dir)`` explains a run, while
``xferdiag.explain.grad_cam(model, images)`` is one explainer of that module; ``xferdiag.audit``
and ``xferdiag.demo`` work the same way. Calling such a module calls ``xferdiag.api.<name>``.
"""

from __future__ import annotations

import sys
import types


def make_callable(module_name: str, api_name: str) -> None:
    """Turn the (already imported) module ``module_name`` into one that runs ``api.<api_name>`` when called."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            from . import api

            return getattr(api, api_name)(*args, **kwargs)

    CallableModule.__name__ = CallableModule.__qualname__ = f"CallableModule[{api_name}]"
    sys.modules[module_name].__class__ = CallableModule
