"""PostgreSQL login rotation: single user, and alternating users (zero downtime).

Secret JSON: {"engine": "postgres", "host", "port", "dbname", "username", "password"}
(+ optional "url", rebuilt whenever the password changes; + optional "sslmode", default
"prefer"). Alternating users add "masterarn": the ARN of a secret holding a role with
CREATEROLE (or superuser): {"username", "password"} (+ optional "host", "port", "dbname").

Passwords never travel in clear to the server: the client computes the SCRAM-SHA-256 verifier
with libpq (PQencryptPasswordConn) and ALTER ROLE receives only the verifier, so neither
statement logging nor pg_stat_statements can record the password.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from rotation import generate
from rotation.errors import CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, Strategy
from rotation.values import describe_exc, load_object

logger = logging.getLogger(__name__)

REQUIRED: Mapping[str, type | tuple[type, ...]] = {
    "engine": str,
    "host": str,
    "port": (int, str),
    "dbname": str,
    "username": str,
    "password": str,
}
CONNECT_TIMEOUT = 5
CLONE_SUFFIX = "_clone"


def parse(value: str, what: str, extra: Mapping[str, type | tuple[type, ...]] | None = None) -> dict[str, Any]:
    data = load_object(value, what, {**REQUIRED, **(extra or {})})
    if data["engine"] not in ("postgres", "postgresql"):
        raise SecretFormatError(f"secret {what}: engine {data['engine']!r} is not 'postgres'")
    try:
        data["port"] = int(data["port"])
    except ValueError as exc:
        raise SecretFormatError(f"secret {what}: port {data['port']!r} is not a number") from exc
    return data


def build_url(data: Mapping[str, Any]) -> str:
    """postgresql://user:pass@host:port/dbname, every part percent-encoded."""
    return (
        f"postgresql://{quote(data['username'], safe='')}:{quote(data['password'], safe='')}"
        f"@{data['host']}:{data['port']}/{quote(data['dbname'], safe='')}"
    )


def with_password(data: Mapping[str, Any], username: str, password: str) -> dict[str, Any]:
    new = {**data, "username": username, "password": password}
    if "url" in data:
        new["url"] = build_url(new)
    return new


def connect(data: Mapping[str, Any], username: str | None = None, password: str | None = None) -> psycopg.Connection:
    """Connect (autocommit) as the secret's user, or `username`/`password` on its host."""
    return psycopg.connect(
        host=data["host"],
        port=int(data["port"]),
        dbname=data["dbname"],
        user=username or data["username"],
        password=password or data["password"],
        sslmode=data.get("sslmode", "prefer"),
        connect_timeout=CONNECT_TIMEOUT,
        autocommit=True,
    )


def try_login(data: Mapping[str, Any]) -> str | None:
    """None if `data` logs in and runs SELECT 1, else the (redacted) reason."""
    try:
        with connect(data) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return describe_exc(exc, [data["password"]])
    return None


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """ALTER ROLE <username> WITH PASSWORD <SCRAM verifier of password>.

    ALTER ROLE is a utility statement: PostgreSQL accepts no bind parameters ($1) in it, so the
    value must be a literal. The role name is quoted by sql.Identifier; the literal is the
    SCRAM-SHA-256 verifier computed client-side by libpq and quoted by sql.Literal (libpq
    escaping for the connection's encoding), so the plaintext password never reaches the server.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), username.encode(), b"scram-sha-256").decode()
    conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(username), sql.Literal(verifier)))


def _where(data: Mapping[str, Any]) -> str:
    return f"postgres {data['host']}:{data['port']}/{data['dbname']} as {data['username']}"


def _password_spec(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return generate.validate(params.get("generate", generate.DEFAULT_PASSWORD_SPEC))


class SingleUserStrategy(Strategy):
    """One role; its password changes in setSecret (clients on the old one fail until they re-read)."""

    name = "postgres-single-user"
    parameters = frozenset({"generate"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.spec = _password_spec(params)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)")
        return json.dumps(with_password(data, data["username"], generate.generate(self.spec)))

    def _candidates(
        self, pending: dict[str, Any], current: str, previous: str | None, ctx: RotationContext
    ) -> Iterator[tuple[str, str]]:
        """(label, password) to log in with, in the AWS sample's order, then unlabelled versions."""
        labelled = [("AWSCURRENT", current)] + ([("AWSPREVIOUS", previous)] if previous else [])
        for label, value in labelled:
            try:
                data = parse(value, f"{ctx.secret_name} ({label})")
            except SecretFormatError:
                if label == "AWSCURRENT":
                    raise
                continue  # a malformed AWSPREVIOUS is no reason to stop
            if data["username"] == pending["username"]:
                yield label, data["password"]
        for version_id, value in ctx.older_values():
            try:
                data = json.loads(value)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("username") == pending["username"]:
                yield f"version {version_id}", str(data.get("password", ""))

    def set(self, pending: str, current: str, previous: str | None, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)")
        if try_login(data) is None:
            logger.info("setSecret: AWSPENDING of %s already logs in; nothing to do", ctx.secret_name)
            return
        reasons: list[str] = []
        for label, password in self._candidates(data, current, previous, ctx):
            try:
                conn = connect(data, password=password)
            except psycopg.Error as exc:
                reasons.append(f"{label}: {describe_exc(exc, [password, data['password']])}")
                if isinstance(exc, psycopg.OperationalError) and "password authentication" not in str(exc):
                    break  # server unreachable: the other passwords will not help
                continue
            with conn:
                try:
                    set_password(conn, data["username"], data["password"])
                except psycopg.Error as exc:
                    raise ExternalServiceError(
                        f"setSecret: ALTER ROLE failed on {_where(data)} (logged in with {label}): "
                        f"{describe_exc(exc, [password, data['password']])}"
                    ) from exc
            logger.info("setSecret: password of %s set (logged in with %s)", _where(data), label)
            return
        raise CredentialError(
            f"setSecret: cannot log in to {_where(data)} with AWSPENDING, AWSCURRENT or AWSPREVIOUS "
            f"({'; '.join(reasons) or 'no candidate with the same username'})"
        )

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)")
        reason = try_login(data)
        if reason is not None:
            raise CredentialError(f"testSecret: AWSPENDING cannot log in to {_where(data)}: {reason}")


class AlternatingUsersStrategy(Strategy):
    """Two roles, `app` and `app_clone`; each rotation changes the one NOT in use and switches to it.

    Clients holding the AWSCURRENT credential keep working through the rotation and until the
    next one. The clone is created by the master credential as a member of the base role
    (INHERIT), so it has the base role's privileges.
    """

    name = "postgres-alternating-users"
    parameters = frozenset({"generate"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.spec = _password_spec(params)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)", {"masterarn": str})
        user = data["username"]
        other = user[: -len(CLONE_SUFFIX)] if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX
        return json.dumps(with_password(data, other, generate.generate(self.spec)))

    @contextmanager
    def _master(self, data: Mapping[str, Any], ctx: RotationContext) -> Iterator[psycopg.Connection]:
        what = f"master secret of {ctx.secret_name}"
        master = load_object(ctx.fetch_secret(data["masterarn"], what), what, {"username": str, "password": str})
        target = {**data, **{k: master[k] for k in ("host", "port", "dbname") if master.get(k)}}
        try:
            conn = connect(target, master["username"], master["password"])
        except psycopg.Error as exc:
            raise CredentialError(
                f"setSecret: the master credential cannot log in to postgres "
                f"{target['host']}:{target['port']}/{target['dbname']} as {master['username']}: "
                f"{describe_exc(exc, [master['password']])}"
            ) from exc
        with conn:
            yield conn

    def set(self, pending: str, current: str, previous: str | None, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)", {"masterarn": str})
        cur = parse(current, f"{ctx.secret_name} (AWSCURRENT)", {"masterarn": str})
        user = data["username"]
        if user == cur["username"]:
            # Changing the role that is in use would cut off every client: refuse.
            raise SecretFormatError(
                f"setSecret: AWSPENDING of {ctx.secret_name} uses the same role {user!r} as AWSCURRENT"
            )
        if try_login(data) is None:
            logger.info("setSecret: AWSPENDING of %s already logs in; nothing to do", ctx.secret_name)
            return
        base = user[: -len(CLONE_SUFFIX)] if user.endswith(CLONE_SUFFIX) else user
        with self._master(data, ctx) as conn:
            try:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
                if exists:
                    set_password(conn, user, data["password"])
                else:
                    # Created without a password first, then set_password sends only the verifier.
                    conn.execute(
                        sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT IN ROLE {}").format(
                            sql.Identifier(user), sql.Identifier(base)
                        )
                    )
                    set_password(conn, user, data["password"])
                    logger.info("setSecret: created role %s as a member of %s", user, base)
            except psycopg.Error as exc:
                raise ExternalServiceError(
                    f"setSecret: changing role {user} on {_where(data)} failed: {describe_exc(exc, [data['password']])}"
                ) from exc
        logger.info("setSecret: password of %s set with the master credential", _where(data))

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)", {"masterarn": str})
        reason = try_login(data)
        if reason is not None:
            raise CredentialError(f"testSecret: AWSPENDING cannot log in to {_where(data)}: {reason}")
