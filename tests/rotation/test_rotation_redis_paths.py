"""redis-acl, the paths a rotation rarely takes, against a real redis-server and moto: a user created on
first install, a master that cannot log in or may not run ACL, refusals with their exact messages, and
what each step tells the operator (never a value: the autouse log fixture checks the logs)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from rotation_harness import STEPS, Harness, SecretDict, SecretStr, assert_no_secret
from servers import RedisServer, new_password

from rotation.errors import CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, SecretStore
from rotation.strategies.redis_acl import DEFAULT_ACL, RedisAclStrategy

pytestmark = pytest.mark.servers

LOGGER = "rotation.strategies.redis_acl"


def _messages(logs: Any) -> list[str]:
    return [r.getMessage() for r in logs.records if r.name == LOGGER]


def _user(redis_srv: RedisServer, rules: tuple[str, ...] = ("~app:*", "+@all")) -> tuple[str, SecretStr]:
    user, password = f"paths-{uuid.uuid4().hex[:8]}", SecretStr(new_password())
    admin = redis_srv.admin()
    try:
        admin.execute_command("ACL", "SETUSER", user, "on", "#" + hashlib.sha256(password.encode()).hexdigest(),
                              *rules)
    finally:
        admin.close()
    return user, password


def _where(redis_srv: RedisServer, user: str) -> str:
    return f"redis {redis_srv.host}:{redis_srv.port} user {user}"


def _app(harness: Harness, redis_srv: RedisServer, name: str, user: str, password: str,
         master: tuple[str, str] | None = None) -> str:
    """The app's secret (and its master secret: the server's admin unless `master`); a paused function."""
    username, master_password = master or (redis_srv.admin_user, redis_srv.passwords[redis_srv.admin_user])
    master_arn = harness.secret(name + "-master", json.dumps({"username": username, "password": master_password}))
    harness.secret(name, json.dumps({"host": redis_srv.host, "port": redis_srv.port, "username": user,
                                     "password": password, "masterarn": master_arn}))  # no "tls": plaintext
    return harness.function("redis-acl", {name: {}}, paused=True)


def test_a_rotation_tells_what_it_does(harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any) -> None:
    user, password = _user(redis_srv)
    fn = _app(harness, redis_srv, name, user, password)
    token = harness.rotate(name, fn)
    for step in STEPS[:2]:
        harness.step(name, step, token, fn)
    harness.step(name, "setSecret", token, fn)
    for step in STEPS[2:]:
        harness.step(name, step, token, fn)
    assert redis_srv.can_login(user, harness.json(name)["password"]) and redis_srv.can_login(user, password)
    assert _messages(rotation_logs) == [
        f"setSecret: added the pending password to {_where(redis_srv, user)}",
        f"setSecret: AWSPENDING of {name} already logs in; nothing to do",
        f"finishSecret: {_where(redis_srv, user)} now accepts the AWSCURRENT and AWSPREVIOUS passwords",
    ]


def test_a_user_missing_on_the_server_is_created_with_the_default_rules(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    user = f"paths-new-{uuid.uuid4().hex[:8]}"
    fn = _app(harness, redis_srv, name, user, new_password())
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
    assert redis_srv.can_login(user, harness.json(name)["password"])  # created `on`
    created = f"setSecret: created {_where(redis_srv, user)} with ACL {' '.join(DEFAULT_ACL)}"
    assert _messages(rotation_logs)[0] == created


def test_a_pending_value_of_another_user_is_refused(harness: Harness, redis_srv: RedisServer, name: str) -> None:
    user, password = _user(redis_srv)
    fn = _app(harness, redis_srv, name, user, password)
    token = harness.rotate(name, fn)
    pending = {**harness.json(name), "username": user + "-other", "password": new_password()}
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                                SecretString=json.dumps(pending))
    with pytest.raises(SecretFormatError) as info:
        harness.step(name, "setSecret", token, fn)
    assert str(info.value) == (f"setSecret: AWSPENDING of {name} names user {user + '-other'!r}, AWSCURRENT "
                               f"{user!r}; this strategy rotates one user")


@pytest.mark.parametrize("step", ["setSecret", "finishSecret"])
def test_a_master_that_cannot_log_in_is_named_with_the_step(
    harness: Harness, redis_srv: RedisServer, name: str, step: str,
) -> None:
    user, password = _user(redis_srv)
    fn = _app(harness, redis_srv, name, user, password)
    token = harness.rotate(name, fn)
    for earlier in STEPS[:STEPS.index(step)]:
        harness.step(name, earlier, token, fn)
    wrong = new_password()
    harness.sm.put_secret_value(SecretId=name + "-master",
                                SecretString=json.dumps({"username": redis_srv.admin_user, "password": wrong}))
    with pytest.raises(CredentialError) as info:
        harness.step(name, step, token, fn)
    message = str(info.value)
    assert message.startswith(f"{step}: the master credential cannot log in to redis {redis_srv.host}:"
                              f"{redis_srv.port} as {redis_srv.admin_user}: AuthenticationError: ")
    assert_no_secret(message, wrong, password, harness.json(name, "AWSPENDING")["password"])
    assert redis_srv.can_login(user, password)


@pytest.mark.parametrize("step", ["setSecret", "finishSecret"])
def test_a_master_not_allowed_to_run_acl_is_named_with_the_step(
    harness: Harness, redis_srv: RedisServer, name: str, step: str,
) -> None:
    user, password = _user(redis_srv)
    weak, weak_password = _user(redis_srv, ("~*", "+@all", "-@dangerous"))  # ACL is a dangerous command
    fn = _app(harness, redis_srv, name, user, password)
    token = harness.rotate(name, fn)
    for earlier in STEPS[:STEPS.index(step)]:
        harness.step(name, earlier, token, fn)
    harness.sm.put_secret_value(SecretId=name + "-master",
                                SecretString=json.dumps({"username": weak, "password": weak_password}))
    with pytest.raises(ExternalServiceError) as info:
        harness.step(name, step, token, fn)
    message = str(info.value)
    assert message.startswith(f"{step}: ACL SETUSER {user} failed on {_where(redis_srv, user)}: NoPermissionError: ")
    assert_no_secret(message, weak_password, password, harness.json(name, "AWSPENDING")["password"])
    assert redis_srv.can_login(user, password)


# ------------------------------------------------------------------ values refused before any connection

NAME = "paths/test/cache"
STRATEGY = RedisAclStrategy({})


def _ctx() -> RotationContext:
    """A context for checks that fail before any Secrets Manager call (no client is reached)."""
    return RotationContext(secret_name=NAME, token="t" * 32, store=SecretStore(None, NAME), client=None)


def _data(**changes: Any) -> str:
    data = {"host": "127.0.0.1", "port": 1, "username": "app", "password": "p" * 16, "tls": False,
            "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-AbCdEf"}
    return json.dumps({k: v for k, v in {**data, **changes}.items() if v is not None})


@pytest.mark.parametrize(("call", "message"), [
    (lambda: STRATEGY.create_pending(_data(port="six"), _ctx()),
     f"secret {NAME} (AWSCURRENT): port 'six' is not a number"),
    (lambda: STRATEGY.set("not json", _data(), _ctx()),
     f"secret {NAME} (AWSPENDING) is not valid JSON"),
    (lambda: STRATEGY.set(_data(), _data(tls="yes"), _ctx()),
     f"secret {NAME} (AWSCURRENT): field 'tls' must be true or false"),
    (lambda: STRATEGY.test(_data(masterarn=None), _ctx()),
     f"secret {NAME} (AWSPENDING) lacks required field(s) ['masterarn']"),
    (lambda: STRATEGY.finish(_data(username=None), _ctx()),
     f"secret {NAME} (AWSCURRENT) lacks required field(s) ['username']"),
    # Only AWSCURRENT may lack the password (a user its first rotation creates); a pending value may not.
    (lambda: STRATEGY.set(_data(password=None), _data(), _ctx()),
     f"secret {NAME} (AWSPENDING) lacks required field(s) ['password']"),
    (lambda: STRATEGY.test(_data(password=None), _ctx()),
     f"secret {NAME} (AWSPENDING) lacks required field(s) ['password']"),
    (lambda: STRATEGY.create_pending(_data(password=5), _ctx()),
     f"secret {NAME} (AWSCURRENT): field 'password' must be str, got int"),
])
def test_values_are_checked_and_named_by_secret_and_stage(call: Any, message: str) -> None:
    with pytest.raises(SecretFormatError) as info:
        call()
    assert str(info.value) == message


def test_a_pending_value_that_cannot_log_in_fails_the_test_step(redis_srv: RedisServer) -> None:
    user, _ = _user(redis_srv)
    pending = SecretDict({"host": redis_srv.host, "port": redis_srv.port, "username": user,
                          "password": new_password(), "tls": False, "masterarn": "arn:aws:secretsmanager:x"})
    with pytest.raises(CredentialError) as info:
        STRATEGY.test(json.dumps(pending), _ctx())
    message = str(info.value)
    where = _where(redis_srv, user)
    assert message.startswith(f"testSecret: AWSPENDING cannot log in to {where}: AuthenticationError: ")
    assert_no_secret(message, pending["password"])


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_is_given_up_on_without_retrying(silent_server: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection, then the timeout: redis-py's default would retry (three more connections)."""
    from rotation.strategies import redis_acl

    monkeypatch.setattr(redis_acl, "TIMEOUT", 0.5)
    reason = redis_acl.try_login(json.loads(_data(port=silent_server.port)))
    assert reason is not None and reason.startswith("TimeoutError: "), reason
    assert silent_server.connections == 1


@pytest.mark.parametrize("acl", ["nopass", "~* on", "", 7])
def test_an_acl_parameter_with_password_or_state_rules_is_refused(acl: object) -> None:
    from rotation.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        RedisAclStrategy({"acl": acl})
    assert str(info.value) == "redis-acl: 'acl' must be a string of ACL rules without password or on/off rules"


@pytest.mark.parametrize("url", ["yes", 1, None])
def test_a_url_parameter_that_is_not_a_boolean_is_refused(url: object) -> None:
    from rotation.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        RedisAclStrategy({"url": url})
    assert str(info.value) == "redis-acl: 'url' must be true or false"


def test_a_first_version_without_a_url_gets_one_only_when_the_parameter_asks() -> None:
    """The program's first version has no password, so no url: `"url": true` is how the function knows."""
    first = _data(password=None)
    assert "url" not in json.loads(RedisAclStrategy({}).create_pending(first, _ctx()))
    assert json.loads(RedisAclStrategy({"url": True}).create_pending(first, _ctx()))["url"].startswith("redis://app:")


def test_new_passwords_follow_the_generate_parameter() -> None:
    import string

    spec = {"kind": "password", "length": 20, "alphabet": "hex"}
    for strategy, length, chars in ((RedisAclStrategy({"generate": spec}), 20, set("0123456789abcdef")),
                                    (RedisAclStrategy({}), 32, set(string.ascii_letters + string.digits))):
        password = json.loads(strategy.create_pending(_data(), _ctx()))["password"]
        assert len(password) == length and set(password) <= chars


def test_a_new_value_keeps_the_fields_with_a_numeric_port_and_a_rebuilt_url() -> None:
    from urllib.parse import unquote, urlsplit

    current = json.loads(_data(port="6380"))
    pending = json.loads(STRATEGY.create_pending(json.dumps(current), _ctx()))
    assert pending["port"] == 6380 and "url" not in pending
    assert {k: v for k, v in pending.items() if k not in ("password", "port")} == {
        k: v for k, v in current.items() if k not in ("password", "port")}
    with_url = json.loads(STRATEGY.create_pending(json.dumps({**current, "url": "redis://old", "tls": True}), _ctx()))
    parts = urlsplit(with_url["url"])
    assert (parts.scheme, parts.hostname, parts.port) == ("rediss", "127.0.0.1", 6380)
    assert unquote(parts.username or "") == "app"
    assert unquote(parts.password or "") == with_url["password"] != current["password"]


def test_a_url_encodes_the_user_and_password() -> None:
    from rotation.strategies.redis_acl import build_url

    data = {"host": "cache.internal", "port": 6379, "username": "app/ro", "password": "p/w@x:y%z"}
    assert build_url(data) == "redis://app%2Fro:p%2Fw%40x%3Ay%25z@cache.internal:6379"
    assert build_url({**data, "tls": True}).startswith("rediss://")


def test_the_master_secret_may_name_the_admin_endpoint(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    """The app's address is not reachable from the function (127.0.0.2:1, TLS) while the master's host, port and
    tls lead to the server: setSecret installs the password there."""
    user, password = _user(redis_srv)
    master = {"username": redis_srv.admin_user, "password": redis_srv.passwords[redis_srv.admin_user],
              "host": redis_srv.host, "port": redis_srv.port, "tls": False}
    master_arn = harness.secret(name + "-master", json.dumps(master))
    harness.secret(name, json.dumps({"host": "127.0.0.2", "port": 1, "username": user, "password": password,
                                     "tls": True, "masterarn": master_arn}))
    fn = harness.function("redis-acl", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS[:2]:
        harness.step(name, step, token, fn)
    assert redis_srv.can_login(user, harness.json(name, "AWSPENDING")["password"])
    assert redis_srv.can_login(user, password)
    assert _messages(rotation_logs) == ["setSecret: added the pending password to redis 127.0.0.2:1 user " + user]


def test_a_user_created_on_first_install_gets_the_acl_parameter(
    harness: Harness, redis_srv: RedisServer, name: str, rotation_logs: Any,
) -> None:
    user = f"paths-acl-{uuid.uuid4().hex[:8]}"
    master_arn = harness.secret(name + "-master", json.dumps(
        {"username": redis_srv.admin_user, "password": redis_srv.passwords[redis_srv.admin_user]}))
    harness.secret(name, json.dumps({"host": redis_srv.host, "port": redis_srv.port, "username": user,
                                     "password": new_password(), "masterarn": master_arn}))
    fn = harness.function("redis-acl", {name: {"acl": "~app:* +ping +get +set"}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
    client = redis_srv.client(user, harness.json(name)["password"])
    try:
        assert client.set("app:k", "v") and client.get("app:k") == b"v"
        import redis

        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other:k", "v")  # outside ~app:*
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.delete("app:k")  # not +del
    finally:
        client.close()
    created = f"setSecret: created {_where(redis_srv, user)} with ACL ~app:* +ping +get +set"
    assert _messages(rotation_logs)[0] == created


@pytest.mark.timeout(60)
def test_a_server_that_stalls_after_the_login_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLIENT PAUSE holds every command (a server stuck mid-failover): the client gives up after its own
    timeout instead of waiting for the server."""
    from servers import redis_server

    from rotation.strategies import redis_acl

    monkeypatch.setattr(redis_acl, "TIMEOUT", 0.5)
    with redis_server({"app": "~* +@all"}) as server:  # its own server: the pause would hold the others
        admin = server.admin()
        try:
            admin.execute_command("CLIENT", "PAUSE", "20000", "ALL")
        finally:
            admin.close()
        data = {"host": server.host, "port": server.port, "username": "app", "password": server.passwords["app"]}
        reason = redis_acl.try_login(data)
    assert reason is not None and reason.startswith("TimeoutError: "), reason


def test_a_refused_login_is_tried_once(redis_srv: RedisServer) -> None:
    """redis-py's default retries a refused login (about 4 s of reconnecting): the strategy's client does not."""
    from rotation.strategies.redis_acl import try_login

    user, _ = _user(redis_srv)
    admin = redis_srv.admin()
    try:
        before = int(admin.info("stats")["total_connections_received"])
        reason = try_login({"host": redis_srv.host, "port": redis_srv.port, "username": user,
                            "password": new_password()})
        after = int(admin.info("stats")["total_connections_received"])
    finally:
        admin.close()
    assert reason is not None and reason.startswith("AuthenticationError: ")
    assert after - before == 1


def test_a_plaintext_connection_ignores_the_ca_bundle(redis_srv: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle is read only for `tls: true`: a plaintext secret logs in whatever DATABASE_CA_BUNDLE says."""
    from rotation.strategies.redis_acl import try_login
    from rotation.tls import CA_BUNDLE_ENV

    user, password = _user(redis_srv)
    monkeypatch.setenv(CA_BUNDLE_ENV, "/nonexistent/ca-bundle.pem")
    assert try_login({"host": redis_srv.host, "port": redis_srv.port, "username": user, "password": password}) is None


class StallingProxy:
    """A loopback proxy to a real server that stops answering once the client sends `marker` (a server that
    hangs after a successful login), and drops the connection `hold` seconds later."""

    def __init__(self, port: int, marker: bytes, hold: float) -> None:
        import socket
        import threading

        self._target, self._marker, self._hold = port, marker, hold
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.stalled = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import threading

        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", self._target))

        def answers() -> None:
            while (data := upstream.recv(65536)) and not self.stalled.is_set():
                client.sendall(data)

        threading.Thread(target=answers, daemon=True).start()
        with client, upstream:
            while data := client.recv(65536):
                if self._marker in data:
                    self.stalled.set()  # and the answers stop
                    threading.Event().wait(self._hold)
                    return
                upstream.sendall(data)

    def close(self) -> None:
        self._listener.close()


@pytest.mark.timeout(60)
def test_a_server_that_hangs_after_the_login_is_given_up_on(redis_srv: RedisServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The login succeeds and the PING after it is never answered: the socket timeout ends the wait (without
    one, redis-py waits until the server drops the connection, here 5 s later; in Lambda, until its timeout)."""
    from rotation.strategies import redis_acl

    monkeypatch.setattr(redis_acl, "TIMEOUT", 0.5)
    user, password = _user(redis_srv)
    proxy = StallingProxy(redis_srv.port, marker=b"PING", hold=5)
    try:
        reason = redis_acl.try_login({"host": "127.0.0.1", "port": proxy.port, "username": user,
                                      "password": password})
    finally:
        proxy.close()
    assert proxy.stalled.is_set(), "the login went through the proxy and the PING reached it"
    assert reason == "TimeoutError: Timeout reading from socket"
