"""Regenerates the example outputs that README.md and docs/*.md show in their ```console blocks.

    python -m tests.docs_regen [--check] [PAGE ...]     (from the repository root; no PAGE: every page)

Each page runs exactly as tests/test_docs_commands.py runs it (its fixtures, in a fresh folder, every runnable
block in order, ``xferdiag`` through the same command server). The rule for what is rewritten:

- the ``$`` lines (the commands) and the choice of output lines are the author's: a block shows the lines worth
  reading, not all a command prints, and the script neither adds nor removes one;
- each shown line is matched as the test matches it (numbers may differ, ``...`` stands for any text) and takes
  the numbers of the printed line it matches; its words and every ``...`` stay as written (an elision is
  deliberate: it hides what varies, such as a path, a timing or a warning's tail);
- a shown line that nothing printed matches (its words changed) cannot be refreshed: the script names it with
  what the command printed and leaves the page alone (exit 1); the author rewrites that line.

Pages are written atomically. ``--check`` writes nothing: it prints a diff and exits 1 when a page's shown
outputs are not what its commands print, numbers included.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

from tests.docs_helpers import FENCE, Block, page_name, pages, refreshed_output
from tests.test_docs_commands import block_steps, command_environment, prepare_page, run_step, runnable
from xferdiag.atomic import write_text


def refreshed_block(block: Block, folder: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """Run the block's commands; its text with refreshed outputs, and a message per shown line nothing matches."""
    steps, problems = [], []
    for command, shown in block_steps(block):
        printed = run_step(block, command, folder, env)
        lines, missing = refreshed_output(shown, printed)
        problems += [f"{block.where}: {command!r} no longer prints {line!r}; it printed:\n{printed[-3000:]}" for line in missing]
        steps.append("\n".join([f"$ {command}", *lines]))
    return ("\n".join(steps) + "\n" if block.lang == "console" else block.text), problems


def refreshed_page(path: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """The page's text with every runnable console block's shown outputs as its commands print them now."""
    texts, problems = {}, []
    with tempfile.TemporaryDirectory(prefix="docs-regen-") as folder:
        prepare_page(path, Path(folder))
        for block in runnable(path):
            texts[block.line], found = refreshed_block(block, Path(folder), env)
            problems += found
    page, pieces, end = path.read_text(), [], 0
    for match in FENCE.finditer(page):
        line = page.count("\n", 0, match.start()) + 1
        if line in texts:
            pieces += [page[end:match.start(2)], texts[line]]
            end = match.end(2)
    return "".join([*pieces, page[end:]]), problems


def regenerate(paths: list[Path], env: dict[str, str], check: bool) -> int:
    """Refresh (or with ``check``, compare) each page; 1 when a page drifted (check) or a shown line is gone."""
    status = 0
    for path in paths:
        old = path.read_text()
        new, problems = refreshed_page(path, env)
        for problem in problems:
            print(problem, file=sys.stderr)
        name = page_name(path)
        if check and new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name,
                                                       f"{name} (as its commands print now)"))
        if problems or (check and new != old):
            status = 1
        elif new != old:
            write_text(path, new)
            print(f"refreshed: {name}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.docs_regen", description=__doc__.split("\n", 1)[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to refresh (default: README.md and docs/*.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; print a diff and exit 1 on drift")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.pages] or [path for path in pages() if runnable(path)]
    with tempfile.TemporaryDirectory(prefix="docs-regen-bin-") as bin_dir, command_environment(Path(bin_dir)) as env:
        try:
            return regenerate(paths, env, args.check)
        except AssertionError as failed:  # a command failed: the page cannot be refreshed until it runs again
            print(failed, file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
