"""An RDS-managed master as the admin credential of alternating PostgreSQL users, against a real server.

What RDS keeps in the secret it manages for a master password (`manage_master_user_password`) is
{"username", "password"} only, under a name `rds!cluster-<uuid>` / `rds!db-<uuid>`: the host, port and
database come from the rotated secret's own keys (aws-samples/aws-secrets-manager-rotation-lambdas PR #96;
RDS User Guide, "Password management with Amazon RDS and AWS Secrets Manager"). The RDS master is not a
superuser: a role with CREATEROLE (rds_superuser's members), as modelled here. RDS rotates that secret on
its own schedule (7 days by default): the alternating users must keep working across it, and the next
alternating rotation must log in with the master's new password.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from psycopg import sql
from rotation_harness import STEPS, Harness, SecretDict, SecretStr
from servers import PostgresServer

from rotation.errors import CredentialError
from rotation.strategies.postgres import build_url

pytestmark = pytest.mark.servers

PASSWORD_SPEC = {"kind": "password", "length": 40, "alphabet": "alphanumeric"}


def _managed_master(harness: Harness, pg: PostgresServer) -> tuple[str, str, SecretStr]:
    """An admin role as RDS creates it (CREATEROLE, not superuser) and the secret RDS would keep for it."""
    user = f"rdsmaster_{uuid.uuid4().hex[:6]}"
    password = SecretStr(uuid.uuid4().hex + uuid.uuid4().hex)
    with pg.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)))
    arn = harness.secret(f"rds!cluster-{uuid.uuid4()}", json.dumps({"username": user, "password": password}))
    return arn, user, password


def _rds_rotates_master(harness: Harness, pg: PostgresServer, arn: str, user: str) -> SecretStr:
    """What RDS does on its schedule: a new master password on the server and as the secret's AWSCURRENT."""
    password = SecretStr(uuid.uuid4().hex + uuid.uuid4().hex)
    with pg.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
    harness.sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": user, "password": password}))
    return password


@pytest.fixture
def managed(harness: Harness, pg: PostgresServer, name: str) -> tuple[str, dict[str, Any], str, str, str]:
    """(function, initial app credential, table, managed master ARN, master role)."""
    arn, master_user, _ = _managed_master(harness, pg)
    user = f"app_{uuid.uuid4().hex[:6]}"
    password = SecretStr(uuid.uuid4().hex)
    pg.create_role(user, password)
    table = f"orders_{uuid.uuid4().hex[:6]}"
    with pg.connect() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (42)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(user)))
    initial = SecretDict({"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                          "username": user, "password": password, "masterarn": arn})
    initial["url"] = build_url(initial)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-alternating-users", {name: {"generate": PASSWORD_SPEC}}, paused=True)
    return fn, initial, table, arn, master_user


def _reads(pg: PostgresServer, data: dict[str, Any], table: str) -> bool:
    with pg.connect(data["username"], data["password"]) as conn:
        return conn.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))).fetchone() == (42,)


def test_managed_master_secret_holds_no_host(harness: Harness, pg: PostgresServer,
                                             managed: tuple[str, dict[str, Any], str, str, str]) -> None:
    """The master's shape RDS writes: the function takes host, port and database from the rotated secret."""
    _, _, _, arn, _ = managed
    assert set(harness.json(arn)) == {"username", "password"}
    assert harness.sm.describe_secret(SecretId=arn)["Name"].startswith("rds!cluster-")


def test_alternating_users_survive_the_managed_master_rotation(
        harness: Harness, pg: PostgresServer, name: str,
        managed: tuple[str, dict[str, Any], str, str, str]) -> None:
    fn, initial, table, arn, master_user = managed
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
    first = harness.json(name)
    assert first["username"] == initial["username"] + "_clone" and _reads(pg, first, table)

    # RDS rotates its master between two of ours: neither alternating user is touched.
    _rds_rotates_master(harness, pg, arn, master_user)
    assert _reads(pg, first, table) and _reads(pg, initial, table)

    # Our next rotation logs in with the master's new password (the old one no longer works on the server).
    second_token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, second_token, fn)
        assert _reads(pg, first, table), f"AWSCURRENT stopped working during {step}"
    second = harness.json(name)
    assert second["username"] == initial["username"] and second["password"] != initial["password"]
    assert _reads(pg, second, table) and not pg.can_login(initial["username"], initial["password"])
    assert second["masterarn"] == arn  # the platform's key survives every rotation


def test_stale_master_password_fails_set_secret_without_touching_current(
        harness: Harness, pg: PostgresServer, name: str,
        managed: tuple[str, dict[str, Any], str, str, str]) -> None:
    """RDS changed the server's master password but the secret still holds the old one (a rotation of
    the master that failed half-way): setSecret fails loudly and AWSCURRENT keeps working."""
    fn, initial, table, _, master_user = managed
    with pg.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(master_user),
                                                                   sql.Literal(uuid.uuid4().hex)))
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    with pytest.raises(CredentialError, match="master credential cannot log in"):
        harness.step(name, "setSecret", token, fn)
    assert _reads(pg, harness.json(name), table) and _reads(pg, initial, table)
