"""Fixtures of the access tests: both stacks with principals, and one simulator process per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parents[1]), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from access_harness import Simulator, Stacks, run_both  # noqa: E402


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Stacks:
    """Both stacks run offline with the tests' principals (`access_harness.principals_config`)."""
    # The committed stacks let CI read values (Pulumi reads versions back); the matrix is checked with
    # it off here and on in test_with_ci_reading_values, so both paths are proven.
    return run_both(tmp_path_factory.mktemp("access-stacks"), ciReadsValues=False)


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    """The independent IAM simulator: one node process for the whole test module."""
    sim = Simulator()
    try:
        yield sim
    finally:
        sim.close()
