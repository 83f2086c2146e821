"""Every example catalog (examples/<app>, its staging stack) through 30 simulated days on moto
(tests/life/seeds.py): rotations every 5 days instead of the catalog's months, so that each rotated secret turns
over five times, a daily refresh, a weekly preview and deploy; the values the stack files leave to
`pulumi config set --secret` supplied at run time, so that the credentials waiting for them are deployed too.
No deploy puts a value back, no preview shows a change.
PostgreSQL and Redis credentials rotate without server logins here (the examples' servers do not exist); the span
says which, and tests/life/test_year.py runs those strategies against real servers. `python -m bench.life --examples 30`
runs the production stacks too."""

from __future__ import annotations

import random

import pytest

from bench.life import APPS
from tests.life.seeds import SERVER_STRATEGIES, seed_span
from tests.servers import MotoServer

DAYS, EVERY = 30, 5


@pytest.mark.parametrize("app", APPS)
def test_thirty_days_of_each_example(moto: MotoServer, app: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed = random.SystemRandom().getrandbits(32)
    for stack in ("staging",):
        span = seed_span(moto, app, DAYS, seed, stack_name=stack, rotate_every_days=EVERY)
        where = (app, stack, seed, span)
        assert span.failed_rotations == [], where
        assert span.values_put_back == 0 and span.preview_changes == 0, where
        # Every rotation the stack schedules ran at days 5-6, 10-11, ..., 25-26 (a random hour of the day it falls due).
        rotated = sum(span.rotations.values())
        assert rotated and rotated % ((DAYS - 1) // EVERY) == 0, where
        # Every server credential that rotated did so without logins, and says so.
        assert set(span.without_logins) == {s for s in span.rotations if s in SERVER_STRATEGIES}, where
        with capsys.disabled():
            logins = (f"; WITHOUT SERVER LOGINS (no server configured): {span.without_logins}"
                      if span.without_logins else "")
            print(f"\n{app}/{stack}: {span.secrets} secrets ({len(span.supplied)} values supplied at run time), "
                  f"{span.rotations} rotations in {DAYS} days, "
                  f"put back {span.values_put_back}, preview changes {span.preview_changes}{logins}"
                  + (f"; not played: {span.not_rotated}" if span.not_rotated else ""))
