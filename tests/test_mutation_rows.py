"""The mutation scores cannot go stale unnoticed: each row of `bench/results/mutation.json` records the
SHA-256 of the module and of the tests it was measured against, and docs/mutation-testing.md shows, for each
row, whether the checkout still matches it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_mutate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_script", REPO / "scripts" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


mutate = _load_mutate()


def test_every_stored_row_records_what_it_was_measured_against() -> None:
    stored = json.loads(mutate.RESULTS.read_text())["modules"]
    listed = {m.path for m in mutate.MODULES}
    assert set(stored) <= listed, f"rows of modules no longer listed: {sorted(set(stored) - listed)}"
    for path, row in stored.items():
        assert len(row.get("module_sha256", "")) == 64, path
        assert len(row.get("tests_sha256", "")) == 64, path


def test_the_documented_table_is_what_the_rows_and_the_checkout_say() -> None:
    """A change to a listed module (or to its tests) without `python scripts/mutate.py --write-table` fails
    here: the documented row would still read as current."""
    expected = mutate._table(json.loads(mutate.RESULTS.read_text()))
    assert mutate.documented_table() == expected, (
        "docs/mutation-testing.md's table is out of date: run `python scripts/mutate.py --write-table` "
        "(rows of changed modules then read `stale`), or run `make mutate MODULES=<module>` again")


@pytest.fixture
def small_repo(tmp_path: Path) -> tuple[Path, object]:
    """A copy of one listed module and its tests, to change one file at a time."""
    module = next(m for m in mutate.MODULES if m.path == "components/iam.py")
    for rel in [module.path, *(str(p.relative_to(REPO)) for p in mutate._test_files(REPO, module.tests))]:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, target)
    return tmp_path, module


def test_a_row_is_current_until_its_module_or_its_tests_change(small_repo: tuple[Path, object]) -> None:
    root, module = small_repo
    row = dict(mutate.fingerprint(module, root))
    assert mutate.freshness(module, row, root) == "current"
    conftest = root / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n# a fixture changed\n")
    assert mutate.freshness(module, row, root) == "tests changed"
    source = root / "components" / "iam.py"
    source.write_text(source.read_text() + "\n# one line more\n")
    assert mutate.freshness(module, row, root) == "stale"
    assert mutate.freshness(module, {"score": 100.0}, root) == "unknown"


def test_the_tests_of_a_module_include_the_helpers_pytest_loads_with_them() -> None:
    module = next(m for m in mutate.MODULES if m.path == "components/values.py")
    names = {str(p.relative_to(REPO)) for p in mutate._test_files(REPO, module.tests)}
    assert "tests/test_supplied_values.py" in names and "tests/conftest.py" in names
    assert not any(n.startswith("tests/rotation/") for n in names)
    folder = next(m for m in mutate.MODULES if m.path == "rotation/protocol.py")
    names = {str(p.relative_to(REPO)) for p in mutate._test_files(REPO, folder.tests)}
    assert "tests/rotation/conftest.py" in names and "tests/servers.py" in names


def test_a_documented_table_is_rewritten_between_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{mutate.TABLE_START}\nold\n{mutate.TABLE_END}\nafter\n")
    mutate.write_table("| new |", doc)
    assert doc.read_text() == f"before\n{mutate.TABLE_START}\n| new |\n{mutate.TABLE_END}\nafter\n"
    assert mutate.documented_table(doc) == "| new |"
