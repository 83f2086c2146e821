"""The maximum rotation period applies to secrets rotated by hand (`rotation: manual` + `rotate_every_days`).

Compliant and failing fixtures beside the planted cases of the corpus (`manual-period-*`).
"""

from __future__ import annotations

import policy_fixtures as f
from policy_cases import _manual
from test_policy_pack import run

RULE = "secret-rotation-required"


def test_a_period_within_the_maximum_passes() -> None:
    assert run(_manual(f.base_stack(), "180")) == []
    assert run(_manual(f.base_stack(), "365")) == []


def test_the_maximum_comes_from_the_policy_config() -> None:
    config = {RULE: {"maxManualRotationDays": 90}}
    violations = run(_manual(f.base_stack(), "180"), config)
    assert [(v.policy, v.message) for v in violations] == [(RULE, (
        "critical secret api-token is rotated by hand every 180 days, slower than the 90-day maximum for hand "
        "rotation; rotate it at least every 90 days."))]
    assert run(_manual(f.base_stack(), "90"), config) == []


def test_a_period_can_be_required() -> None:
    stack = _manual(f.base_stack(), "180")
    stack = f.set_tag("api-token", "rotate-every-days", None)(stack)
    assert run(stack) == [], "without requireManualPeriod a period is optional"
    violations = run(stack, {RULE: {"requireManualPeriod": True}})
    assert [(v.policy, v.message) for v in violations] == [(RULE, (
        "critical secret api-token is rotated by hand with no period; tag it rotate-every-days=<days> (catalog "
        "`rotate_every_days`) of at most 365 days."))]


def test_only_critical_manual_secrets_are_held_to_it() -> None:
    configuration = f.set_tag("api-token", "class", "configuration")(_manual(f.base_stack(), "900"))
    assert run(configuration) == []
    compromise = f.set_tag("api-token", "rotation", "on-compromise")(_manual(f.base_stack(), "900"))
    assert run(compromise) == [], "on-compromise has no period (the catalog refuses one)"
