"""The command-line reference page (docs/cli.md), generated from the parser so that it cannot drift from it.

``python -m xferdiag.cli_reference > docs/cli.md`` regenerates the page; ``tests/test_docs_cli.py`` fails
when the page differs from a fresh generation. Nothing here reads or writes a file.
"""

from __future__ import annotations

import argparse
import dataclasses

from .cli import build_parser
from .config import RunConfig

REGENERATE = "python -m xferdiag.cli_reference > docs/cli.md"

INTRO = f"""# Command-line reference

<!-- generated from xferdiag.cli.build_parser() by `{REGENERATE}`; do not edit by hand -->

Every command and every flag, with the help text that `xferdiag COMMAND --help` prints. `python -m xferdiag` is the
same program. A default in *italics* is `RunConfig`'s (`xferdiag/config.py`), used where neither the flag nor a key of
the same name (underscores for dashes) in `--config FILE.json|FILE.toml` gives the value; flags win over the file.
Exit codes: 0 ok, 2 a user error (one line on stderr saying what was wrong), 1 an internal failure.
The README's [your own model and data](../README.md#your-own-model-and-data) shows the commands in use."""


def _cell(text: object) -> str:
    """One Markdown table cell: a pipe would end the cell early and a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    return " / ".join(f"`{name}`" for name in action.option_strings)


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        return " | ".join(f"`{choice}`" for choice in action.choices)
    many = "one or more" if action.nargs == "+" else "any number" if action.nargs == "*" else ""
    if not action.option_strings:  # a positional: its name says what it is
        return many
    name = action.metavar or action.dest.upper()
    return f"{name} ({many})" if many else name


def _default(action: argparse.Action, config_defaults: dict[str, object]) -> str:
    if not any(action.default is unset for unset in (None, False, argparse.SUPPRESS)) and action.default != {}:
        return f"`{action.default}`"
    if action.option_strings and action.dest in config_defaults:
        value = config_defaults[action.dest]
        return "" if value in (None, [], "") else f"*`{value}`*"
    return ""


def _config_defaults() -> dict[str, object]:
    found = {}
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return found


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every subcommand, in the order ``--help`` lists them."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]


def _command_section(name: str, summary: str, parser: argparse.ArgumentParser, config_defaults: dict) -> list[str]:
    lines = [f"## xferdiag {name}", "", _cell(summary) + ".", "", "| flag | value | default | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        required = " (required)" if action.required and action.option_strings else ""
        lines.append(f"| {_names(action)} | {_cell(_value(action))} | {_default(action, config_defaults)} | "
                     f"{_cell((action.help or '').replace('%%', '%'))}{required} |")
    return lines + [""]


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """docs/cli.md's text for ``parser`` (default: xferdiag's own)."""
    parser = parser or build_parser()
    config_defaults = _config_defaults()
    commands = _subcommands(parser)
    lines = [INTRO, "", " · ".join(f"[{name}](#xferdiag-{name})" for name, _, _ in commands), ""]
    for name, summary, sub in commands:
        lines += _command_section(name, summary, sub, config_defaults)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
