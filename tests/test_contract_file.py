"""docs/aws-contract.md lists every behaviour of AWS, the provider, the engine and the ECS agent that the
program relies on. A row is only worth something while the test it names exists: each row must name a
source and at least one test, and every test file and test function it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "docs" / "aws-contract.md"

# `tests/x.py`, `tests/x.py::test_a`, and `::test_b` continuing the last file named in the same cell.
_REFERENCE = re.compile(r"(tests/[\w/.-]+\.py)?(?:::(\w+))?")


def _rows() -> list[tuple[str, list[str]]]:
    """(section, cells) of every table row that is not a header or a separator."""
    rows, section = [], ""
    for line in CONTRACT.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("|") and not line.startswith("| behaviour") and not line.startswith("| ---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            rows.append((section, cells))
    return rows


def _references(cell: str) -> list[tuple[str, str | None]]:
    found, current = [], None
    for code in re.findall(r"`([^`]+)`", cell):
        for match in _REFERENCE.finditer(code):
            path, name = match.group(1), match.group(2)
            if path:
                current = path
            if path or name:
                found.append((current or "", name))
    return found


def test_the_contract_has_rows_in_every_section() -> None:
    sections = {s for s, _ in _rows()}
    headings = {line[3:] for line in CONTRACT.read_text().splitlines() if line.startswith("## ")}
    assert headings - sections == set(), f"sections without a row: {sorted(headings - sections)}"


def test_every_row_names_a_source_and_a_test_that_exists() -> None:
    problems = []
    for section, cells in _rows():
        if len(cells) != 4:
            problems.append(f"{section}: a row of {len(cells)} cells: {cells[:1]}")
            continue
        behaviour, _, source, tests = cells
        if not source:
            problems.append(f"{section}: '{behaviour}' names no source")
        refs = _references(tests)
        if not refs:
            problems.append(f"{section}: '{behaviour}' names no test")
        for path, name in refs:
            file = REPO / path
            if not path or not file.exists():
                problems.append(f"{section}: '{behaviour}' names a missing test file {path!r}")
            elif name and not re.search(rf"^\s*(async )?def {name}\b|^class {name}\b", file.read_text(), re.M):
                problems.append(f"{section}: '{behaviour}' names {path}::{name}, which does not exist")
    assert problems == []


def test_a_missing_test_is_reported() -> None:
    assert _references("`tests/test_day_one.py::test_a`, `::test_b`") == [
        ("tests/test_day_one.py", "test_a"), ("tests/test_day_one.py", "test_b")]
    assert _references("pack rule `secret-name-arn-suffix`") == []
