"""`python -m ops check-connection`: the stored PostgreSQL and Redis credentials, logged in with the rotation
strategies' own test, against moto and real servers on loopback. Passwords are generated at run time and the
`moto` fixture fails the test if any printed output holds one."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ops_harness import Moto, Result
from servers import free_port, new_password, postgres_server, redis_server

REPO = Path(__file__).resolve().parents[2]
TRIA = ["--stack", "staging", "--config-file", str(REPO / "examples" / "tria-aibpo" / "Pulumi.staging.yaml")]
TRIA_DB = "tria-aibpo/staging/database"
ADMIN_ARN_PREFIX = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:"


@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def cache() -> Iterator[Any]:
    with redis_server({"filot-app": "~* +@all"}) as server:
        yield server


def _put(moto: Moto, region: str, name: str, document: dict[str, Any]) -> None:
    sm = moto.client("secretsmanager", region)
    for key in ("password",):
        if key in document:
            moto.planted.add(document[key])
    try:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except sm.exceptions.ResourceNotFoundException:
        pass
    sm.create_secret(Name=name, SecretString=json.dumps(document))


def _database(pg: Any, password: str, **changes: Any) -> dict[str, Any]:
    return {"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres", "username": "tria_app",
            "password": password, "sslmode": "disable", **changes}


@pytest.fixture
def tria_role(pg: Any, moto: Moto) -> Iterator[str]:
    password = new_password()
    moto.planted.add(password)
    pg.create_role("tria_app", password)
    yield password
    sm = moto.client("secretsmanager", "ap-southeast-1")
    with contextlib.suppress(sm.exceptions.ResourceNotFoundException):  # not every test stores it
        sm.delete_secret(SecretId=TRIA_DB, ForceDeleteWithoutRecovery=True)


def test_a_working_postgres_credential_passes(pg: Any, tria_role: str, moto: Moto,
                                              ops: Callable[..., Result]) -> None:
    _put(moto, "ap-southeast-1", TRIA_DB, _database(pg, tria_role))
    result = ops("check-connection", *TRIA)
    assert result.code == 0, result.err
    assert f"PASS     {TRIA_DB} (postgres-single-user)" in result.out


def test_a_wrong_password_fails_without_printing_either(pg: Any, tria_role: str, moto: Moto,
                                                       ops: Callable[..., Result]) -> None:
    wrong = new_password()
    _put(moto, "ap-southeast-1", TRIA_DB, _database(pg, wrong))
    result = ops("check-connection", *TRIA, "database")
    assert result.code == 1
    line = next(x for x in result.out.splitlines() if TRIA_DB in x)
    assert line.strip().startswith("FAIL") and "password authentication failed" in line
    assert wrong not in result.out + result.err and tria_role not in result.out + result.err


def test_an_unreachable_server_fails_within_the_strategy_timeout(pg: Any, tria_role: str, moto: Moto,
                                                                 ops: Callable[..., Result]) -> None:
    _put(moto, "ap-southeast-1", TRIA_DB, _database(pg, tria_role, port=free_port()))
    result = ops("check-connection", *TRIA)
    assert result.code == 1 and "FAIL" in result.out and "OperationalError" in result.out


@pytest.mark.parametrize(("document", "words"), [
    ({"engine": "postgres", "host": "127.0.0.1"}, "port"),
    ({"engine": "mysql", "host": "h", "port": 1, "dbname": "d", "username": "u", "password": "p" * 20},
     "is not 'postgres'"),
])
def test_a_malformed_stored_value_fails_naming_the_field(document: dict[str, Any], words: str, moto: Moto,
                                                        ops: Callable[..., Result], tria_role: str) -> None:
    _put(moto, "ap-southeast-1", TRIA_DB, document)
    result = ops("check-connection", *TRIA)
    assert result.code == 1 and words in result.out and "Traceback" not in result.out + result.err


def test_a_secret_without_a_value_is_reported(moto: Moto, ops: Callable[..., Result], tria_role: str) -> None:
    result = ops("check-connection", *TRIA)
    assert result.code == 1 and f"NO VALUE {TRIA_DB}" in result.out


def test_redis_credentials_log_in_with_acl_auth(cache: Any, moto: Moto, ops: Callable[..., Result]) -> None:
    document = {"host": cache.host, "port": cache.port, "username": "filot-app",
                "password": cache.passwords["filot-app"], "tls": False,
                "masterarn": f"{ADMIN_ARN_PREFIX}filot/production/redis-admin-AbCdEf"}
    _put(moto, "ap-southeast-2", "filot/production/redis", document)
    result = ops("check-connection", "--stack", "production", "redis")
    assert result.code == 0 and "PASS     filot/production/redis (redis-acl)" in result.out
    _put(moto, "ap-southeast-2", "filot/production/redis", {**document, "password": new_password()})
    result = ops("check-connection", "--stack", "production", "redis")
    assert result.code == 1 and "FAIL     filot/production/redis" in result.out


def test_a_secret_that_is_no_server_credential_is_refused(moto: Moto, ops: Callable[..., Result]) -> None:
    result = ops("check-connection", "--stack", "production", "session-secret")
    assert result.code == 2 and "not a PostgreSQL or Redis credential" in result.err
    assert len(result.err.splitlines()) == 1


def _two_versions(moto: Moto, cache: Any, previous: str, current: str) -> str:
    """filot/production/redis with AWSPREVIOUS holding `previous` and AWSCURRENT `current`."""
    full = "filot/production/redis"
    document = {"host": cache.host, "port": cache.port, "username": "filot-app", "tls": False,
                "masterarn": f"{ADMIN_ARN_PREFIX}filot/production/redis-admin-AbCdEf"}
    _put(moto, "ap-southeast-2", full, {**document, "password": previous})
    moto.planted.add(current)
    moto.client("secretsmanager", "ap-southeast-2").put_secret_value(
        SecretId=full, SecretString=json.dumps({**document, "password": current}))
    return full


def test_a_redis_rollback_goes_ahead_when_the_previous_password_still_logs_in(
        cache: Any, moto: Moto, ops: Callable[..., Result]) -> None:
    """A finishSecret keeps the previous password until the next rotation: the rollback logs in with it first."""
    import hashlib

    previous, current = new_password(), new_password()
    admin = cache.client("admin", cache.passwords["admin"])
    admin.execute_command("ACL", "SETUSER", "filot-app", "resetpass",
                          *("#" + hashlib.sha256(p.encode()).hexdigest() for p in (current, previous)))
    full = _two_versions(moto, cache, previous, current)
    stages = moto.client("secretsmanager", "ap-southeast-2").describe_secret(SecretId=full)["VersionIdsToStages"]
    (before,) = [v for v, s in stages.items() if "AWSPREVIOUS" in s]
    result = ops("rollback", "redis", "--stack", "production", "--yes")
    assert result.code == 0, result.err
    assert "the restored password logged in just now" in result.out and "forced" not in result.out
    assert moto.stages(full)["AWSCURRENT"] == before
    # Rolling back again would restore `current`, now AWSPREVIOUS: once the server has dropped it (an older
    # function's finishSecret, a reset), that rollback is refused.
    kept_hash = hashlib.sha256(previous.encode()).hexdigest()
    admin.execute_command("ACL", "SETUSER", "filot-app", "resetpass", "#" + kept_hash)
    result = ops("rollback", "redis", "--stack", "production", "--yes")
    assert result.code == 2 and "the previous redis-acl password does not log in" in result.err
    assert "WRONGPASS" in result.err or "invalid username-password" in result.err, result.err
    assert moto.stages(full)["AWSCURRENT"] == before, "nothing changed"
    admin.execute_command("ACL", "SETUSER", "filot-app", "resetpass", "#" + hashlib.sha256(
        cache.passwords["filot-app"].encode()).hexdigest())


def test_a_single_user_rollback_is_refused_without_a_login(pg: Any, tria_role: str, moto: Moto,
                                                         ops: Callable[..., Result]) -> None:
    """Single user: the password changed in place, so even one that would log in is not trusted without --force."""
    _put(moto, "ap-southeast-1", TRIA_DB, _database(pg, tria_role))
    moto.client("secretsmanager", "ap-southeast-1").put_secret_value(
        SecretId=TRIA_DB, SecretString=json.dumps(_database(pg, tria_role)))
    result = ops("rollback", "database", *TRIA)
    assert result.code == 2 and "retired on its server" in result.err and "--force" in result.err
