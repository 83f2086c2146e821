"""Which Secrets Manager calls a PostgreSQL rotation makes: setSecret and testSecret describe nothing
(the AWSPENDING read carries the stages), and AWSPREVIOUS is read only when single user needs it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from rotation_harness import STEPS, Harness
from servers import PostgresServer, new_password

pytestmark = pytest.mark.servers


class Calls:
    """(step, operation, VersionStage) of every call of the harness's client while a step runs."""

    def __init__(self) -> None:
        self.step = "-"
        self.made: list[tuple[str, str, str | None]] = []

    def hook(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        self.made.append((self.step, event_name.rsplit(".", 1)[-1], params.get("VersionStage")))

    def of(self, step: str) -> list[tuple[str, str | None]]:
        return [(operation, stage) for s, operation, stage in self.made if s == step]

    def in_steps(self) -> int:
        """Calls the rotation function made (not the test's own)."""
        return sum(1 for s, _, _ in self.made if s in STEPS)


@pytest.fixture
def calls(harness: Harness) -> Iterator[Calls]:
    counted = Calls()
    harness.sm.meta.events.register("provide-client-params.secrets-manager.*", counted.hook)
    try:
        yield counted
    finally:
        harness.sm.meta.events.unregister("provide-client-params.secrets-manager.*", counted.hook)


def _rotate_by_steps(harness: Harness, calls: Calls, name: str, fn: str) -> None:
    token = harness.rotate(name, fn)  # paused: RotateSecret only opens the AWSPENDING version
    for step in STEPS:
        calls.step = step
        harness.step(name, step, token, fn)
    calls.step = "-"
    assert harness.version_of(name, "AWSCURRENT") == token


def _logs_in(pg: PostgresServer, data: dict[str, Any]) -> bool:
    return pg.can_login(data["username"], data["password"])


def _secret(pg: PostgresServer, user: str, password: str, **extra: Any) -> str:
    return json.dumps({"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                       "username": user, "password": password, **extra})


def test_single_user_rotation_calls(harness: Harness, pg: PostgresServer, name: str, calls: Calls) -> None:
    user, password = f"calls_{uuid.uuid4().hex[:8]}", new_password()
    pg.create_role(user, password)
    harness.secret(name, _secret(pg, user, password))
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    _rotate_by_steps(harness, calls, name, fn)
    assert calls.of("setSecret") == [("GetSecretValue", "AWSPENDING"), ("GetSecretValue", "AWSCURRENT")]
    assert calls.of("testSecret") == [("GetSecretValue", "AWSPENDING")]
    # createSecret does not read AWSPENDING first: PutSecretValue refuses a second value under the token.
    assert calls.of("createSecret") == [("DescribeSecret", None), ("GetSecretValue", "AWSCURRENT"),
                                        ("PutSecretValue", None)]
    # finishSecret reads the AWSPENDING value before moving AWSCURRENT onto it (an out-of-order
    # finishSecret must not empty the secret).
    assert calls.of("finishSecret")[:2] == [("DescribeSecret", None), ("GetSecretValue", "AWSPENDING")]
    assert calls.in_steps() == 10
    _rotate_by_steps(harness, calls, name, fn)  # an AWSPREVIOUS exists now: still not read
    assert not [c for c in calls.made if c[2] == "AWSPREVIOUS"]


def test_alternating_users_never_read_awsprevious(harness: Harness, pg: PostgresServer, name: str,
                                                  calls: Calls) -> None:
    user, password = f"calls_{uuid.uuid4().hex[:8]}", new_password()
    pg.create_role(user, password)
    master = harness.secret(name + "-admin", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, _secret(pg, user, password, masterarn=master))
    fn = harness.function("postgres-alternating-users", {name: {}}, paused=True)
    for _ in range(3):
        calls.made.clear()
        _rotate_by_steps(harness, calls, name, fn)
        assert not [c for c in calls.made if c[2] == "AWSPREVIOUS"]
        assert "DescribeSecret" not in {op for op, _ in calls.of("setSecret") + calls.of("testSecret")}
        assert calls.in_steps() == 11


def test_single_user_reads_awsprevious_only_when_awscurrent_fails(
    harness: Harness, pg: PostgresServer, name: str, calls: Calls,
) -> None:
    """A rotation that died after setSecret left the server on the password of a version that is now
    AWSPREVIOUS (a later value was put as AWSCURRENT by hand): AWSCURRENT fails, AWSPREVIOUS is read."""
    user, password = f"calls_{uuid.uuid4().hex[:8]}", new_password()
    pg.create_role(user, password)
    harness.secret(name, _secret(pg, user, password))
    harness.sm.put_secret_value(SecretId=name, SecretString=_secret(pg, user, new_password()),
                                VersionStages=["AWSCURRENT"])  # the server still has the first password
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    _rotate_by_steps(harness, calls, name, fn)
    assert ("GetSecretValue", "AWSPREVIOUS") in calls.of("setSecret")
    assert _logs_in(pg, harness.json(name))


def test_a_replayed_createsecret_keeps_the_tested_value(harness: Harness, pg: PostgresServer, name: str,
                                                        calls: Calls) -> None:
    """createSecret replayed after testSecret (a retry, or a rotation resumed after finishSecret failed): the
    put of a new value under the token is refused, the value setSecret installed and testSecret tested stays
    AWSPENDING, and finishSecret moves AWSCURRENT onto exactly that value."""
    user, password = f"calls_{uuid.uuid4().hex[:8]}", new_password()
    pg.create_role(user, password)
    master = harness.secret(name + "-admin", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, _secret(pg, user, password, masterarn=master))
    fn = harness.function("postgres-alternating-users", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS[:3]:
        harness.step(name, step, token, fn)
    tested = harness.json(name, "AWSPENDING")
    calls.step = "createSecret"
    harness.step(name, "createSecret", token, fn)
    calls.step = "-"
    assert calls.of("createSecret") == [("DescribeSecret", None), ("GetSecretValue", "AWSCURRENT"),
                                        ("PutSecretValue", None), ("GetSecretValue", "AWSPENDING")]
    assert harness.json(name, "AWSPENDING") == tested
    harness.step(name, "finishSecret", token, fn)
    assert harness.version_of(name, "AWSCURRENT") == token
    assert harness.json(name) == tested
    assert _logs_in(pg, tested) and _logs_in(pg, {"username": user, "password": password})
