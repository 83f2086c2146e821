"""Redis ACL user rotation with two passwords during the switch (zero downtime).

Secret JSON: {"host", "port", "username", "password", "tls": false, "masterarn"}
(+ optional "url", rebuilt as redis://user:pass@host:port, rediss:// with tls). The master
secret holds an admin user allowed to run ACL SETUSER: {"username", "password"}
(+ optional "host", "port", "tls").

setSecret adds the pending password next to the current one; finishSecret, once AWSCURRENT
moved, leaves the user with two passwords: the new AWSCURRENT and the previous one (AWSPREVIOUS, if the
user still holds it), so a consumer that cached the previous value keeps logging in until the next
rotation finishes (as with PostgreSQL's alternating users); the password of two rotations ago, and any
left by an interrupted or superseded rotation, is dropped in the same atomic command. A leaked password
therefore needs two rotations to stop working. A user that does not exist yet (the first
rotation after the deploy, on a server with only the admin user) is created `on` with the ACL rules
of the `acl` parameter (default DEFAULT_ACL). Passwords are sent as SHA-256 hashes
(`#<hex>`), so the plaintext never travels and cannot show in MONITOR or the slow log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rotation import generate, template
from rotation.errors import ConfigurationError, CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, Strategy, rebuilt, templates_parameter
from rotation.tls import ca_bundle
from rotation.values import describe_exc, load_object

logger = logging.getLogger(__name__)

REQUIRED: Mapping[str, type | tuple[type, ...]] = {
    "host": str,
    "port": (int, str),
    "username": str,
    "password": str,
    "masterarn": str,
}
TIMEOUT = 5
DEFAULT_ACL = ("~*", "&*", "+@all", "-@dangerous")
"""Rules of a user the function creates: every key and channel, every command but the dangerous ones
(ACL, CONFIG, FLUSHALL, KEYS, ...: https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/)."""
PASSWORD_RULES = re.compile(r"^([<>#!].*|nopass|resetpass|reset|on|off)$", re.IGNORECASE)
"""Rules about passwords and the user's state, which the function alone manages."""


def parse(value: str, what: str, *, installed: bool = True) -> dict[str, Any]:
    """`installed=False` (AWSCURRENT only): the value may lack `password`, as the first version of a user that
    its first rotation creates (the program writes only the non-secret parts: nothing installed yet)."""
    data = load_object(value, what, REQUIRED if installed else {k: t for k, t in REQUIRED.items() if k != "password"})
    if not installed and data.get("password") is not None and not isinstance(data["password"], str):
        raise SecretFormatError(f"secret {what}: field 'password' must be str, got {type(data['password']).__name__}")
    try:
        data["port"] = int(data["port"])
    except ValueError as exc:
        raise SecretFormatError(f"secret {what}: port {data['port']!r} is not a number") from exc
    if not isinstance(data.get("tls", False), bool):
        raise SecretFormatError(f"secret {what}: field 'tls' must be true or false")
    return data


URL = "{username}:{password}@{host}:{port}"
"""The `url` a secret without a catalog template for it gets: `redis://` or, with tls, `rediss://` before it."""


def build_url(data: Mapping[str, Any]) -> str:
    return template.render(("rediss://" if data.get("tls") else "redis://") + URL, data)


def client(data: Mapping[str, Any], username: str | None = None, password: str | None = None) -> redis.Redis:
    """A client that fails at once: redis-py would otherwise retry a refused login for seconds."""
    return redis.Redis(
        host=data["host"],
        port=int(data["port"]),
        username=username or data["username"],
        password=password or data["password"],
        ssl=bool(data.get("tls", False)),
        # With a configured bundle the certificate is verified against it; else against the system's CAs.
        ssl_ca_certs=ca_bundle() if data.get("tls") else None,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def try_login(data: Mapping[str, Any]) -> str | None:
    """None if `data` authenticates and PINGs, else the (redacted) reason."""
    conn = client(data)
    try:
        conn.ping()
    except redis.RedisError as exc:
        return describe_exc(exc, [data["password"]])
    finally:
        conn.close()
    return None


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _where(data: Mapping[str, Any]) -> str:
    return f"redis {data['host']}:{data['port']} user {data['username']}"


class RedisAclStrategy(Strategy):
    name = "redis-acl"
    # finishSecret retires passwords: it keeps AWSCURRENT and AWSPREVIOUS (read through `ctx.previous()`),
    # drops every other one, so a password stops working one rotation after it stopped being current.
    retires = True
    parameters = frozenset({"generate", "acl", "url", "templates"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.spec = generate.validate(params.get("generate", generate.DEFAULT_PASSWORD_SPEC))
        acl = params.get("acl")
        rules = tuple(acl.split()) if isinstance(acl, str) else DEFAULT_ACL if acl is None else None
        if not rules or any(PASSWORD_RULES.match(rule) for rule in rules):
            raise ConfigurationError("redis-acl: 'acl' must be a string of ACL rules without password or on/off rules")
        self.acl = rules
        # `"url": true`: the secret has a `url` that its first version, written without the password, lacks.
        self.url = params.get("url", False)
        if not isinstance(self.url, bool):
            raise ConfigurationError("redis-acl: 'url' must be true or false")
        self.templates = templates_parameter(self.name, params)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)", installed=False)
        new = {**data, "password": generate.generate(self.spec)}
        return json.dumps(rebuilt(new, self.templates, self.url or "url" in data, build_url))

    @contextmanager
    def _admin(self, data: Mapping[str, Any], ctx: RotationContext, step: str) -> Iterator[redis.Redis]:
        what = f"master secret of {ctx.secret_name}"
        master = load_object(ctx.fetch_secret(data["masterarn"], what), what, {"username": str, "password": str})
        target: dict[str, Any] = {**data, **{k: master[k] for k in ("host", "port", "tls") if k in master}}
        conn = client(target, master["username"], master["password"])
        try:
            conn.ping()
        except redis.RedisError as exc:
            conn.close()
            raise CredentialError(
                f"{step}: the master credential cannot log in to redis {target['host']}:{target['port']} "
                f"as {master['username']}: {describe_exc(exc, [master['password']])}"
            ) from exc
        try:
            yield conn
        except redis.RedisError as exc:
            raise ExternalServiceError(
                f"{step}: ACL SETUSER {data['username']} failed on {_where(data)}: "
                f"{describe_exc(exc, [master['password'], data['password']])}"
            ) from exc
        finally:
            conn.close()

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)")
        # A current version without a password: nothing installed yet, the master creates the user below.
        cur = parse(current, f"{ctx.secret_name} (AWSCURRENT)", installed=False)
        if cur["username"] != data["username"]:
            raise SecretFormatError(
                f"setSecret: AWSPENDING of {ctx.secret_name} names user {data['username']!r}, "
                f"AWSCURRENT {cur['username']!r}; this strategy rotates one user"
            )
        if try_login(data) is None:
            logger.info("setSecret: AWSPENDING of %s already logs in; nothing to do", ctx.secret_name)
            return
        with self._admin(data, ctx, "setSecret") as admin:
            if admin.execute_command("ACL", "GETUSER", data["username"]) is None:
                # The first install: the user does not exist, so AWSCURRENT never logged in.
                admin.execute_command("ACL", "SETUSER", data["username"], "reset", "on", *self.acl,
                                      "#" + _hash(data["password"]))
                logger.info("setSecret: created %s with ACL %s", _where(data), " ".join(self.acl))
                return
            # `#<sha256>` adds a password by its hash; the current one stays valid.
            admin.execute_command("ACL", "SETUSER", data["username"], "#" + _hash(data["password"]))
        logger.info("setSecret: added the pending password to %s", _where(data))

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = parse(pending, f"{ctx.secret_name} (AWSPENDING)")
        reason = try_login(data)
        if reason is not None:
            raise CredentialError(f"testSecret: AWSPENDING cannot log in to {_where(data)}: {reason}")

    def finish(self, current: str, ctx: RotationContext) -> None:
        data = parse(current, f"{ctx.secret_name} (AWSCURRENT)")
        keep = [_hash(data["password"])]
        previous = _previous_hash(data, ctx)
        with self._admin(data, ctx, "finishSecret") as admin:
            if previous is not None and previous not in keep:
                held = (admin.acl_getuser(data["username"]) or {}).get("passwords")
                if isinstance(held, list) and previous in held:
                    keep.append(previous)
                else:
                    # Retired already (by a finishSecret before this rule, or by hand) or never installed:
                    # finishSecret keeps a password, it never brings one back.
                    logger.warning("finishSecret: the AWSPREVIOUS password of %s is not one of %s's passwords; "
                                   "keeping only the AWSCURRENT password", ctx.secret_name, _where(data))
            # One atomic command: drop every password, then add AWSCURRENT (and AWSPREVIOUS) back. This drops the
            # password of two rotations ago and any left behind by an interrupted or superseded rotation.
            admin.execute_command("ACL", "SETUSER", data["username"], "resetpass", *("#" + h for h in keep))
        if len(keep) == 2:
            logger.info("finishSecret: %s now accepts the AWSCURRENT and AWSPREVIOUS passwords", _where(data))
        else:
            logger.info("finishSecret: %s now accepts only the AWSCURRENT password", _where(data))


def _previous_hash(data: Mapping[str, Any], ctx: RotationContext) -> str | None:
    """The hash of AWSPREVIOUS's password, which finishSecret keeps for one more rotation period; None, with the
    reason logged (never a value), when there is none to keep: the secret's first rotation, a version without a
    password (the program's first version), one that is not a JSON object of this user. A failed read fails the
    step: Secrets Manager retries finishSecret, and until then the server keeps every password it had."""
    why = f"finishSecret: AWSPREVIOUS of {ctx.secret_name}"
    try:
        value = ctx.previous()
    except SecretFormatError:  # a binary version (SecretBinary, no SecretString)
        logger.warning("%s has no SecretString; keeping only the AWSCURRENT password", why)
        return None
    if value is None:
        logger.info("%s does not exist (first rotation); keeping only the AWSCURRENT password", why)
        return None
    try:
        old = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        old = None
    if not isinstance(old, dict):
        logger.warning("%s is not a JSON object; keeping only the AWSCURRENT password", why)
        return None
    if old.get("username") != data["username"]:
        logger.warning("%s names another user or none; keeping only the AWSCURRENT password", why)
        return None
    password = old.get("password")
    if not isinstance(password, str) or not password:
        logger.info("%s has no password (nothing was installed with it); keeping only the AWSCURRENT password", why)
        return None
    try:
        return _hash(password)
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no password Redis could hold
        logger.warning("%s has a password that is not valid Unicode; keeping only the AWSCURRENT password", why)
        return None
