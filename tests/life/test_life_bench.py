"""A small run of bench/life.py's simulation: three weeks of rotations every 4 hours (AWS's fastest rate) with a
daily refresh and a weekly deploy. The program's first value comes back without the label, never with it."""

from __future__ import annotations

import random

from bench.life import simulate
from tests.life.world import world
from tests.servers import MotoServer

SECRET = "whatsapp-saas/staging/admin-token"


def test_three_weeks_of_four_hourly_rotations(moto: MotoServer) -> None:
    seed = random.SystemRandom().getrandbits(32)
    runs = {}
    for variant in ("labelled", "before"):
        with world(moto) as make:
            runs[variant] = simulate(make, "whatsapp-saas", variant, 21, random.Random(seed), 4,
                                     only="admin-token")[SECRET]
    labelled, before = runs["labelled"], runs["before"]
    assert labelled["rotations"] == before["rotations"] >= 120, seed
    assert labelled["valuesPutBack"] == 0 and before["valuesPutBack"] >= 1, (seed, labelled, before)
    assert labelled["versionsKept"] <= 101 and labelled["versionsRemovedByAws"] > 0, seed
