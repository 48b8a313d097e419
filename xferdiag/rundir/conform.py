"""Bring a JSON value to the shape a TypedDict declares, once, where a run file is read.

Older and hand-written run directories lack keys or hold something else where a newer writer puts a
number or a list; the readers of :mod:`~xferdiag.rundir.documents` pass each file through
:func:`conform` so their callers (the report) trust the declared types instead of re-checking them.
The rules, read from the annotations with :func:`typing.get_type_hints`:

- a key of a TypedDict whose value has the wrong type is dropped, as if the file lacked it; a
  ``Required`` key (only containers are declared so) is always present, empty when absent or wrong;
- ``float`` takes any JSON number (never a bool), ``int`` an integer, ``Any`` anything;
- in a ``list[X]`` or ``dict[str, X]`` a wrong element becomes None where ``X`` admits None (so
  per-example lists keep their positions) and is left out otherwise;
- keys a TypedDict does not declare are kept as they are (newer writers may add some).
"""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

MISFIT = object()
"""What :func:`conform` returns for a value that fits nowhere (never stored)."""

_SCALARS = {float: (int, float), int: (int,), str: (str,), bool: (bool,)}


def conform(value: object, tp: object) -> Any:
    """``value`` shaped as ``tp`` declares, or :data:`MISFIT`."""
    if tp is Any or tp is object:
        return value
    if get_origin(tp) in (typing.Union, types.UnionType):
        return _union(value, get_args(tp))
    if is_typeddict(tp):
        return _typed_dict(value, tp) if isinstance(value, dict) else MISFIT
    if tp in _SCALARS:
        fits = isinstance(value, _SCALARS[tp]) and (tp is bool or not isinstance(value, bool))
        return value if fits else MISFIT
    container = get_origin(tp) or tp
    if container is list:
        return _list(value, get_args(tp)) if isinstance(value, list) else MISFIT
    if container is dict:
        return _dict(value, get_args(tp)) if isinstance(value, dict) else MISFIT
    raise TypeError(f"conform cannot check {tp!r}")  # a programming error in a TypedDict's annotations


def empty(tp: object) -> Any:
    """The value of a ``Required`` container key a file lacks: [], {} or the TypedDict of its own empties."""
    return conform({}, tp) if is_typeddict(tp) or (get_origin(tp) or tp) is dict else []


def _union(value: object, args: tuple) -> Any:
    if value is None:
        return None if type(None) in args else MISFIT
    for arg in args:
        if arg is not type(None) and (shaped := conform(value, arg)) is not MISFIT:
            return shaped
    return MISFIT


def _element(value: object, tp: object) -> Any:
    """An element of a list or dict: None in place of a misfit where ``tp`` admits None."""
    shaped = conform(value, tp)
    if shaped is MISFIT and get_origin(tp) in (typing.Union, types.UnionType) and type(None) in get_args(tp):
        return None
    return shaped


def _list(value: list, args: tuple) -> list:
    if not args:
        return value
    shaped = (_element(v, args[0]) for v in value)
    return [v for v in shaped if v is not MISFIT]


def _dict(value: dict, args: tuple) -> dict:
    if not args:
        return value
    shaped = ((str(k), _element(v, args[1])) for k, v in value.items())
    return {k: v for k, v in shaped if v is not MISFIT}


def _typed_dict(value: dict, tp: type) -> dict:
    out = dict(value)
    for key, hint in get_type_hints(tp).items():
        required = key in tp.__required_keys__
        shaped = conform(out[key], hint) if key in out else MISFIT
        if shaped is not MISFIT:
            out[key] = shaped
        elif required:
            out[key] = empty(hint)
        else:
            out.pop(key, None)
    return out
