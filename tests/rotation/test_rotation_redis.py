"""redis-acl strategy against a real redis-server with ACL users."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from rotation_harness import STEPS, Harness, SecretDict, SecretStr, assert_no_secret
from servers import RedisServer, new_password

from rotation.errors import CredentialError, SecretFormatError
from rotation.strategies.redis_acl import build_url

pytestmark = pytest.mark.servers


@pytest.fixture
def app(harness: Harness, redis_srv: RedisServer, name: str) -> tuple[str, dict[str, Any]]:
    """An ACL user with one password, its secret and master secret; a paused function."""
    user = f"app-{uuid.uuid4().hex[:6]}"
    password = SecretStr(f"pw:{uuid.uuid4().hex}")
    admin = redis_srv.admin()
    try:
        digest = hashlib.sha256(password.encode()).hexdigest()
        admin.execute_command("ACL", "SETUSER", user, "on", "#" + digest, "~app:*", "+@all")
    finally:
        admin.close()
    master = SecretDict(username=redis_srv.admin_user, password=redis_srv.passwords[redis_srv.admin_user])
    master_arn = harness.secret(name + "-master", json.dumps(master))
    initial = SecretDict(
        host=redis_srv.host,
        port=redis_srv.port,
        username=user,
        password=password,
        tls=False,
        masterarn=master_arn,
    )
    initial["url"] = build_url(initial)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("redis-acl", {name: {}}, paused=True)
    return fn, initial


def _logs_in(redis_srv: RedisServer, data: dict[str, Any]) -> bool:
    return redis_srv.can_login(data["username"], data["password"])


def test_redis_rotation_both_passwords_during_and_after_finish(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]]
) -> None:
    fn, initial = app
    held = redis_srv.client(initial["username"], initial["password"])
    try:
        assert held.set("app:k", "v")
        token = harness.rotate(name, fn)
        for step in STEPS[:3]:
            harness.step(name, step, token, fn)
            assert _logs_in(redis_srv, initial), f"AWSCURRENT stopped working during {step}"
        pending = harness.json(name, "AWSPENDING")
        assert _logs_in(redis_srv, pending)  # both passwords work between setSecret and finishSecret
        harness.step(name, "finishSecret", token, fn)
        new = harness.json(name)
        assert _logs_in(redis_srv, new)
        # The previous password (now AWSPREVIOUS) works until the next rotation finishes.
        assert _logs_in(redis_srv, initial)
        assert held.get("app:k") == b"v"
        assert new["url"].startswith(f"redis://{new['username']}:")
        import redis

        assert redis.Redis.from_url(new["url"]).ping()
    finally:
        held.close()


def test_redis_through_rotate_secret_and_again(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]]
) -> None:
    fn, initial = app
    harness.router.paused.discard(fn)
    first = harness.rotate(name, fn)
    second = harness.rotate(name, fn)
    assert not harness.router.errors(first) and not harness.router.errors(second)
    assert _logs_in(redis_srv, harness.json(name))
    assert _logs_in(redis_srv, harness.json(name, "AWSPREVIOUS"))  # the first rotation's password
    assert not _logs_in(redis_srv, initial)  # two rotations old
    admin = redis_srv.admin()
    try:
        rules = admin.acl_getuser(initial["username"])
    finally:
        admin.close()
    assert len(rules["passwords"]) == 2


def test_redis_step_twice_and_die_before_finish(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]]
) -> None:
    fn, initial = app
    token = harness.rotate(name, fn)
    for step in STEPS[:3]:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)
    # The function dies here; AWSCURRENT keeps working; the retry completes the rotation.
    assert _logs_in(redis_srv, harness.json(name))
    for step in STEPS:
        harness.step(name, step, token, fn)
    harness.step(name, "finishSecret", token, fn)
    assert _logs_in(redis_srv, harness.json(name))
    assert _logs_in(redis_srv, initial)  # AWSPREVIOUS, kept by the finish and by its replay
    assert _passwords(redis_srv, initial["username"]) == 2


def _passwords(redis_srv: RedisServer, user: str) -> int:
    admin = redis_srv.admin()
    try:
        return len(admin.acl_getuser(user)["passwords"])
    finally:
        admin.close()


def test_redis_down_during_set(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]]
) -> None:
    fn, initial = app
    token = harness.rotate(name, fn)
    master = harness.json(name + "-master")
    # The pending value, stored under the token as createSecret would, points at a closed port: the same as
    # the server being down. (Once stored, a version's value cannot change: PutSecretValue refuses.)
    pending = {**harness.json(name), "password": new_password(), "port": 1}
    harness.sm.put_secret_value(
        SecretId=name, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )
    with pytest.raises(CredentialError) as info:
        harness.step(name, "setSecret", token, fn)
    message = str(info.value)
    assert "master credential cannot log in to redis 127.0.0.1:1" in message
    assert_no_secret(message, initial["password"], pending["password"], master["password"])
    assert _logs_in(redis_srv, harness.json(name))


def test_redis_racing_rotations(
    harness: Harness, redis_srv: RedisServer, name: str, app: tuple[str, dict[str, Any]]
) -> None:
    """Rotation A adds its password and dies; rotation B runs through; A's finish is refused."""
    fn, _ = app
    first = harness.rotate(name, fn)
    harness.step(name, "createSecret", first, fn)
    harness.step(name, "setSecret", first, fn)
    orphan = SecretStr(harness.sm.get_secret_value(SecretId=name, VersionId=first)["SecretString"])
    second = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, second, fn)
    with pytest.raises(Exception, match="is not AWSPENDING") as info:
        harness.step(name, "finishSecret", first, fn)
    assert_no_secret(str(info.value), json.loads(orphan)["password"])
    assert _logs_in(redis_srv, harness.json(name))
    assert not _logs_in(redis_srv, SecretDict(json.loads(orphan)))  # finish dropped the abandoned rotation's password


def test_redis_secret_lacks_masterarn(harness: Harness, redis_srv: RedisServer, name: str) -> None:
    password = uuid.uuid4().hex
    harness.secret(
        name, json.dumps({"host": "127.0.0.1", "port": redis_srv.port, "username": "u", "password": password})
    )
    fn = harness.function("redis-acl", {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], SecretFormatError)
    assert "lacks required field(s) ['masterarn']" in str(errors[0])
    assert_no_secret(str(errors[0]), password)
