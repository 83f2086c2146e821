"""PostgreSQL strategies, the paths a rotation rarely takes, against a real server and moto: single user's
fallback credentials (AWSPREVIOUS, unlabelled versions, a malformed AWSPREVIOUS), refusals and failures
with their exact messages, and what each step tells the operator. Every message names secrets, stages,
roles and versions, never a value (the autouse log fixture checks the logs)."""

from __future__ import annotations

import json
import re
import string
import uuid
from typing import Any

import pytest
from psycopg import sql
from rotation_harness import STEPS, Harness, SecretDict, SecretStr, assert_no_secret
from servers import PostgresServer, new_password

from rotation.errors import CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, SecretStore
from rotation.strategies.postgres import AlternatingUsersStrategy, SingleUserStrategy

pytestmark = pytest.mark.servers

LOGGER = "rotation.strategies.postgres"


def _role(pg: PostgresServer) -> tuple[str, SecretStr]:
    user, password = f"paths_{uuid.uuid4().hex[:8]}", SecretStr(new_password())
    pg.create_role(user, password)
    return user, password


def _secret(pg: PostgresServer, user: str, password: str, **extra: Any) -> SecretDict:
    return SecretDict({"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                       "username": user, "password": password, **extra})


def _where(pg: PostgresServer, user: str) -> str:
    return f"postgres {pg.host}:{pg.port}/postgres as {user}"


def _messages(logs: Any) -> list[str]:
    return [r.getMessage() for r in logs.records if r.name == LOGGER]


def _put(harness: Harness, name: str, value: str) -> str:
    """A new AWSCURRENT version of `name`; its id."""
    return str(harness.sm.put_secret_value(SecretId=name, SecretString=value)["VersionId"])


def _put_unlabelled(harness: Harness, name: str, values: list[str]) -> list[str]:
    """New versions of `name` that end with no label (a label of our own moves from one to the next, then
    goes); their ids."""
    ids = [str(harness.sm.put_secret_value(SecretId=name, SecretString=v, VersionStages=["PATHS"])["VersionId"])
           for v in values]
    harness.sm.update_secret_version_stage(SecretId=name, VersionStage="PATHS", RemoveFromVersionId=ids[-1])
    return ids


def _rotate_by_steps(harness: Harness, name: str) -> None:
    """One single-user rotation, each step invoked in turn (the function does not rotate by itself)."""
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)


def _set_secret_refusal(harness: Harness, name: str) -> str:
    """The message of the CredentialError single user's setSecret raises after createSecret."""
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    with pytest.raises(CredentialError) as info:
        harness.step(name, "setSecret", token, fn)
    return str(info.value)


def _ctx(name: str) -> RotationContext:
    """A context for checks that fail before any Secrets Manager call (no client is reached)."""
    return RotationContext(secret_name=name, token="t" * 32, store=SecretStore(None, name), client=None)


# ------------------------------------------------------------------ single user: fallback credentials


def test_single_user_logs_in_with_awsprevious_when_awscurrent_fails(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any,
) -> None:
    """The server still has the password of the version that is now AWSPREVIOUS (a value put by hand)."""
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    _put(harness, name, json.dumps(_secret(pg, user, new_password())))
    _rotate_by_steps(harness, name)
    assert pg.can_login(user, harness.json(name)["password"])
    assert not pg.can_login(user, password)
    assert _messages(rotation_logs) == [f"setSecret: password of {_where(pg, user)} set (logged in with AWSPREVIOUS)"]


@pytest.mark.parametrize("bad_previous", ["not json", json.dumps(["a list"]), json.dumps({"engine": "mysql"})])
def test_single_user_skips_a_malformed_awsprevious_and_logs_in_with_an_older_version(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any, bad_previous: str,
) -> None:
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    first = harness.version_of(name, "AWSCURRENT")
    _put(harness, name, bad_previous)
    _put(harness, name, json.dumps(_secret(pg, user, new_password())))  # AWSPREVIOUS: the malformed one
    assert first and not harness.stages(name).get(first)  # the server's password is now in an unlabelled version
    _rotate_by_steps(harness, name)
    assert pg.can_login(user, harness.json(name)["password"])
    assert _messages(rotation_logs) == [
        f"setSecret: password of {_where(pg, user)} set (logged in with version {first})"]


def _older_versions(harness: Harness, pg: PostgresServer, name: str, user: str, good: str | None,
                    good_first: bool) -> dict[str, str]:
    """Unlabelled versions that give nothing to log in with, and (if `good`) one with `good`, inserted
    before or after them (versions of the same second are listed in insertion order); role -> version id."""
    bad = [("not json", "not json"), ("a list", json.dumps([user])),
           ("another user", json.dumps(_secret(pg, user + "_other", new_password()))),
           ("a number password", json.dumps({**_secret(pg, user, ""), "password": 12345678}))]
    found = [("good", json.dumps(_secret(pg, user, good)))] if good else []
    order = found + bad if good_first else bad + found
    return dict(zip([role for role, _ in order], _put_unlabelled(harness, name, [v for _, v in order]), strict=True))


@pytest.mark.parametrize("good_first", [True, False])
def test_single_user_tries_only_unlabelled_versions_of_its_role_with_a_password(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any, good_first: bool,
) -> None:
    """Unlabelled versions that are not JSON objects, of another role or without a string password are
    skipped, and skipping one does not end the search."""
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, new_password())))  # AWSCURRENT: wrong
    # MAX_OLDER_VERSIONS (5) of the newest unlabelled versions are tried: four skipped, one good.
    ids = _older_versions(harness, pg, name, user, password, good_first)
    _rotate_by_steps(harness, name)
    assert pg.can_login(user, harness.json(name)["password"])
    assert _messages(rotation_logs) == [
        f"setSecret: password of {_where(pg, user)} set (logged in with version {ids['good']})"]


def test_single_user_no_candidate_names_every_credential_tried(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, new_password())))
    ids = _older_versions(harness, pg, name, user, None, True)
    wrong = _put_unlabelled(harness, name, [json.dumps(_secret(pg, user, new_password()))])[0]
    _put(harness, name, json.dumps(_secret(pg, user, new_password())))  # AWSCURRENT; AWSPREVIOUS: the first
    message = _set_secret_refusal(harness, name)
    assert message.startswith(f"setSecret: cannot log in to {_where(pg, user)} with AWSPENDING, AWSCURRENT or "
                              "AWSPREVIOUS (AWSCURRENT: OperationalError: ")
    assert message.endswith("); name a master credential (catalog rotation.master) to install it")
    tried = re.findall(r"(?:\(|; )(AWSCURRENT|AWSPREVIOUS|version [0-9a-f-]+): OperationalError", message)
    # The unlabelled `wrong` version and the AWSPREVIOUS one; none of the versions with nothing to try.
    assert sorted(tried) == sorted(["AWSCURRENT", "AWSPREVIOUS", f"version {wrong}"])
    assert not set(ids.values()) & {t.removeprefix("version ") for t in tried}
    assert pg.can_login(user, password)


def test_single_user_stops_at_an_unreachable_server(harness: Harness, pg: PostgresServer, name: str) -> None:
    """Connection refused is not a wrong password: no other credential is read or tried."""
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, password, port=1)))
    _put(harness, name, json.dumps(_secret(pg, user, new_password(), port=1)))
    message = _set_secret_refusal(harness, name)
    assert message.startswith(f"setSecret: cannot log in to postgres {pg.host}:1/postgres as {user} with AWSPENDING, "
                              "AWSCURRENT or AWSPREVIOUS (AWSCURRENT: OperationalError: ")
    assert "AWSPREVIOUS:" not in message and "Connection refused" in message


def test_single_user_without_a_candidate_of_its_role(harness: Harness, pg: PostgresServer, name: str) -> None:
    """AWSCURRENT names another role than AWSPENDING (a value edited by hand): nothing to log in with."""
    user, _ = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, new_password())))
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                                SecretString=json.dumps(_secret(pg, user + "_renamed", new_password())))
    with pytest.raises(CredentialError) as info:
        harness.step(name, "setSecret", token, fn)
    assert str(info.value) == (
        f"setSecret: cannot log in to {_where(pg, user + '_renamed')} with AWSPENDING, AWSCURRENT or AWSPREVIOUS "
        "(no candidate with the same username); name a master credential (catalog rotation.master) to install it")


def test_single_user_logs_when_the_pending_password_already_works(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any,
) -> None:
    user, password = _role(pg)
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS[:2]:
        harness.step(name, step, token, fn)
    harness.step(name, "setSecret", token, fn)
    assert _messages(rotation_logs) == [
        f"setSecret: password of {_where(pg, user)} set (logged in with AWSCURRENT)",
        f"setSecret: AWSPENDING of {name} already logs in; nothing to do",
    ]


def test_single_user_with_a_master_installs_without_trying_older_credentials(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any,
) -> None:
    user, password = _role(pg)
    master = harness.secret(name + "-master", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, json.dumps(_secret(pg, user, password, masterarn=master)))
    _put(harness, name, json.dumps(_secret(pg, user, new_password(), masterarn=master)))  # AWSCURRENT: wrong
    _rotate_by_steps(harness, name)
    assert pg.can_login(user, harness.json(name)["password"])
    assert _messages(rotation_logs) == [
        f"setSecret: password of {_where(pg, user)} installed with the master credential"]


# ------------------------------------------------------------------ alternating users


@pytest.fixture
def alternating(harness: Harness, pg: PostgresServer, name: str) -> tuple[str, str, SecretStr]:
    """A base role, its secret with the superuser as master, a paused function: (function, user, password)."""
    user, password = _role(pg)
    master = harness.secret(name + "-master", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, json.dumps(_secret(pg, user, password, masterarn=master)))
    return harness.function("postgres-alternating-users", {name: {}}, paused=True), user, password


def _roles(pg: PostgresServer, prefix: str) -> set[str]:
    with pg.connect() as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)).fetchall()
    return {r[0] for r in rows}


def test_alternating_users_two_rotations_tell_what_they_do_and_make_one_clone(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any, alternating: tuple[str, str, SecretStr],
) -> None:
    fn, user, _ = alternating
    clone = user + "_clone"
    for _ in range(2):
        token = harness.rotate(name, fn)
        for step in STEPS:
            harness.step(name, step, token, fn)
        harness.step(name, "setSecret", token, fn)  # AWSCURRENT now: nothing to do
    assert harness.json(name)["username"] == user
    assert _roles(pg, user) == {user, clone}  # the base role again, no third role
    assert _messages(rotation_logs) == [
        f"setSecret: created role {clone} as a member of {user}",
        f"setSecret: password of {_where(pg, clone)} set with the master credential",
        f"setSecret: password of {_where(pg, user)} set with the master credential",
    ]
    token = harness.rotate(name, fn)
    for step in STEPS[:2]:
        harness.step(name, step, token, fn)
    harness.step(name, "setSecret", token, fn)
    assert _messages(rotation_logs)[-1] == f"setSecret: AWSPENDING of {name} already logs in; nothing to do"


def test_alternating_users_refuse_to_change_the_role_in_use(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, str, SecretStr],
) -> None:
    fn, user, password = alternating
    token = harness.rotate(name, fn)
    pending = {**harness.json(name), "password": new_password()}
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                                SecretString=json.dumps(pending))
    with pytest.raises(SecretFormatError) as info:
        harness.step(name, "setSecret", token, fn)
    assert str(info.value) == f"setSecret: AWSPENDING of {name} uses the same role {user!r} as AWSCURRENT"
    assert pg.can_login(user, password)


def test_alternating_users_a_master_without_createrole_fails_naming_the_role(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    user, password = _role(pg)
    weak, weak_password = _role(pg)  # logs in, may not create roles
    master = harness.secret(name + "-master", json.dumps({"username": weak, "password": weak_password}))
    harness.secret(name, json.dumps(_secret(pg, user, password, masterarn=master)))
    fn = harness.function("postgres-alternating-users", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    pending = harness.json(name, "AWSPENDING")
    with pytest.raises(ExternalServiceError) as info:
        harness.step(name, "setSecret", token, fn)
    assert str(info.value) == (
        f"setSecret: changing role {user}_clone on {_where(pg, user + '_clone')} failed: "
        "InsufficientPrivilege: permission denied to create role")
    assert_no_secret(str(info.value), pending["password"], weak_password)
    assert _roles(pg, user) == {user}


def test_alternating_users_a_master_that_cannot_log_in(
    harness: Harness, pg: PostgresServer, name: str, alternating: tuple[str, str, SecretStr],
) -> None:
    fn, user, _ = alternating
    wrong = new_password()
    master = harness.secret(name + "-wrong-master", json.dumps({"username": pg.superuser, "password": wrong}))
    token = harness.rotate(name, fn)
    pending = {**harness.json(name), "username": user + "_clone", "password": new_password(), "masterarn": master}
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                                SecretString=json.dumps(pending))
    with pytest.raises(CredentialError) as info:
        harness.step(name, "setSecret", token, fn)
    message = str(info.value)
    assert message.startswith(f"setSecret: the master credential cannot log in to postgres {pg.host}:{pg.port}/"
                              f"postgres as {pg.superuser}: OperationalError: ")
    assert "password authentication failed" in message
    assert_no_secret(message, wrong, pending["password"])


# ------------------------------------------------------------------ values refused before any connection


def _data(**changes: Any) -> dict[str, Any]:
    data = {"engine": "postgres", "host": "127.0.0.1", "port": 1, "dbname": "postgres", "username": "app",
            "password": "p" * 16, "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-AbCdEf"}
    return {k: v for k, v in {**data, **changes}.items() if v is not None}


ALTERNATING = AlternatingUsersStrategy({})
SINGLE = SingleUserStrategy({})
NAME = "paths/test/db"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ALTERNATING.create_pending(json.dumps(_data(masterarn=None)), _ctx(NAME)),
     f"secret {NAME} (AWSCURRENT) lacks required field(s) ['masterarn']"),
    (lambda: ALTERNATING.create_pending("[]", _ctx(NAME)),
     f"secret {NAME} (AWSCURRENT) must be a JSON object, got list"),
    (lambda: ALTERNATING.set(json.dumps(_data(masterarn=None, username="app_clone")), json.dumps(_data()), _ctx(NAME)),
     f"secret {NAME} (AWSPENDING) lacks required field(s) ['masterarn']"),
    (lambda: ALTERNATING.set(json.dumps(_data(username="app_clone")), json.dumps(_data(masterarn=None)), _ctx(NAME)),
     f"secret {NAME} (AWSCURRENT) lacks required field(s) ['masterarn']"),
    (lambda: ALTERNATING.set(json.dumps(_data(username="app_clone")), json.dumps(_data(masterarn=7)), _ctx(NAME)),
     f"secret {NAME} (AWSCURRENT): field 'masterarn' must be str, got int"),
    (lambda: ALTERNATING.test(json.dumps(_data(masterarn=None)), _ctx(NAME)),
     f"secret {NAME} (AWSPENDING) lacks required field(s) ['masterarn']"),
    (lambda: SINGLE.set("not json", json.dumps(_data()), _ctx(NAME)), f"secret {NAME} (AWSPENDING) is not valid JSON"),
    (lambda: SINGLE.set(json.dumps(_data()), "{}", _ctx(NAME)),
     # AWSCURRENT may lack only the password (a first version: nothing installed yet).
     f"secret {NAME} (AWSCURRENT) lacks required field(s) ['dbname', 'engine', 'host', 'port', 'username']"),
    (lambda: SINGLE.test(json.dumps(_data(engine="mysql")), _ctx(NAME)),
     f"secret {NAME} (AWSPENDING): engine 'mysql' is not 'postgres'"),
])
def test_values_are_checked_and_named_by_secret_and_stage(call: Any, message: str) -> None:
    with pytest.raises(SecretFormatError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_is_given_up_on(silent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's connect_timeout bounds the wait (2 s is libpq's smallest: a shorter one is raised to it)."""
    from rotation.strategies import postgres

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 2)
    reason = postgres.try_login(_data(port=silent_port))
    assert reason is not None and reason.startswith("ConnectionTimeout: "), reason


def test_a_url_encodes_every_part_that_is_not_plain() -> None:
    """`/`, `@` and `:` in the role, password or database name are percent-encoded (quote's default would keep
    `/`), and libpq reads the URL back to the same values."""
    from psycopg.conninfo import conninfo_to_dict

    from rotation.strategies.postgres import build_url

    data = {"username": "app/ro", "password": "p/w@x:y%z", "host": "db.internal", "port": 5432, "dbname": "sales/eu"}
    url = build_url(data)
    assert url == "postgresql://app%2Fro:p%2Fw%40x%3Ay%25z@db.internal:5432/sales%2Feu"
    parsed = conninfo_to_dict(url)
    assert (parsed["user"], parsed["password"], parsed["dbname"]) == ("app/ro", "p/w@x:y%z", "sales/eu")


def _verifier(pg: PostgresServer, role: str) -> str:
    with pg.connect() as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return str(row[0])


def test_passwords_are_stored_as_scram_whatever_the_session_default(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    """The verifier is computed for SCRAM-SHA-256 explicitly: a role whose sessions default to md5 (libpq
    would otherwise ask the server for its `password_encryption`) still gets a SCRAM verifier, both when it
    changes its own password and when a master installs one."""
    user, password = _role(pg)
    master, master_password = _role(pg)
    with pg.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(master)))
        for role in (user, master):
            conn.execute(sql.SQL("ALTER ROLE {} SET password_encryption = 'md5'").format(sql.Identifier(role)))
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    _rotate_by_steps(harness, name)
    assert _verifier(pg, user).startswith("SCRAM-SHA-256$")
    other = name + "-alt"
    arn = harness.secret(other + "-master", json.dumps({"username": master, "password": master_password}))
    harness.secret(other, json.dumps(_secret(pg, user, harness.json(name)["password"], masterarn=arn)))
    fn = harness.function("postgres-alternating-users", {other: {}}, paused=True)
    token = harness.rotate(other, fn)
    for step in STEPS:
        harness.step(other, step, token, fn)
    assert _verifier(pg, user + "_clone").startswith("SCRAM-SHA-256$")
    assert pg.can_login(user + "_clone", harness.json(other)["password"])


def test_single_user_alter_role_refused_names_the_credential_used(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    """The role logs in but may not change its password (its sessions are read-only)."""
    user, password = _role(pg)
    with pg.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(user)))
    harness.secret(name, json.dumps(_secret(pg, user, password)))
    fn = harness.function("postgres-single-user", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    with pytest.raises(ExternalServiceError) as info:
        harness.step(name, "setSecret", token, fn)
    assert str(info.value) == (
        f"setSecret: ALTER ROLE failed on {_where(pg, user)} (logged in with AWSCURRENT): "
        "ReadOnlySqlTransaction: cannot execute ALTER ROLE in a read-only transaction")
    assert pg.can_login(user, password)


def test_parse_accepts_both_engine_names_and_makes_the_port_a_number() -> None:
    from rotation.strategies.postgres import parse

    for engine in ("postgres", "postgresql"):
        parsed = parse(json.dumps({**_data(engine=engine), "port": "6432"}), "x")
        assert parsed["engine"] == engine and parsed["port"] == 6432
    with pytest.raises(SecretFormatError) as info:
        parse(json.dumps(_data(port="six")), NAME)
    assert str(info.value) == f"secret {NAME}: port 'six' is not a number"


@pytest.mark.parametrize("cls", [SingleUserStrategy, AlternatingUsersStrategy])
def test_new_passwords_follow_the_generate_parameter(cls: type[SingleUserStrategy]) -> None:
    spec = {"kind": "password", "length": 20, "alphabet": "hex"}
    alphanumeric = set(string.ascii_letters + string.digits)
    for strategy, length, chars in ((cls({"generate": spec}), 20, set("0123456789abcdef")),
                                    (cls({}), 32, alphanumeric)):  # the default: generate.DEFAULT_PASSWORD_SPEC
        password = json.loads(strategy.create_pending(json.dumps(_data()), _ctx(NAME)))["password"]
        assert len(password) == length and set(password) <= chars


def test_alternating_users_on_a_server_without_the_roles_creates_both(
    harness: Harness, pg: PostgresServer, name: str, rotation_logs: Any,
) -> None:
    """The first rotation after the deploy, on a server where neither role exists yet: the base role is
    created (LOGIN, no password: its turn comes at the next rotation), then the clone as its member."""
    user = f"paths_{uuid.uuid4().hex[:8]}"
    master = harness.secret(name + "-master", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, json.dumps(_secret(pg, user, new_password(), masterarn=master)))
    fn = harness.function("postgres-alternating-users", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
    assert _roles(pg, user) == {user, user + "_clone"}
    assert pg.can_login(user + "_clone", harness.json(name)["password"])
    assert _messages(rotation_logs) == [
        f"setSecret: created role {user}",
        f"setSecret: created role {user}_clone as a member of {user}",
        f"setSecret: password of {_where(pg, user + '_clone')} set with the master credential",
    ]
