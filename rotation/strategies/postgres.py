"""PostgreSQL login rotation: single user, and alternating users (zero downtime).

Secret JSON: {"engine": "postgres", "host", "port", "dbname", "username", "password"}
(+ optional "url", rebuilt whenever the password changes; + optional "ssl" / "sslmode", see
`tls_options`). Alternating users add "masterarn": the ARN of a secret holding a role with
CREATEROLE (or superuser): {"username", "password"} (+ optional "host", "port", "dbname").
Single user may add it too: the master then installs a password the role's own credentials
cannot (the first value the program generated, or a role that does not exist yet).

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

import certifi
import psycopg
from psycopg import sql

from rotation import generate, template
from rotation.errors import ConfigurationError, CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, Strategy, rebuilt, templates_parameter
from rotation.tls import ca_bundle, is_loopback
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
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq's sslmode values (https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION)."""


def parse(value: str, what: str, extra: Mapping[str, type | tuple[type, ...]] | None = None,
          *, installed: bool = True) -> dict[str, Any]:
    """`installed=False` (AWSCURRENT only): the value may lack `password`, as the first version of a credential
    that its first rotation installs (the program writes only the non-secret parts: nothing installed yet)."""
    required = dict(REQUIRED) if installed else {k: t for k, t in REQUIRED.items() if k != "password"}
    data = load_object(value, what, {**required, **(extra or {})})
    if not installed and data.get("password") is not None and not isinstance(data["password"], str):
        raise SecretFormatError(f"secret {what}: field 'password' must be str, got {type(data['password']).__name__}")
    if data["engine"] not in ("postgres", "postgresql"):
        raise SecretFormatError(f"secret {what}: engine {data['engine']!r} is not 'postgres'")
    try:
        data["port"] = int(data["port"])
    except ValueError as exc:
        raise SecretFormatError(f"secret {what}: port {data['port']!r} is not a number") from exc
    if data.get("sslmode") is not None and data["sslmode"] not in SSLMODES:
        raise SecretFormatError(f"secret {what}: sslmode {data['sslmode']!r} is not one of {', '.join(SSLMODES)}")
    if data.get("ssl") is not None and _flag(data["ssl"]) is None:
        raise SecretFormatError(f"secret {what}: field 'ssl' must be true or false")
    return data


def _flag(value: object) -> bool | None:
    """`ssl` as AWS's reference functions read it: a boolean, or the string "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def tls_options(data: Mapping[str, Any]) -> dict[str, str]:
    """libpq TLS settings for a parsed secret.

    `sslmode` in the secret is used as given (`require` with a configured bundle verifies the chain, as
    libpq does when it has a root certificate; `verify-ca`/`verify-full` without one verify against the
    public CAs of certifi's bundle, shipped in the package). Otherwise `ssl: true`, or any host that is not loopback,
    requires TLS: `verify-full` (certificate chain and host name) when a CA bundle is configured,
    `require` (encrypted, unverified) when not. `ssl: false` turns TLS off; a loopback host without
    either key keeps libpq's `prefer`. A required TLS connection never falls back to plaintext.
    """
    bundle = ca_bundle()
    mode = data.get("sslmode")
    if mode is None:
        ssl = _flag(data["ssl"]) if data.get("ssl") is not None else None
        if ssl is False:
            mode = "disable"
        elif ssl is None and is_loopback(str(data["host"])):
            mode = "prefer"
        else:
            mode = "verify-full" if bundle else "require"
    options = {"sslmode": str(mode)}
    if mode in ("verify-ca", "verify-full"):
        # Without a configured bundle: the public CAs shipped in the package (certifi). Not
        # `sslrootcert=system`: psycopg-binary's own OpenSSL looks only in its compiled-in directory or
        # $SSL_CERT_FILE, never in Lambda's store, so no certificate would verify.
        options["sslrootcert"] = bundle or certifi.where()
    elif mode == "require" and bundle:
        # libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as that of
        # verify-ca" (libpq-ssl.html, 34.19.1): an explicit `require` is verified against the bundle too.
        options["sslrootcert"] = bundle
    return options


URL = "postgresql://{username}:{password}@{host}:{port}/{dbname}"
"""The `url` a secret without a catalog template for it gets."""


def build_url(data: Mapping[str, Any]) -> str:
    """postgresql://user:pass@host:port/dbname, every part percent-encoded."""
    return template.render(URL, data)


def with_password(data: Mapping[str, Any], username: str, password: str, url: bool = False,
                  templates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`url`: add the URL even if `data` has none (the catalog declares one, left out of a first version);
    `templates`: the catalog's templates, rendered again with the new credential."""
    return rebuilt({**data, "username": username, "password": password}, templates, url or "url" in data,
                   build_url)


def connect(data: Mapping[str, Any], username: str | None = None, password: str | None = None) -> psycopg.Connection:
    """Connect (autocommit) as the secret's user, or `username`/`password` on its host."""
    conninfo = psycopg.conninfo.make_conninfo(
        host=data["host"],
        port=int(data["port"]),
        dbname=data["dbname"],
        user=username or data["username"],
        password=password or data["password"],
        connect_timeout=CONNECT_TIMEOUT,
        **tls_options(data),
    )
    return psycopg.connect(conninfo, autocommit=True)


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


def _url_flag(params: Mapping[str, Any]) -> bool:
    """`"url": true`: the secret has a `url` that its first version, written without the password, lacks."""
    url = params.get("url", False)
    if not isinstance(url, bool):
        raise ConfigurationError(f"postgres: 'url' must be true or false, not {type(url).__name__}")
    return url


@contextmanager
def master_connection(data: Mapping[str, Any], ctx: RotationContext) -> Iterator[psycopg.Connection]:
    """A connection as the admin role of the secret named by `masterarn` (its AWSCURRENT value)."""
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


def install(conn: psycopg.Connection, data: Mapping[str, Any], member_of: str | None = None) -> None:
    """As the admin role: create the secret's role if it does not exist (LOGIN, a member of `member_of`
    when given, which is created first if missing), then set its password (the verifier only)."""
    user = data["username"]
    try:
        for role, parent in ([(member_of, None)] if member_of else []) + [(user, member_of)]:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                continue
            # Created without a password; set_password then sends only the verifier. Privileges on
            # tables are the database owner's grants (or the base role's, by membership).
            statement = sql.SQL("CREATE ROLE {} WITH LOGIN").format(sql.Identifier(role))
            if parent:
                statement = sql.SQL("{} INHERIT IN ROLE {}").format(statement, sql.Identifier(parent))
            conn.execute(statement)
            logger.info("setSecret: created role %s%s", role, f" as a member of {parent}" if parent else "")
        set_password(conn, user, data["password"])
    except psycopg.Error as exc:
        raise ExternalServiceError(
            f"setSecret: changing role {user} on {_where(data)} failed: {describe_exc(exc, [data['password']])}"
        ) from exc


class SingleUserStrategy(Strategy):
    """One role; its password changes in setSecret (clients on the old one fail until they re-read).

    The role changes its own password, logged in with AWSCURRENT. With a `masterarn`, the admin role
    installs the password when AWSCURRENT cannot log in: the first rotation after the deploy installs
    the program's first value this way (creating the role if needed). Without one, AWSPREVIOUS and
    unlabelled versions are tried as a last resort, as AWS's sample does.
    """

    name = "postgres-single-user"
    parameters = frozenset({"generate", "url", "templates"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.spec = _password_spec(params)
        self.url = _url_flag(params)
        self.templates = templates_parameter(self.name, params)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)", installed=False)
        return json.dumps(with_password(data, data["username"], generate.generate(self.spec), self.url,
                                        self.templates))

    def _candidates(self, pending: dict[str, Any], current: str, ctx: RotationContext) -> Iterator[tuple[str, str]]:
        """(label, password) to log in with: AWSCURRENT; then, with no master to fall back on, AWSPREVIOUS
        and unlabelled versions (each read only when the one before failed)."""
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)", installed=False)
        # Without a password nothing is installed yet (the first version): nothing to log in with.
        if data["username"] == pending["username"] and data.get("password") is not None:
            yield "AWSCURRENT", data["password"]
        if pending.get("masterarn"):
            return
        previous = ctx.previous()
        if previous:
            try:
                data = parse(previous, f"{ctx.secret_name} (AWSPREVIOUS)")
            except SecretFormatError:
                pass  # a malformed AWSPREVIOUS is no reason to stop
            else:
                if data["username"] == pending["username"]:
                    yield "AWSPREVIOUS", data["password"]
        for version_id, value in ctx.older_values():
            try:
                older = json.loads(value)
            except ValueError:
                continue
            # A version of another user, or without a password, has nothing to log in with.
            if isinstance(older, dict) and older.get("username") == pending["username"] \
                    and isinstance(older.get("password"), str):
                yield f"version {version_id}", older["password"]

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)")
        if try_login(data) is None:
            logger.info("setSecret: AWSPENDING of %s already logs in; nothing to do", ctx.secret_name)
            return
        reasons: list[str] = []
        for label, password in self._candidates(data, current, ctx):
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
        if data.get("masterarn"):
            with master_connection(data, ctx) as conn:
                install(conn, data)
            logger.info("setSecret: password of %s installed with the master credential", _where(data))
            return
        raise CredentialError(
            f"setSecret: cannot log in to {_where(data)} with AWSPENDING, AWSCURRENT or AWSPREVIOUS "
            f"({'; '.join(reasons) or 'no candidate with the same username'}); name a master credential "
            "(catalog rotation.master) to install it"
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
    (INHERIT), so it has the base role's privileges; on an empty server the base role is created
    too (LOGIN, no password until its turn comes).
    """

    name = "postgres-alternating-users"
    parameters = frozenset({"generate", "url", "templates"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.spec = _password_spec(params)
        self.url = _url_flag(params)
        self.templates = templates_parameter(self.name, params)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        # A first version without a password (nothing installed yet) alternates like any other: the master
        # creates the base role and installs the clone.
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)", {"masterarn": str}, installed=False)
        user = data["username"]
        other = user[: -len(CLONE_SUFFIX)] if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX
        return json.dumps(with_password(data, other, generate.generate(self.spec), self.url, self.templates))

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)", {"masterarn": str})
        cur = parse(current, f"{ctx.secret_name} (AWSCURRENT)", {"masterarn": str}, installed=False)
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
        with master_connection(data, ctx) as conn:
            install(conn, data, member_of=base if base != user else None)
        logger.info("setSecret: password of %s set with the master credential", _where(data))

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)", {"masterarn": str})
        reason = try_login(data)
        if reason is not None:
            raise CredentialError(f"testSecret: AWSPENDING cannot log in to {_where(data)}: {reason}")
