"""Ten simulated days of tests/life/year.py: a generated catalog of server credentials rotated every 4 days against real
PostgreSQL and Redis (and tokens), deploys and refreshes by the test engine, two incident rotations, a rollback, a
failed rotation and its clean-up, three catalog edits (a secret added, one removed, a schedule changed) applied by the
weekly deploy, and consumer processes of every kind (ECS, Lambda cold start, caches, per request) logging in across
every rotation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from components.consumers import EcsService, check
from components.errors import ConfigurationError
from tests.life.year import DAY, KINDS, _catalog_entry, production_accepts, run_year, servers

NO_OLD_VALUE_EXPOSURE = ("postgres-alternating-users",)
"""Strategies whose previous credential outlives every accepted consumer (docs/consumers.md)."""


def test_ten_days_with_consumers_of_every_kind_and_catalog_edits(tmp_path: Path) -> None:
    seed = random.SystemRandom().getrandbits(32)
    with servers() as (moto, pg, redis):
        result = run_year(moto, pg, redis, tmp_path, size=5, days=10, seed=seed, every_days=(4,), watched=1,
                          check_every=DAY, checks_after=(1, 240, 1620))
    where = (seed, result.events)
    assert result.values_put_back == 0 and result.preview_changes == 0, where
    assert all(n >= 2 for n in result.rotations.values()) and len(result.rotations) == 4, (result.rotations, where)
    assert result.failed_rotations == 1 and any("cleared and rotated" in e for e in result.events), where
    tallies = result.consumers
    for strategy, kinds in tallies.items():
        assert set(kinds) == set(KINDS), strategy
        for kind, tally in kinds.items():
            assert tally.logins > 10, (strategy, kind)
            # Each row says what production says of that pair, and a refused one says why.
            assert (tally.accepted, tally.refused_because) == production_accepts(
                tmp_path, f"lifeapp/staging/cred-{list(tallies).index(strategy):04d}", KINDS[kind].declared)
            if not tally.accepted:
                assert "may keep the old value" in tally.refused_because, (strategy, kind, tally)
                continue
            # What production accepts never fails past its tolerance (0 s: never)...
            assert tally.failed_beyond_tolerance == 0, (strategy, kind, tally, where)
            # ...and never at all where nothing can hold a revoked credential.
            if kind == "request" or strategy in NO_OLD_VALUE_EXPOSURE:
                assert tally.failed == 0, (strategy, kind, tally, where)
    assert tallies["postgres-alternating-users"]["ecs"].restarts >= 2
    # The Lambda consumer started again after each rotation of its secret, through the restart function's code.
    assert tallies["postgres-alternating-users"]["lambda-cold-start"].restarts >= 2, where
    # A declaration the program refuses in production fails logins when it is run anyway: a single-user PostgreSQL
    # credential read at task start by an ECS service, restarted 10-25 minutes after the password changed.
    wrong = tallies["postgres-single-user"]["ecs"]
    assert not wrong.accepted and wrong.failed > 0, (wrong, where)
    name = "lifeapp/staging/cred-0000"
    with pytest.raises(ConfigurationError, match="postgres-alternating-users"):
        check(_catalog_entry(tmp_path, name), {"c": EcsService(cluster="life", service="app")},
              "Pulumi.production.yaml", production=True)
    # The catalog edits, all on the one weekly deploy: the new secret's resources created (and its first install run
    # without a failed step), the removed one's deleted, the changed schedule's rotation updated; the preview after it
    # shows nothing, and no value came back.
    (edits,) = result.edits
    assert [e["edit"] for e in edits["edits"]] == ["add", "remove", "schedule"], edits
    steps = edits["steps"]
    assert {s.split()[0] for s in steps if "cred-0005" in s} == {"create"} and len(
        [s for s in steps if "cred-0005" in s]) == 3, steps
    assert {s.split()[0] for s in steps if "cred-0004" in s} == {"delete"}, steps
    assert any(s.startswith("update") and "rotate-token-cred-0003" in s for s in steps), steps
    assert edits["failedSteps"] == [] and edits["previewChangesAfter"] == 0 and edits["valuesPutBack"] == 0, edits
    # The daily refresh read only what moved, and the weekly full refresh found nothing it had missed.
    assert 0 < result.refreshed_daily < result.refreshed_full and result.refresh_missed == 0, result
