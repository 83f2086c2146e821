"""Every relative Markdown link in README.md and docs/*.md points at a file that exists (anchors ignored),
and none is absolute to this machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
# [text](target) or [text](target "title"); images too. Code spans and fenced blocks are not links.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE = re.compile(r"`[^`\n]*`")


def _links(path: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", path.read_text()))
    return LINK.findall(text)


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith("#")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in filter(_relative, _links(document)):
        file = target.split("#", 1)[0].split("?", 1)[0]
        if file.startswith("/"):
            broken.append(f"{target} (absolute: write it relative to {document.parent.relative_to(REPO) or '.'})")
            continue
        resolved = (document.parent / file).resolve()
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(target)
    assert broken == []


def test_the_readme_links_every_guide_in_docs() -> None:
    linked = {(REPO / t.split("#", 1)[0]).resolve() for t in filter(_relative, _links(REPO / "README.md"))}
    guides = {p.resolve() for p in (REPO / "docs").glob("*.md")}
    assert sorted(p.name for p in guides - linked) == []


def test_the_link_pattern_finds_links_and_skips_code(tmp_path: Path) -> None:
    sample = "see [a](docs/a.md#x) and ![img](b.png \"t\"), not `[c](c.md)`\n```\n[d](d.md)\n```\n[e](https://x.org)"
    path = tmp_path / "sample.md"
    path.write_text(sample)
    assert _links(path) == ["docs/a.md#x", "b.png", "https://x.org"]
