"""Ten simulated days of tests/life/year.py: a generated catalog of server credentials rotated every 4 days against real
PostgreSQL and Redis (and tokens), deploys and refreshes by the test engine, two incident rotations, a rollback, a
failed rotation and its clean-up, and consumer processes of every kind logging in across every rotation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from components.consumers import EcsService, check
from components.errors import ConfigurationError
from tests.life.year import DAY, _catalog_entry, run_year, servers

NO_OLD_VALUE_EXPOSURE = ("postgres-alternating-users",)
"""Strategies whose previous credential outlives every accepted consumer (docs/consumers.md)."""


def test_two_weeks_with_consumers_of_every_kind(tmp_path: Path) -> None:
    seed = random.SystemRandom().getrandbits(32)
    with servers() as (moto, pg, redis):
        result = run_year(moto, pg, redis, tmp_path, size=4, days=10, seed=seed, every_days=(4,), watched=1,
                          check_every=DAY, checks_after=(1, 240, 1620))
    where = (seed, result.events)
    assert result.values_put_back == 0 and result.preview_changes == 0, where
    assert all(n >= 2 for n in result.rotations.values()) and len(result.rotations) == 4, (result.rotations, where)
    assert result.failed_rotations == 1 and any("cleared and rotated" in e for e in result.events), where
    tallies = result.consumers
    for strategy, kinds in tallies.items():
        for kind, tally in kinds.items():
            assert tally.logins > 10, (strategy, kind)
            if not tally.accepted:
                continue
            # What the program accepts never fails past its tolerance (a cache of at most 300 s)...
            assert tally.failed_beyond_tolerance == 0, (strategy, kind, tally, where)
            # ...and never at all where nothing can hold a revoked credential.
            if kind == "request" or strategy in NO_OLD_VALUE_EXPOSURE:
                assert tally.failed == 0, (strategy, kind, tally, where)
    assert tallies["postgres-alternating-users"]["ecs"].restarts >= 2
    # A declaration the program refuses in production fails logins when it is run anyway: a single-user PostgreSQL
    # credential read at task start by an ECS service, restarted 10-25 minutes after the password changed.
    wrong = tallies["postgres-single-user"]["ecs"]
    assert not wrong.accepted and wrong.failed > 0, (wrong, where)
    name = "lifeapp/staging/cred-0000"
    with pytest.raises(ConfigurationError, match="postgres-alternating-users"):
        check(_catalog_entry(tmp_path, name), {"c": EcsService(cluster="life", service="app")},
              "Pulumi.production.yaml", production=True)
