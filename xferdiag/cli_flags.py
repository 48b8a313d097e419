"""The command line's flags: one per RunConfig field, read from the field's type, and the one place a
library error's parameter becomes the flag a user typed."""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import get_args, get_origin

from .cli_help import FINETUNE_HELP
from .config import RunConfig


def flag(name: str) -> str:
    """``lime_samples`` as the command line spells it: ``--lime-samples``."""
    return "--" + name.replace("_", "-")


def _number_or_word(text: str) -> float | str:
    """A flag that takes a number or a keyword (``--scratch-lr 0.01`` or ``auto``); RunConfig checks which."""
    try:
        return float(text)
    except ValueError:
        return text


def _int_or_word(text: str) -> int | str:
    """A count or a keyword (``--scratch-epochs 8`` or ``auto``); RunConfig checks which."""
    try:
        return int(text)
    except ValueError:
        return text


def _numbers(text: str) -> float | list[float]:
    """A swept number (``--lr 0.01`` or ``--lr 0.01,0.001``: one transfer arm each); RunConfig checks the values."""
    values = [float(v) for v in text.split(",") if v.strip()]
    return values[0] if len(values) == 1 else values


def _comma_list(item: type):
    """``256,128`` as a list of ``item``s; argparse names the type in its error ("invalid comma-separated int value")."""
    def parse(text: str) -> list:
        return [item(v) for v in text.split(",") if v.strip()]

    parse.__name__ = f"comma-separated {item.__name__}"
    return parse


def _flag_options(name: str, hint: object) -> dict:
    """How argparse reads a RunConfig field, from its type: a bool is a --x/--no-x switch, a list of numbers is
    comma-separated, a number or keyword (``float | str``) is tried as a number first; anything else (``shots``'s
    ``5,20,all``, names) is passed as text for RunConfig to parse and check."""
    union = get_origin(hint) in (typing.Union, types.UnionType)
    options = tuple(a for a in get_args(hint) if a is not type(None)) if union else (hint,)
    if options == (bool,):
        return {"action": argparse.BooleanOptionalAction}
    if len(options) == 1 and get_origin(options[0]) is list and get_args(options[0])[0] in (int, float):
        item = get_args(options[0])[0]
        return {"type": _comma_list(item), "metavar": "N[,N,...]" if item is int else "X[,X,X]"}
    kinds = {(int,): int, (float,): float, (float, str): _number_or_word, (int, str): _int_or_word,
             (float, list[float]): _numbers}  # the last: a sweepable number
    return {"type": kinds.get(options, str), "metavar": name.upper()}


def add_config_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """One flag per RunConfig field (or per field in ``only``), all defaulting to 'not given' so a --config file can fill them."""
    hints = typing.get_type_hints(RunConfig)
    for f in (f for f in dataclasses.fields(RunConfig) if only is None or f.name in only):
        help_text = FINETUNE_HELP[f.name].replace("%", "%%")  # argparse formats help with %: "90%" must be "90%%"
        parser.add_argument(flag(f.name), dest=f.name, default=None, help=help_text, **_flag_options(f.name, hints[f.name]))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The flags given over --config's file (flags win), or over the defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name) is not None}
    if args.config:
        return RunConfig.from_file(args.config).replace(**given)
    return RunConfig(**given)


_PARAMETER_FIRST = re.compile(r"(?P<name>[a-z_][a-z0-9_]*)(?P<value> \S+)?: ")
"""A library error's opening: the parameter, perhaps the value it was given, a colon (``shots 5: ...``)."""


def as_flag(message: str, args: argparse.Namespace) -> str:
    """Library errors name their parameter first (``lime_samples: must be ...``, ``shots 5: ...``); on the
    command line that parameter is a flag the user typed, so the message names the flag (``--lime-samples: ...``,
    ``--shots 5: ...``)."""
    opening = _PARAMETER_FIRST.match(message)
    name = opening and opening["name"]
    if not name or not hasattr(args, name) or name in ("run_dir", "run_dirs", "func"):
        return message
    return flag(name) + message[len(name):]
