"""Every relative link of README.md and docs/*.md leads to a file of the repository, and a link to a section
to a heading that page has (as GitHub makes its anchors), so moving or renaming a page or section cannot
leave a link behind."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs_helpers import FENCE, ROOT, pages

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(h) for h in HEADING.findall(FENCE.sub("", page.read_text()))}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, section = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {path})")
        elif section and file.suffix == ".md" and section not in anchors(file):
            broken.append(f"{target} (no heading #{section} in {file.name})")
    return broken


def test_every_relative_link_and_section_exists():
    broken = {str(page.relative_to(ROOT)): found for page in pages() if (found := broken_links(page))}
    assert not broken, f"links to nothing: {broken}"


def test_the_check_sees_a_missing_file_and_a_missing_section(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## The `--flag` (short), explained\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#the---flag-short-explained) [no](gone.md) [bad](other.md#nothing) "
                    "[web](https://example.org/x#y)\n```\n[in code](gone-too.md)\n```\n")
    assert broken_links(page) == ["gone.md (no file gone.md)", "other.md#nothing (no heading #nothing in other.md)"]
