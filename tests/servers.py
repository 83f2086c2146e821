"""Real servers on 127.0.0.1 for tests: moto (AWS API), PostgreSQL, Redis.

Each is a context manager that picks free ports, starts the server in a temporary directory,
waits until it answers and removes everything on exit. Passwords are generated at run time
with `secrets` and never printed. A missing server binary skips the test (pytest.skip) with the
package to install; any other start-up failure is an error, with the server's log tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PG_BIN_DIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15)]
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def new_password(length: int = 32) -> str:
    return secrets.token_urlsafe(length)


def _wait(check: Callable[[], bool], what: str, log: Path | None = None, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f}s\n{tail}")


# ---------------------------------------------------------------- moto


@dataclass
class MotoServer:
    endpoint_url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@dataclass
class EmptySecretRotation:
    """How the emulator labels the first value of a secret created empty (see `moto_rotates_empty_secrets`)."""

    first_put_is_current: bool = False
    """False: createSecret's PutSecretValue(VersionStages=[AWSPENDING]) labels only AWSPENDING and
    finishSecret moves AWSCURRENT to it (the behaviour getmoto/moto#9451 describes for AWS). True: the
    PutSecretValue also attaches AWSCURRENT, the other reading of AWS's "if this operation creates the
    first version for the secret, Secrets Manager automatically attaches AWSCURRENT". The handler must
    finish the rotation either way."""


@contextlib.contextmanager
def moto_rotates_empty_secrets() -> Iterator[EmptySecretRotation]:
    """Make moto rotate a secret created without a value, as Secrets Manager does.

    moto 5.2.5 (the latest release) fails there twice: RotateSecret on a secret with no versions
    raises UnboundLocalError (`new_version_id`) instead of creating the AWSPENDING version and
    invoking the function, and UpdateSecretVersionStage refuses to attach AWSCURRENT without a
    RemoveFromVersionId when no version holds it (getmoto/moto#9451, fix proposed in #9474). AWS
    does both: it is how a secret gets a first value that never leaves AWS. These two patches add
    exactly that behaviour and defer to moto for everything else.
    """
    import uuid

    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    behaviour = EmptySecretRotation()
    rotate_original = SecretsManagerBackend.rotate_secret
    stage_original = SecretsManagerBackend.update_secret_version_stage
    put_original = SecretsManagerBackend.put_secret_value

    def has_current(secret: Any) -> bool:
        return any("AWSCURRENT" in v["version_stages"] for v in secret.versions.values())

    def rotate_secret(self: SecretsManagerBackend, secret_id: str, client_request_token: str | None = None,
                      *args: Any, **kwargs: Any) -> str:
        secret = self.secrets.get(secret_id)
        stub = None
        if isinstance(secret, FakeSecret) and not secret.versions:
            # Give moto the version it expects; it then replaces it with the empty AWSPENDING version.
            stub = client_request_token = client_request_token or str(uuid.uuid4())
            secret.versions[stub] = {"createdate": int(time.time()), "version_id": stub, "version_stages": []}
        try:
            return rotate_original(self, secret_id, client_request_token, *args, **kwargs)
        except Exception:
            if stub is not None and secret is not None and not secret.versions.get(stub, {}).get("version_stages"):
                secret.versions.pop(stub, None)
            raise

    def update_secret_version_stage(self: SecretsManagerBackend, secret_id: str, version_stage: str,
                                    remove_from_version_id: str | None,
                                    move_to_version_id: str | None) -> tuple[str, str]:
        secret = self.secrets.get(secret_id)
        if (isinstance(secret, FakeSecret) and version_stage == "AWSCURRENT" and not remove_from_version_id
                and move_to_version_id in secret.versions and not has_current(secret)):
            secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
            secret.set_default_version_id(move_to_version_id)
            return secret.arn, secret.name
        return stage_original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)  # type: ignore[arg-type]

    def put_secret_value(self: SecretsManagerBackend, secret_id: str, secret_string: str, secret_binary: str,
                         client_request_token: str, version_stages: list[str]) -> str:
        secret = self.secrets.get(secret_id)
        first = secret is not None and not has_current(secret)
        result = put_original(self, secret_id, secret_string, secret_binary, client_request_token, version_stages)
        if behaviour.first_put_is_current and first and isinstance(secret, FakeSecret) \
                and client_request_token in secret.versions:
            stages = secret.versions[client_request_token]["version_stages"]
            if "AWSCURRENT" not in stages:
                stages.append("AWSCURRENT")
                secret.set_default_version_id(client_request_token)
        return result

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    SecretsManagerBackend.put_secret_value = put_secret_value  # type: ignore[method-assign]
    try:
        yield behaviour
    finally:
        SecretsManagerBackend.rotate_secret = rotate_original  # type: ignore[method-assign]
        SecretsManagerBackend.update_secret_version_stage = stage_original  # type: ignore[method-assign]
        SecretsManagerBackend.put_secret_value = put_original  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_keeps_version_values() -> Iterator[None]:
    """Make moto refuse to change the value of a version that has one, as Secrets Manager documents.

    PutSecretValue, ClientRequestToken: "If a version with this value already exists and the version of the
    SecretString and SecretBinary values are different from those in the request, then the request fails
    because you can't modify a secret version." moto 5.2.5 follows that rule except for a version labelled
    AWSPENDING, whose value it replaces (it lets the rotation's first put fill the empty AWSPENDING version
    RotateSecret opens, and lets any later put overwrite it too). This patch refuses the overwrite with
    moto's own error for the case (ResourceExistsException) and defers to moto for everything else.
    """
    from moto.secretsmanager.exceptions import ResourceExistsException
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    original = SecretsManagerBackend.put_secret_value

    def put_secret_value(self: SecretsManagerBackend, secret_id: str, secret_string: str, secret_binary: str,
                         client_request_token: str, version_stages: list[str]) -> str:
        secret = self.secrets.get(secret_id)
        version = secret.versions.get(client_request_token) if isinstance(secret, FakeSecret) else None
        stored = (version.get("secret_string"), version.get("secret_binary")) if version else (None, None)
        if secret is not None and stored != (None, None) and stored != (secret_string, secret_binary):
            raise ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                f"for a version of secret {secret.arn}.")
        return original(self, secret_id, secret_string, secret_binary, client_request_token, version_stages)

    SecretsManagerBackend.put_secret_value = put_secret_value  # type: ignore[method-assign]
    try:
        yield
    finally:
        SecretsManagerBackend.put_secret_value = original  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    """ThreadedMotoServer on a free loopback port, with Lambda's docker mode off."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    request = urllib.request.Request(  # noqa: S310 (http on loopback)
        f"{url}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback, http)
        response.read()
    try:
        yield MotoServer(url)
    finally:
        server.stop()


@dataclass
class Invocation:
    """One routed Lambda invocation: the event and the exception it raised (None if it succeeded)."""

    function: str
    event: dict[str, Any]
    error: BaseException | None


@dataclass
class LambdaRouter:
    """Routed Lambda invocations: every call made, and functions whose invocations are paused."""

    calls: list[Invocation] = field(default_factory=list)
    paused: set[str] = field(default_factory=set)
    """Function ARNs whose invocations do nothing (tests then drive the steps themselves)."""

    def errors(self, token: str) -> list[BaseException]:
        return [c.error for c in self.calls if c.error and c.event.get("ClientRequestToken") == token]


@contextlib.contextmanager
def lambda_invokes_routed(
    run: Callable[[dict[str, Any], Mapping[str, str]], None],
) -> Iterator[LambdaRouter]:
    """Route moto's Lambda invoke (docker mode off) to `run(event, function environment)` in-process.

    Like Secrets Manager, a rotation stops at the first failing step: later steps for the same
    ClientRequestToken are not run. Failures are recorded in the router, not raised.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    router = LambdaRouter()
    failed_tokens: set[str] = set()
    lock = threading.Lock()

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        fn = self.get_function(function_name, qualifier)
        event = json.loads(body)
        token = str(event.get("ClientRequestToken", ""))
        with lock:
            skip = token in failed_tokens or fn.function_arn in router.paused
        if skip:
            return b"null"
        try:
            run(event, dict(fn.environment_vars))
        except Exception as exc:  # noqa: BLE001 - recorded for the test, as Lambda would log it
            with lock:
                failed_tokens.add(token)
                router.calls.append(Invocation(function_name, event, exc))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        with lock:
            router.calls.append(Invocation(function_name, event, None))
        return b"null"

    original = LambdaSimpleBackend.invoke
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield router
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")


@dataclass
class PostgresServer:
    host: str
    port: int
    superuser: str
    password: str = field(repr=False)
    datadir: Path
    _run: Callable[..., subprocess.CompletedProcess[str]] = field(repr=False)
    _pg_ctl: list[str] = field(repr=False)
    _extra: str = field(default="", repr=False)
    """More server options (TLS)."""

    def connect(self, user: str | None = None, password: str | None = None, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=user or self.superuser,
            password=password or self.password,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def can_login(self, user: str, password: str, dbname: str = "postgres") -> bool:
        import psycopg

        try:
            with self.connect(user, password, dbname) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def create_role(self, name: str, password: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
            )

    def stop(self) -> None:
        self._run([*self._pg_ctl, "-m", "fast", "stop"])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir.parent} -c listen_addresses={LOOPBACK} -c fsync=off{self._extra}"
        self._run([*self._pg_ctl, "-l", str(self.datadir.parent / "postgres.log"), "-o", options, "start"])


SHARED_SERVERS = "ROTATION_TEST_SHARED_POSTGRES"
"""Environment variable: the path of a file (mode 0600) describing a plaintext PostgreSQL server started
once for many test sessions (scripts/mutate.py runs one pytest session per mutant). `postgres_server()`
without TLS then lends it instead of starting a cluster of its own, and leaves it running."""


def _pg_runner(root: Path, as_root: bool) -> Callable[[list[str]], subprocess.CompletedProcess[str]]:
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            log = root / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")
        return result

    return run


def share_postgres(server: PostgresServer, path: Path) -> None:
    """Describe `server` in `path` for `postgres_server()` in other processes (see SHARED_SERVERS)."""
    path.touch(mode=0o600)
    path.write_text(json.dumps({"host": server.host, "port": server.port, "superuser": server.superuser,
                                "password": server.password, "datadir": str(server.datadir),
                                "pg_ctl": server._pg_ctl}))


def _shared_postgres() -> PostgresServer | None:
    path = os.environ.get(SHARED_SERVERS)
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    datadir = Path(data["datadir"])
    server = PostgresServer(host=data["host"], port=int(data["port"]), superuser=data["superuser"],
                            password=data["password"], datadir=datadir,
                            _run=_pg_runner(datadir.parent, os.geteuid() == 0), _pg_ctl=list(data["pg_ctl"]))
    try:  # a test that stopped it and was killed before starting it again
        server._run([*server._pg_ctl, "status"])
    except RuntimeError:
        server.start()
    # As fresh as a new cluster for what the tests make: their roles (and the tables they own) go.
    from psycopg import sql

    with server.connect() as conn:
        roles = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND NOT rolsuper")]
        for role in roles:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    return server


@contextlib.contextmanager
def postgres_server(tls: tuple[bytes, bytes] | None = None) -> Iterator[PostgresServer]:
    """A throwaway cluster (scram-sha-256 only) on a free loopback port; removed on exit.

    `tls`: (certificate chain PEM, private key PEM) to serve TLS with (`ssl=on`); plaintext stays allowed.
    """
    shared = _shared_postgres() if tls is None else None
    if shared is not None:
        yield shared
        return
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    as_root = os.geteuid() == 0
    if as_root:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user (apt-get install postgresql)")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    run = _pg_runner(root, as_root)

    password = new_password()
    datadir = root / "data"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if as_root:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    server: PostgresServer | None = None
    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
                "--no-instructions",
            ]
        )
        pwfile.unlink()
        extra = ""
        if tls is not None:
            for file_name, pem in zip(("server.crt", "server.key"), tls, strict=True):
                path = root / file_name
                path.write_bytes(pem)
                path.chmod(0o600)  # PostgreSQL refuses a key others can read
                if as_root:
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            extra = f" -c ssl=on -c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={root / 'server.key'}"
        server = PostgresServer(
            host=LOOPBACK,
            port=free_port(),
            superuser="postgres",
            password=password,
            datadir=datadir,
            _run=run,
            _pg_ctl=[str(bindir / "pg_ctl"), "-D", str(datadir), "-w"],
            _extra=extra,
        )
        server.start()
        yield server
    finally:
        if server is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- Redis


@dataclass
class RedisServer:
    host: str
    port: int
    admin_user: str
    passwords: dict[str, str] = field(repr=False)
    ca: str | None = None
    """With TLS only (`redis_server(tls=...)`): the CA bundle the clients verify the server with."""

    def client(self, user: str, password: str) -> Any:
        """A redis-py client that fails at once on a refused login (no retries)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=self.host,
            port=self.port,
            username=user,
            password=password,
            socket_timeout=5,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
            ssl=self.ca is not None,
            ssl_ca_certs=self.ca,
        )

    def can_login(self, user: str, password: str) -> bool:
        import redis

        conn = self.client(user, password)
        try:
            return bool(conn.ping())
        except redis.AuthenticationError:
            return False
        finally:
            conn.close()

    def admin(self) -> Any:
        return self.client(self.admin_user, self.passwords[self.admin_user])


@contextlib.contextmanager
def redis_server(users: Mapping[str, str], tls: tuple[bytes, bytes, Path] | None = None) -> Iterator[RedisServer]:
    """redis-server from a generated config: `users` maps ACL user name -> rules (e.g. "~app:* +@all").

    An `admin` user (+@all) is always added. Passwords are generated and written to the config
    only as SHA-256 hashes; the default user is disabled. `tls`: (certificate chain PEM, private key
    PEM, CA bundle path): the port then serves TLS only (no client certificates asked).
    """
    binary = shutil.which("redis-server", path=f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin")
    if binary is None:
        pytest.skip("redis-server not found (apt-get install -y redis-server)")
    root = Path(tempfile.mkdtemp(prefix="redistest-"))
    all_users = {"admin": "~* &* +@all", **users}
    passwords = {name: new_password() for name in all_users}
    port = free_port()
    lines = [
        f"bind {LOOPBACK}",
        f"port {port}",
        f"dir {root}",
        'save ""',
        "appendonly no",
        "daemonize no",
        "protected-mode yes",
        f"logfile {root / 'redis.log'}",
        "user default off",
    ]
    for name, rules in all_users.items():
        digest = hashlib.sha256(passwords[name].encode()).hexdigest()
        lines.append(f"user {name} on #{digest} {rules}")
    if tls is not None:
        for file_name, pem in zip(("server.crt", "server.key"), tls[:2], strict=True):
            (root / file_name).write_bytes(pem)
            (root / file_name).chmod(0o600)
        lines[1:2] = ["port 0", f"tls-port {port}", f"tls-cert-file {root / 'server.crt'}",
                      f"tls-key-file {root / 'server.key'}", "tls-auth-clients no"]
    conf = root / "redis.conf"
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(LOOPBACK, port, "admin", passwords, ca=str(tls[2]) if tls else None)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            return server.can_login("admin", passwords["admin"])
        except Exception:  # noqa: BLE001 - connection refused while the server starts
            return False

    try:
        _wait(ready, "redis-server", root / "redis.log")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
