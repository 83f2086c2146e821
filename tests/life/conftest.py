"""Fixtures of tests/life: one moto server per module, and stacks on it (tests/life/world.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.life.world import Life, world
from tests.servers import MotoServer, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def life(moto: MotoServer) -> Iterator[Callable[..., Life]]:
    """`life(app, variant, only=None)`: see `tests.life.world.world`."""
    with world(moto) as make:
        yield make
