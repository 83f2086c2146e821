"""A few simulated weeks of tests/life/year.py: server credentials rotated against real PostgreSQL and Redis,
consumer processes of every kind logging in across every rotation."""

from __future__ import annotations

import random
from pathlib import Path

from tests.life.year import run_year, servers


def test_weeks_of_rotations_with_consumers(tmp_path: Path) -> None:
    seed = random.SystemRandom().getrandbits(32)
    with servers() as (moto, pg, redis):
        result = run_year(moto, pg, redis, tmp_path, size=8, days=21, seed=seed, every_days=(7,))
    print(result.as_json())
    assert result.values_put_back == 0
