"""Every flag the README and docs/ name for xferdiag exists on its command line (a renamed or removed flag
leaves the docs wrong); flags of other programs are recognised by the program the same line runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from xferdiag.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
OTHER_PROGRAMS = ("torchrun", "pip ", "benchmarks", "chromium", "apt-get", "tests.docs_regen")  # lines running these name their own flags
OTHER_FLAGS = {"--standalone": "torchrun", "--quick": "the benchmarks"}  # named in prose, away from their program


def _xferdiag_flags() -> set[str]:
    flags, parsers = set(), [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return flags


def _documented() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(program in line for program in OTHER_PROGRAMS):
                continue
            for flag in FLAG.findall(line):
                found.setdefault(flag, []).append(f"{path.name}:{number}")
    return found


def test_every_flag_the_docs_name_exists():
    known = _xferdiag_flags()
    unknown = {flag: where[:3] for flag, where in _documented().items() if flag not in known | set(OTHER_FLAGS)}
    assert not unknown, f"flags named in the docs that no xferdiag command takes: {unknown}"


def test_the_check_sees_the_flags():
    assert {"--data", "--task", "--backbone", "--no-compute", "--resume"} <= _xferdiag_flags()
    assert {"--data", "--budget"} <= set(_documented())
