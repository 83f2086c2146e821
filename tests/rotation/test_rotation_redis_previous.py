"""redis-acl keeps the previous password for one rotation period, against a real redis-server and moto.

finishSecret leaves the ACL user with the new AWSCURRENT password and the previous AWSCURRENT (now AWSPREVIOUS), in
one `ACL SETUSER <user> resetpass #<current> #<previous>`: a consumer that cached the previous value keeps logging
in until the next rotation finishes, and every other password (two rotations old, left by an interrupted rotation,
never installed) is dropped. Redis applies the rules of one ACL SETUSER in order and all or none
(https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/, redis/redis `src/acl.c` ACLSetUser;
docs/aws-contract.md). The autouse log fixture checks that no value of any version reaches the logs."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from rotation_harness import STEPS, Harness, SecretDict, SecretStr
from servers import RedisServer, new_password

from rotation.protocol import RotationContext, SecretStore

pytestmark = pytest.mark.servers

LOGGER = "rotation.strategies.redis_acl"


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _messages(logs: Any) -> list[str]:
    return [r.getMessage() for r in logs.records if r.name == LOGGER]


def _passwords(redis_srv: RedisServer, user: str) -> set[str]:
    """The SHA-256 hashes the user accepts (ACL GETUSER shows hashes, never a password)."""
    admin = redis_srv.admin()
    try:
        return set(admin.acl_getuser(user)["passwords"])
    finally:
        admin.close()


def _app(harness: Harness, redis_srv: RedisServer, name: str, *, installed: bool = True) -> tuple[str, SecretDict]:
    """An ACL user with one password (none, and no user, unless `installed`), its secret and master secret; a
    paused function."""
    user, password = f"prev-{uuid.uuid4().hex[:8]}", SecretStr(new_password())
    if installed:
        admin = redis_srv.admin()
        try:
            admin.execute_command("ACL", "SETUSER", user, "on", "#" + _digest(password), "~app:*", "+@all")
        finally:
            admin.close()
    master_arn = harness.secret(name + "-master", json.dumps(
        {"username": redis_srv.admin_user, "password": redis_srv.passwords[redis_srv.admin_user]}))
    data = SecretDict(host=redis_srv.host, port=redis_srv.port, username=user, tls=False, masterarn=master_arn)
    if installed:
        data["password"] = password
    harness.secret(name, json.dumps(data))
    return harness.function("redis-acl", {name: {}}, paused=True), data


def _rotate(harness: Harness, name: str, fn: str, steps: tuple[str, ...] = STEPS) -> str:
    token = harness.rotate(name, fn)
    for step in steps:
        harness.step(name, step, token, fn)
    return token


def test_after_rotation_n_the_password_of_n_minus_1_logs_in_and_that_of_n_minus_2_does_not(
    harness: Harness, redis_srv: RedisServer, name: str,
) -> None:
    fn, initial = _app(harness, redis_srv, name)
    user = initial["username"]
    held = redis_srv.client(user, initial["password"])
    try:
        assert held.set("app:k", "v")
        passwords = [initial["password"]]
        for n in (1, 2, 3):
            _rotate(harness, name, fn)
            passwords.append(harness.json(name)["password"])
            assert harness.json(name, "AWSPREVIOUS")["password"] == passwords[n - 1]
            assert redis_srv.can_login(user, passwords[n]), f"rotation {n}: AWSCURRENT"
            assert redis_srv.can_login(user, passwords[n - 1]), f"rotation {n}: the previous password"
            if n >= 2:
                assert not redis_srv.can_login(user, passwords[n - 2]), f"rotation {n}: two rotations old"
            assert _passwords(redis_srv, user) == {_digest(passwords[n]), _digest(passwords[n - 1])}
        assert held.get("app:k") == b"v"  # a connection opened with a dropped password stays open
    finally:
        held.close()


def test_a_password_left_by_an_interrupted_rotation_is_dropped_at_the_next_finish(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    fn, initial = _app(harness, redis_srv, name)
    user = initial["username"]
    abandoned = _rotate(harness, name, fn, STEPS[:2])  # setSecret added its password; the function dies
    leftover = SecretDict(json.loads(harness.sm.get_secret_value(SecretId=name, VersionId=abandoned)["SecretString"]))
    assert redis_srv.can_login(user, leftover["password"])
    # AWS refuses RotateSecret while AWSPENDING sits on another version: the operator clears it
    # (`python -m ops clear-pending`), then rotates again.
    harness.sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned)
    _rotate(harness, name, fn)
    current = harness.json(name)
    assert not redis_srv.can_login(user, leftover["password"])
    assert redis_srv.can_login(user, current["password"]) and redis_srv.can_login(user, initial["password"])
    assert _passwords(redis_srv, user) == {_digest(current["password"]), _digest(initial["password"])}
    assert _messages(rotation_logs)[-1] == (f"finishSecret: redis {redis_srv.host}:{redis_srv.port} user {user} "
                                            "now accepts the AWSCURRENT and AWSPREVIOUS passwords")


def test_a_first_install_keeps_one_password_and_the_next_rotation_two(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    """The program's first version has no password (the user does not exist yet): at the deploy's rotation
    AWSPREVIOUS is that version, and there is nothing to keep but AWSCURRENT."""
    fn, first = _app(harness, redis_srv, name, installed=False)
    user = first["username"]
    _rotate(harness, name, fn)
    installed = harness.json(name)["password"]
    assert "password" not in harness.json(name, "AWSPREVIOUS")
    assert _passwords(redis_srv, user) == {_digest(installed)}
    where = f"redis {redis_srv.host}:{redis_srv.port} user {user}"
    assert _messages(rotation_logs)[-2:] == [
        f"finishSecret: AWSPREVIOUS of {name} has no password (nothing was installed with it); keeping only the "
        "AWSCURRENT password",
        f"finishSecret: {where} now accepts only the AWSCURRENT password",
    ]
    _rotate(harness, name, fn)
    assert _passwords(redis_srv, user) == {_digest(harness.json(name)["password"]), _digest(installed)}
    assert redis_srv.can_login(user, installed)


def test_no_awsprevious_keeps_only_awscurrent(redis_srv: RedisServer, harness: Harness, name: str,
                                              rotation_logs: Any) -> None:
    """A secret never rotated has no AWSPREVIOUS (Secrets Manager sets it when AWSCURRENT moves): the finish hook,
    run on it directly, keeps only AWSCURRENT and drops what else the user held."""
    from rotation.strategies.redis_acl import RedisAclStrategy

    _, data = _app(harness, redis_srv, name)
    user = data["username"]
    stray = new_password()
    admin = redis_srv.admin()
    try:
        admin.execute_command("ACL", "SETUSER", user, "#" + _digest(stray))
    finally:
        admin.close()
    ctx = RotationContext(secret_name=name, token=str(uuid.uuid4()), store=SecretStore(harness.sm, name),
                          client=harness.sm)
    RedisAclStrategy({}).finish(harness.value(name), ctx)
    assert _passwords(redis_srv, user) == {_digest(data["password"])}
    assert not redis_srv.can_login(user, stray)
    assert _messages(rotation_logs) == [
        f"finishSecret: AWSPREVIOUS of {name} does not exist (first rotation); keeping only the AWSCURRENT password",
        f"finishSecret: redis {redis_srv.host}:{redis_srv.port} user {user} now accepts only the AWSCURRENT password",
    ]


def _make_current(harness: Harness, name: str, **value: Any) -> None:
    """Put a version and move AWSCURRENT onto it (AWSPREVIOUS follows to the version it left, as AWS documents for
    UpdateSecretVersionStage). Not PutSecretValue with VersionStages=["AWSCURRENT"]: moto 5.2.5 then relabels the
    version it considers current, the token's AWSPENDING one here, AWSPREVIOUS."""
    version = str(uuid.uuid4())
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=version, VersionStages=["TEST"], **value)
    harness.sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=version,
                                           RemoveFromVersionId=harness.version_of(name, "AWSCURRENT"))


def _hostile(case: str, user: str) -> dict[str, Any]:
    """put_secret_value arguments of an AWSPREVIOUS that finishSecret must not keep."""
    text = {
        "not json": "not json: " + new_password(),
        "control characters": "\x00\x01\xff\ufffd" + new_password(),
        "a JSON array": json.dumps([user, new_password()]),
        "nested brackets": "[" * 60_000,  # json.loads raises RecursionError, not ValueError
        "huge": json.dumps({"username": user, "password": new_password() * 1_800}),  # about 58 KB
        "another user": json.dumps({"username": user + "-other", "password": new_password()}),
        "no username": json.dumps({"password": new_password()}),
        "missing password": json.dumps({"username": user}),
        "an empty password": json.dumps({"username": user, "password": ""}),
        "a number as password": json.dumps({"username": user, "password": 12345678}),
        "a lone surrogate": json.dumps({"username": user, "password": "\ud800" + new_password()}),
        "never installed": json.dumps({"username": user, "password": new_password()}),
    }.get(case)
    if text is None:  # "binary": a version with SecretBinary and no SecretString
        return {"SecretBinary": b"\x00\xff" + new_password().encode()}
    return {"SecretString": text}


WARNINGS = {
    "binary": "has no SecretString",
    "not json": "is not a JSON object",
    "control characters": "is not a JSON object",
    "a JSON array": "is not a JSON object",
    "nested brackets": "is not a JSON object",
    "another user": "names another user or none",
    "no username": "names another user or none",
    "missing password": "has no password (nothing was installed with it)",
    "an empty password": "has no password (nothing was installed with it)",
    "a number as password": "has no password (nothing was installed with it)",
    "a lone surrogate": "has a password that is not valid Unicode",
}


@pytest.mark.parametrize("case", [*WARNINGS, "huge", "never installed"])
def test_a_hostile_awsprevious_neither_breaks_finish_nor_is_kept(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any, case: str,
) -> None:
    """The version that is AWSCURRENT when finishSecret moves the label becomes AWSPREVIOUS: a value made
    AWSCURRENT after testSecret is what finishSecret then reads as AWSPREVIOUS."""
    fn, initial = _app(harness, redis_srv, name)
    user = initial["username"]
    token = _rotate(harness, name, fn, STEPS[:3])
    _make_current(harness, name, **_hostile(case, user))
    harness.step(name, "finishSecret", token, fn)
    assert harness.version_of(name, "AWSCURRENT") == token and harness.version_of(name, "AWSPENDING") is None
    current = harness.json(name)["password"]
    # Only AWSCURRENT: the hostile value is not kept, and the initial password (no longer AWSPREVIOUS) is dropped.
    assert _passwords(redis_srv, user) == {_digest(current)}
    assert not redis_srv.can_login(user, initial["password"])
    where = f"redis {redis_srv.host}:{redis_srv.port} user {user}"
    reason = (f"finishSecret: AWSPREVIOUS of {name} {WARNINGS[case]}" if case in WARNINGS else
              f"finishSecret: the AWSPREVIOUS password of {name} is not one of {where}'s passwords")
    assert _messages(rotation_logs)[-2:] == [f"{reason}; keeping only the AWSCURRENT password",
                                             f"finishSecret: {where} now accepts only the AWSCURRENT password"]


def test_an_awsprevious_equal_to_awscurrent_leaves_one_password(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    """The same value under two versions (put again by hand): one password, and no warning."""
    fn, initial = _app(harness, redis_srv, name)
    user = initial["username"]
    token = _rotate(harness, name, fn, STEPS[:3])
    _make_current(harness, name, SecretString=harness.value(name, "AWSPENDING"))
    harness.step(name, "finishSecret", token, fn)
    current = harness.json(name)["password"]
    assert harness.json(name, "AWSPREVIOUS")["password"] == current
    assert _passwords(redis_srv, user) == {_digest(current)}
    assert not redis_srv.can_login(user, initial["password"])
    assert _messages(rotation_logs)[-1:] == [
        f"finishSecret: redis {redis_srv.host}:{redis_srv.port} user {user} now accepts only the AWSCURRENT password"]
    assert not [r for r in rotation_logs.records if r.name == LOGGER and r.levelname == "WARNING"]


def test_redis_applies_resetpass_and_several_hashes_in_one_setuser_all_or_nothing(redis_srv: RedisServer) -> None:
    """The server rule finishSecret relies on: `ACL SETUSER u resetpass #<h1> #<h2>` stages every rule on a copy of
    the user and applies them together, or none if one is invalid (redis/redis `src/acl.c`, aclCommand SETUSER /
    ACLStringSetUser: "If there are any errors then none of the changes will be applied"; `#<hash>` adds a hash
    without duplicates, `resetpass` empties the list); the user then accepts each of the listed passwords."""
    import redis

    user, old = f"prev-{uuid.uuid4().hex[:8]}", new_password()
    first, second = new_password(), new_password()
    admin = redis_srv.admin()
    try:
        admin.execute_command("ACL", "SETUSER", user, "on", "#" + _digest(old), "~app:*", "+@all")
        with pytest.raises(redis.exceptions.ResponseError):  # the last rule is not a SHA-256 hex digest
            admin.execute_command("ACL", "SETUSER", user, "resetpass", "#" + _digest(first), "#" + "z" * 64)
        assert _passwords(redis_srv, user) == {_digest(old)}  # nothing applied, not even resetpass
        admin.execute_command("ACL", "SETUSER", user, "resetpass", "#" + _digest(first), "#" + _digest(second),
                              "#" + _digest(first))
    finally:
        admin.close()
    assert _passwords(redis_srv, user) == {_digest(first), _digest(second)}
    assert redis_srv.can_login(user, first) and redis_srv.can_login(user, second)
    assert not redis_srv.can_login(user, old)
