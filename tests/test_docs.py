"""The user-facing documents link only to things that exist.

README.md and docs/*.md point readers at other pages, committed results, figures and source
files. A link that no longer resolves (a file moved, a page renamed) is caught here, cheaply: no
model, no data, only the file system. Checked: every relative markdown link and image target, and
`#anchor` fragments against the headings of the page they point into (GitHub's anchor rule).
External links (http, https, mailto) are not fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# [text](target) and ![alt](target); the target ends at whitespace or ")" (an optional "title" follows).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def _prose(text: str) -> str:
    """The page without fenced code blocks and inline code spans, where brackets are not links."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text(encoding="utf-8")))


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in links(page):
        if target.startswith(EXTERNAL):
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            problems.append(f"{target}: no heading #{fragment} in {dest.name}")
    return problems


def test_pages_exist() -> None:
    for name in ("README.md", "docs/results.md", "docs/design.md", "docs/architecture.md"):
        assert (ROOT / name).is_file(), name


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_checker_catches_a_broken_link(tmp_path: Path) -> None:
    """The check itself: a missing file, a missing heading and a link inside code are told apart."""
    (tmp_path / "there.md").write_text("# A heading\n\n## Second, part (2)\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) [ok](there.md#second-part-2) [ok](#top)\n"
        "# Top\n"
        "[gone](missing.md) [bad anchor](there.md#nope) ![img](fig.png)\n"
        "`[not a link](nowhere.md)`\n```\n[also not](nowhere.md)\n```\n"
        "[web](https://example.org/x)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "there.md#nope: no heading #nope in there.md",
        "fig.png: no such file",
    ]
