"""Reading the code blocks of README.md and docs/*.md, so that tests can run them as printed.

Conventions of the pages (README.md and docs/ say so where it matters):
- a ```bash, ```sh or ```console block is run; ```console holds ``$ command`` lines (a trailing backslash
  continues one) followed by what the command prints;
- ``<!-- not run: REASON -->`` on the line before a block keeps it out, with its reason;
- a ```python block whose first line is ``# NAME.py`` is that file, written before the page's blocks run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL = ("bash", "sh", "console")
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")
FILE_LINE = re.compile(r"#\s*([\w./-]+\.py)\s*$")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None  # the reason given, or None: the block must run

    @property
    def where(self) -> str:
        return f"{page_name(self.page)}:{self.line}"


def page_name(page: Path) -> str:
    """A page as messages name it: relative to the repository when it is in it."""
    return str(page.relative_to(ROOT) if page.is_relative_to(ROOT) else page)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().splitlines()
        reason = NOT_RUN.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, match.group(1), match.group(2), reason.group(1) if reason else None))
    return found


def shell_blocks(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.lang in SHELL]


def python_files(page: Path) -> dict[str, str]:
    """The page's ```python blocks that name their file on their first line, by file name."""
    files = {}
    for block in blocks(page):
        first = block.text.split("\n", 1)[0]
        if block.lang == "python" and (name := FILE_LINE.fullmatch(first.strip())):
            files[name.group(1)] = block.text
    return files


def console_steps(block: Block) -> list[tuple[str, list[str]]]:
    """A ```console block as (command, the lines shown as its output) pairs."""
    steps: list[tuple[str, list[str]]] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if not steps:
                raise AssertionError(f"{block.where}: a console block starts with '$ command', not {lines[i]!r}")
            steps[-1][1].append(lines[i])
            i += 1
            continue
        command = [lines[i][2:]]
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        steps.append(("\n".join(command), []))
        i += 1
    return steps


def shown_line_pattern(line: str) -> re.Pattern:
    """A shown output line as a pattern: any number where it shows one (a group each, in order), any text where it
    shows '...' (the shortest, so that a number after it is caught whole)."""
    parts = [NUMBER.sub("\0", piece) for piece in line.strip().split("...")]
    return re.compile(".*?".join(re.escape(part).replace("\0", f"({NUMBER.pattern})") for part in parts))


def printed_lines(printed: str) -> list[str]:
    """What a command printed, line by line, each step of a progress bar (``\\r``) a line of its own."""
    return [piece.strip() for line in printed.splitlines() for piece in line.split("\r")]


def missing_output(shown: list[str], printed: str) -> list[str]:
    """The shown lines that no printed line matches (numbers may differ; progress bars are ignored)."""
    actual = printed_lines(printed)
    return [line for line in shown if line.strip() and not any(shown_line_pattern(line).fullmatch(a) for a in actual)]


def refreshed_output(shown: list[str], printed: str) -> tuple[list[str], list[str]]:
    """The shown lines with their numbers as printed, and the shown lines that no printed line matches (kept as
    they are). Each line takes the first match after the one the line before it took (else the first match), its
    words and its '...' staying as the author wrote them."""
    actual, lines, missing, after = printed_lines(printed), [], [], 0
    for line in shown:
        pattern = shown_line_pattern(line)
        found = [i for i, a in enumerate(actual) if line.strip() and pattern.fullmatch(a)]
        if not found:
            lines.append(line)
            missing += [line] if line.strip() else []
            continue
        index = next((i for i in found if i >= after), found[0])
        lines.append(_with_numbers(line, pattern.fullmatch(actual[index]).groups()))
        after = index + 1
    return lines, missing


def _with_numbers(line: str, numbers: tuple[str, ...]) -> str:
    """The shown line with its numbers, in order, replaced by ``numbers``; its indent, words and '...' kept."""
    replacing = iter(numbers)
    indent = line[:len(line) - len(line.lstrip())]
    return indent + "...".join(NUMBER.sub(lambda _: next(replacing), piece) for piece in line.strip().split("..."))
