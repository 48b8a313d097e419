"""docs/cli.md is the parser rendered (xferdiag/cli_reference.py): a flag added, renamed or re-worded without
regenerating the page fails here, with the one command that regenerates it."""

from __future__ import annotations

import argparse

from tests.docs_helpers import ROOT
from xferdiag.cli import build_parser
from xferdiag.cli_reference import REGENERATE, render


def test_the_page_is_a_fresh_generation():
    page = (ROOT / "docs" / "cli.md").read_text()
    assert page == render(), f"docs/cli.md is stale: regenerate it with `{REGENERATE}` (from the repository root) and commit it"


def test_every_subcommand_and_flag_is_on_the_page_with_its_help():
    page = render()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert list(commands) == ["demo", "finetune", "audit", "analyze", "explain", "report", "rank", "compare"]
    for name, sub in commands.items():
        section = page.split(f"## xferdiag {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in (a for a in sub._actions if not isinstance(a, argparse._HelpAction)):
            for flag in action.option_strings:
                assert f"`{flag}`" in section, (name, flag)
            if action.help:
                assert " ".join(action.help.replace("%%", "%").split())[:60].replace("|", "\\|") in section, (name, action.dest)


def test_a_row_holds_pipes_choices_defaults_and_required_marks():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers().add_parser("go", help="do it")
    sub.add_argument("run_dir", metavar="RUN_DIR")
    sub.add_argument("--amp", choices=["on", "off"], default="off", help="a|b\n  on two lines")
    sub.add_argument("--out", required=True, help="where")
    sub.add_argument("--epochs", type=int, help="a RunConfig field: its default comes from there")
    sub.add_argument("--quiet", action="store_true", help="hush")
    sub.add_argument("--seed", type=int, default=0)
    lines = render(parser).splitlines()
    rows = lines[lines.index("## xferdiag go"):]
    assert rows[2] == "do it."
    assert "| `RUN_DIR` |  |  |  |" in rows
    assert "| `--amp` | `on` \\| `off` | `off` | a\\|b on two lines |" in rows
    assert "| `--out` | OUT |  | where (required) |" in rows
    assert "| `--epochs` | EPOCHS | *`10`* | a RunConfig field: its default comes from there |" in rows
    assert "| `--quiet` |  |  | hush |" in rows
    assert "| `--seed` | SEED | `0` |  |" in rows  # a default of 0 is a default, not 'none'
