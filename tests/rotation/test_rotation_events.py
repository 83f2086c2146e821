"""Events the handler must refuse without touching AWSCURRENT: out of order, replayed, malformed."""

from __future__ import annotations

import pytest
from rotation_harness import Harness

from rotation import handler
from rotation.errors import RotationError, VersionStageError

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}


def test_finish_before_create_leaves_the_current_value(harness: Harness, name: str) -> None:
    """RotateSecret labels the new version AWSPENDING before createSecret stores anything: a finishSecret
    that arrives first (or is replayed for such a rotation) must not move AWSCURRENT onto no value."""
    harness.secret(name, "start-value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    before = harness.version_of(name, "AWSCURRENT")
    token = harness.rotate(name, fn)
    assert "AWSPENDING" in harness.stages(name)[token], "the rotation has begun"
    with pytest.raises(VersionStageError, match="has no value yet"):
        harness.step(name, "finishSecret", token, fn)
    assert harness.version_of(name, "AWSCURRENT") == before
    unchanged = harness.value(name) == "start-value"
    assert unchanged
    # The rotation can still complete in order afterwards.
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        harness.step(name, step, token, fn)
    assert harness.version_of(name, "AWSCURRENT") == token


@pytest.mark.parametrize("event", [None, [], ["finishSecret"], "finishSecret", 7])
def test_an_event_that_is_not_an_object(harness: Harness, name: str, event: object) -> None:
    harness.secret(name, "start-value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    with pytest.raises(RotationError, match="a rotation event is a JSON object"):
        handler.handle(event, harness.environments[fn], harness.sm)  # type: ignore[arg-type]
    unchanged = harness.value(name) == "start-value"
    assert unchanged
