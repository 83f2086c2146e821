"""testSecret refuses a pending credential that does not work, for every strategy that installs one: run
right after createSecret (setSecret skipped, so the server never learnt the pending password), it must
fail with a message that names the server and the user but no password. A testSecret that checked
nothing would let finishSecret make a broken credential current."""

from __future__ import annotations

from typing import Any

import pytest
from rotation_harness import Harness, assert_no_secret
from servers import PostgresServer, RedisServer
from test_rotation_postgres import _single, alternating  # noqa: F401  (fixture)
from test_rotation_redis import app  # noqa: F401  (fixture)

from rotation.errors import CredentialError

pytestmark = pytest.mark.servers


def _test_step_fails(harness: Harness, name: str, fn: str) -> tuple[str, dict[str, Any]]:
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    pending = harness.json(name, "AWSPENDING")
    with pytest.raises(CredentialError) as info:
        harness.step(name, "testSecret", token, fn)
    assert harness.version_of(name, "AWSCURRENT") != token
    return str(info.value), pending


def test_postgres_single_user(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, initial = _single(harness, pg, name, paused=True)
    message, pending = _test_step_fails(harness, name, fn)
    assert message.startswith(
        f"testSecret: AWSPENDING cannot log in to postgres {pg.host}:{pg.port}/postgres as {initial['username']}: ")
    assert "password authentication failed" in message
    assert_no_secret(message, initial["password"], pending["password"])


def test_postgres_alternating_users(harness: Harness, pg: PostgresServer, name: str,
                                    alternating: tuple[str, dict[str, Any], str]) -> None:  # noqa: F811
    fn, initial, _ = alternating
    message, pending = _test_step_fails(harness, name, fn)
    assert pending["username"] != initial["username"], "the other user of the pair"
    assert message.startswith(
        f"testSecret: AWSPENDING cannot log in to postgres {pg.host}:{pg.port}/postgres as {pending['username']}: ")
    assert_no_secret(message, initial["password"], pending["password"])


def test_redis_acl(harness: Harness, redis_srv: RedisServer, name: str,
                   app: tuple[str, dict[str, Any]]) -> None:  # noqa: F811
    fn, initial = app
    message, pending = _test_step_fails(harness, name, fn)
    assert message.startswith(
        f"testSecret: AWSPENDING cannot log in to redis {redis_srv.host}:{redis_srv.port} user {initial['username']}: ")
    assert_no_secret(message, initial["password"], pending["password"])


def test_redis_finish_names_the_step_when_the_master_cannot_log_in(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]],  # noqa: F811
) -> None:
    import json
    import uuid

    fn, initial = app
    token = harness.rotate(name, fn)
    for step in ("createSecret", "setSecret", "testSecret"):
        harness.step(name, step, token, fn)
    wrong = f"wrong-{uuid.uuid4().hex}"
    master = {"username": redis_srv.admin_user, "password": wrong}
    harness.sm.put_secret_value(SecretId=initial["masterarn"], SecretString=json.dumps(master))
    with pytest.raises(CredentialError) as info:
        harness.step(name, "finishSecret", token, fn)
    message = str(info.value)
    assert message.startswith(
        f"finishSecret: the master credential cannot log in to redis {redis_srv.host}:{redis_srv.port} "
        f"as {redis_srv.admin_user}: ")
    assert_no_secret(message, wrong, redis_srv.passwords[redis_srv.admin_user])
