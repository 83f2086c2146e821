"""PostgreSQL strategies against a real server: single user and alternating users."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rotation_harness import STEPS, Harness, SecretDict, SecretStr, assert_no_secret
from servers import PostgresServer

from rotation.errors import CredentialError, SecretNotAllowedError, VersionStageError
from rotation.strategies.postgres import build_url

pytestmark = pytest.mark.servers

# Awkward but legal characters, to prove quoting of identifiers and URL encoding.
PASSWORD_SPEC = {"kind": "password", "length": 40, "alphabet": "custom", "chars": "abcdefXYZ0123'\"@:/%\\ $"}


def _role(pg: PostgresServer, base: str = "app") -> tuple[str, SecretStr]:
    user = f'{base}-{uuid.uuid4().hex[:6]}"q'  # a quote and a dash: only Identifier gets this right
    password = SecretStr(f"pw'{uuid.uuid4().hex}")
    pg.create_role(user, password)
    return user, password


def _secret(pg: PostgresServer, user: str, password: str, **extra: Any) -> SecretDict:
    data = SecretDict(
        {
            "engine": "postgres",
            "host": pg.host,
            "port": pg.port,
            "dbname": "postgres",
            "username": user,
            "password": password,
            **extra,
        }
    )
    data["url"] = build_url(data)
    return data


def _logs_in(pg: PostgresServer, data: dict[str, Any]) -> bool:
    return pg.can_login(data["username"], data["password"])


def _single(harness: Harness, pg: PostgresServer, name: str, *, paused: bool = False) -> tuple[str, dict[str, Any]]:
    user, password = _role(pg)
    initial = _secret(pg, user, password)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-single-user", {name: {"generate": PASSWORD_SPEC}}, paused=paused)
    return fn, initial


def test_single_user_full_rotation(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, initial = _single(harness, pg, name)
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    new = harness.json(name)
    assert new["username"] == initial["username"]
    changed = new["password"] != initial["password"]
    assert changed
    assert _logs_in(pg, new)
    assert not _logs_in(pg, initial)
    # The URL is rebuilt, percent-encoded, and psycopg connects with it.
    with psycopg.connect(new["url"], connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (initial["username"],)


def test_single_user_password_never_sent_in_clear(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, _ = _single(harness, pg, name)
    harness.rotate(name, fn)
    new = harness.json(name)
    with pg.connect() as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (new["username"],)).fetchone()
    assert row is not None
    stored_verifier = str(row[0]).startswith("SCRAM-SHA-256$")
    assert stored_verifier


def test_single_user_step_twice_and_pending_already_set(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, _initial = _single(harness, pg, name, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)  # setSecret the second time: pending already logs in
    assert _logs_in(pg, harness.json(name))


def _set_with_database_down(harness: Harness, pg: PostgresServer, name: str,
                            fn: str) -> tuple[str, SecretDict, str]:
    """Start a rotation, make its pending value, stop PostgreSQL during setSecret: (token, pending, message)."""
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    pending = harness.json(name, "AWSPENDING")
    pg.stop()
    try:
        with pytest.raises(CredentialError) as info:
            harness.step(name, "setSecret", token, fn)
    finally:
        pg.start()
    return token, pending, str(info.value)


def test_single_user_database_down_during_set(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, initial = _single(harness, pg, name, paused=True)
    token, pending, message = _set_with_database_down(harness, pg, name, fn)
    assert "cannot log in to postgres" in message and "Connection refused" in message
    assert_no_secret(message, initial["password"], pending["password"])
    assert harness.version_of(name, "AWSCURRENT") != token
    assert _logs_in(pg, harness.json(name))
    # Secrets Manager retries the rotation later and it completes.
    for step in STEPS[1:]:
        harness.step(name, step, token, fn)
    assert _logs_in(pg, harness.json(name))


def test_single_user_dies_between_set_and_finish_then_retried(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, _initial = _single(harness, pg, name, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    harness.step(name, "setSecret", token, fn)
    # The function dies here. Single user: the database already has the pending password.
    assert _logs_in(pg, harness.json(name, "AWSPENDING"))
    for step in STEPS:  # the retry runs every step again
        harness.step(name, step, token, fn)
    assert harness.version_of(name, "AWSCURRENT") == token
    assert _logs_in(pg, harness.json(name))


def test_single_user_superseded_rotation_recovers(harness: Harness, pg: PostgresServer, name: str) -> None:
    """Rotation A sets the password and dies; rotation B starts: B logs in with A's orphaned value."""
    fn, _ = _single(harness, pg, name, paused=True)
    first = harness.rotate(name, fn)
    harness.step(name, "createSecret", first, fn)
    harness.step(name, "setSecret", first, fn)
    second = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, second, fn)
    with pytest.raises(VersionStageError, match="is not AWSPENDING"):
        harness.step(name, "finishSecret", first, fn)
    assert harness.version_of(name, "AWSCURRENT") == second
    assert _logs_in(pg, harness.json(name))


def test_single_user_concurrent_steps_same_token(harness: Harness, pg: PostgresServer, name: str) -> None:
    """A duplicate delivery: two invocations run setSecret/testSecret/finishSecret at the same time."""
    fn, _ = _single(harness, pg, name, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for step in STEPS[1:]:
                harness.step(name, step, token, fn)
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # At most the loser of the AWSCURRENT move fails, with a clear Secrets Manager message.
    assert len(errors) <= 1
    assert harness.version_of(name, "AWSCURRENT") == token
    assert _logs_in(pg, harness.json(name))


def test_single_user_secret_lacks_password(harness: Harness, pg: PostgresServer, name: str) -> None:
    """A current version without a password is a first version (nothing installed yet); without a master
    nothing can install it: setSecret says so and the role is left alone."""
    user, password = _role(pg)
    broken = _secret(pg, user, password)
    del broken["password"], broken["url"]
    harness.secret(name, json.dumps(broken))
    fn = harness.function("postgres-single-user", {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], CredentialError)
    assert str(errors[0]).endswith("name a master credential (catalog rotation.master) to install it")
    assert pg.can_login(user, password)
    assert harness.version_of(name, "AWSCURRENT") != token


def test_single_user_wrong_secret_refused(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, _ = _single(harness, pg, name)
    user, password = _role(pg)
    other = name + "-other"
    harness.secret(other, json.dumps(_secret(pg, user, password)))
    token = harness.rotate(other, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], SecretNotAllowedError)
    assert_no_secret(str(errors[0]), password)
    assert pg.can_login(user, password)


def test_single_user_no_candidate_logs_in(harness: Harness, pg: PostgresServer, name: str) -> None:
    fn, initial = _single(harness, pg, name, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    pending = harness.json(name, "AWSPENDING")
    outside = SecretStr(f"changed-{uuid.uuid4().hex}")
    with pg.connect() as conn:  # someone changed the password behind the secret's back
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(initial["username"]), sql.Literal(outside))
        )
    with pytest.raises(CredentialError) as info:
        harness.step(name, "setSecret", token, fn)
    message = str(info.value)
    assert "with AWSPENDING, AWSCURRENT or AWSPREVIOUS" in message and "password authentication failed" in message
    assert_no_secret(message, initial["password"], pending["password"], outside)


# ------------------------------------------------------------------ alternating users


@pytest.fixture
def alternating(harness: Harness, pg: PostgresServer, name: str) -> tuple[str, dict[str, Any], str]:
    """Base role with a grant on a table, master secret, app secret; returns (function, initial, table)."""
    user, password = _role(pg)
    table = f"orders_{uuid.uuid4().hex[:6]}"
    with pg.connect() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (42)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(user)))
    master = SecretDict(username=pg.superuser, password=pg.password)
    master_arn = harness.secret(name + "-master", json.dumps(master))
    initial = _secret(pg, user, password, masterarn=master_arn)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-alternating-users", {name: {"generate": PASSWORD_SPEC}}, paused=True)
    return fn, initial, table


def _reads(pg: PostgresServer, data: dict[str, Any], table: str) -> bool:
    with pg.connect(data["username"], data["password"]) as conn:
        return conn.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))).fetchone() == (42,)


def test_alternating_users_zero_downtime(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, dict[str, Any], str]
) -> None:
    fn, initial, table = alternating
    # A client holding the original credential, connected before the rotation.
    held = pg.connect(initial["username"], initial["password"])
    try:
        token = harness.rotate(name, fn)
        for step in STEPS:
            harness.step(name, step, token, fn)
            assert _logs_in(pg, initial), f"AWSCURRENT stopped working during {step}"
        first = harness.json(name)
        assert first["username"] == initial["username"] + "_clone"
        assert _reads(pg, first, table)  # the clone inherits the base role's grants
        assert held.execute("SELECT 1").fetchone() == (1,)

        # Second rotation: back to the base user; the clone (now AWSCURRENT) keeps working.
        second_token = harness.rotate(name, fn)
        for step in STEPS:
            harness.step(name, step, second_token, fn)
            assert _logs_in(pg, first), f"the clone stopped working during {step}"
        second = harness.json(name)
        assert second["username"] == initial["username"]
        changed = second["password"] != initial["password"]
        assert changed
        assert _reads(pg, second, table)
        assert not _logs_in(pg, initial)
    finally:
        held.close()


def test_alternating_users_through_rotate_secret(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, dict[str, Any], str]
) -> None:
    fn, initial, table = alternating
    harness.router.paused.discard(fn)
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    assert _reads(pg, harness.json(name), table)
    assert _logs_in(pg, initial)


def test_alternating_users_database_down(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, dict[str, Any], str]
) -> None:
    fn, initial, _ = alternating
    _, pending, message = _set_with_database_down(harness, pg, name, fn)
    assert "master credential cannot log in" in message
    assert_no_secret(message, initial["password"], pending["password"], pg.password)
    assert _logs_in(pg, initial)


def test_alternating_users_lacks_masterarn(harness: Harness, pg: PostgresServer, name: str) -> None:
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    fn = harness.function("postgres-alternating-users", {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and "lacks required field(s) ['masterarn']" in str(errors[0])
    assert_no_secret(str(errors[0]), password)
    assert pg.can_login(user, password)


def test_alternating_users_dies_between_set_and_finish_then_retried(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, dict[str, Any], str]
) -> None:
    fn, initial, table = alternating
    token = harness.rotate(name, fn)
    for step in STEPS[:2]:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)
    # The function dies here: the clone exists with the pending password, AWSCURRENT untouched.
    assert _logs_in(pg, initial)
    assert _logs_in(pg, harness.json(name, "AWSPENDING"))
    for step in STEPS:
        harness.step(name, step, token, fn)
    assert _reads(pg, harness.json(name), table)
    assert _logs_in(pg, initial)


def test_alternating_users_racing_rotations(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, dict[str, Any], str]
) -> None:
    """Rotation A sets the clone's password and dies; rotation B runs through; A's finish is refused."""
    fn, initial, table = alternating
    first = harness.rotate(name, fn)
    harness.step(name, "createSecret", first, fn)
    harness.step(name, "setSecret", first, fn)
    second = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, second, fn)
    with pytest.raises(VersionStageError, match="is not AWSPENDING") as info:
        harness.step(name, "finishSecret", first, fn)
    assert_no_secret(str(info.value), initial["password"], harness.json(name)["password"])
    assert _reads(pg, harness.json(name), table)
    assert _logs_in(pg, initial)
