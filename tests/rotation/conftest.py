"""Fixtures for the rotation Lambda: moto with Lambda invokes routed to the handler, real servers."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import server as _moto_server  # noqa: F401 - imported once, in the process mutmut forks each mutant's session from

# The repository root (package `rotation`) and tests/ (module `servers`) must be importable
# however pytest is started; pyproject has no `pythonpath` setting for them.
_ROOT = Path(__file__).resolve().parents[2]
for _path in (str(_ROOT), str(_ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from log_capture import RotationLogs, leaked, secret_versions, values_of  # noqa: E402
from rotation_harness import Harness  # noqa: E402
from servers import (  # noqa: E402
    EmptySecretRotation,
    MotoServer,
    PostgresServer,
    RedisServer,
    lambda_invokes_routed,
    moto_keeps_version_values,
    moto_rotates_empty_secrets,
    moto_server,
    postgres_server,
    redis_server,
)

from rotation import handler  # noqa: E402


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def empty_secret_rotation(moto: MotoServer) -> Iterator[EmptySecretRotation]:
    """moto rotating a secret created without a value as AWS does, and never replacing a version's value
    (tests/servers.py)."""
    with moto_rotates_empty_secrets() as behaviour, moto_keeps_version_values():
        yield behaviour


@pytest.fixture(scope="session")
def harness(moto: MotoServer, empty_secret_rotation: EmptySecretRotation) -> Iterator[Harness]:
    client = moto.client("secretsmanager")
    with lambda_invokes_routed(lambda event, environ: handler.handle(event, environ, client)) as router:
        yield Harness(moto, router)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server({}) as server:
        yield server


EMULATOR_LOGGERS = ("moto", "werkzeug")
"""The emulator's own loggers: it runs in the test process, but no Lambda function carries it."""


@pytest.fixture
def root_at_debug() -> None:
    """Requested by a test whose logs are captured at the root logger set to DEBUG, as Lambda's advanced
    logging controls set it (AWS_LAMBDA_LOG_LEVEL=DEBUG): every logger of the function's process, the
    AWS SDK's included, reaches the capture (`rotation_logs` reads this fixture's name)."""


@pytest.fixture(autouse=True)
def rotation_logs(request: pytest.FixtureRequest) -> Iterator[RotationLogs]:
    """Every rotation test runs through this: the `rotation` logger is captured at DEBUG, and at the
    end no value of a secret the test touched (old, new or master: every version of every secret that
    changed) nor a test server's admin password may appear in what was logged. With `root_at_debug`,
    the root logger is captured at DEBUG instead (the SDK's loggers included)."""
    capture = RotationLogs()
    at_root = "root_at_debug" in request.fixturenames
    if at_root:
        capture.addFilter(lambda record: not record.name.startswith(EMULATOR_LOGGERS))
    logger = logging.getLogger() if at_root else logging.getLogger("rotation")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    sm = request.getfixturevalue("moto").client("secretsmanager") if "moto" in request.fixturenames else None
    before = secret_versions(sm) if sm is not None else {}
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    if sm is not None:
        after = secret_versions(sm)
        for arn, versions in after.items():
            if versions != before.get(arn):
                capture.values += values_of(sm, arn)
    if "pg" in request.fixturenames:
        capture.values.append(request.getfixturevalue("pg").password)
    if "redis_srv" in request.fixturenames:
        capture.values += list(request.getfixturevalue("redis_srv").passwords.values())
    count = leaked(capture.text(), capture.values)
    assert count == 0, f"{count} secret value(s) appear in the rotation logs of this test"


@pytest.fixture
def name() -> str:
    """A unique secret name in the project's naming scheme."""
    return f"filot/test-{uuid.uuid4().hex[:8]}/secret"


class SilentServer:
    """A loopback port that accepts connections and never answers (a hung server)."""

    def __init__(self) -> None:
        import socket
        import threading

        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self._held.append(self._listener.accept()[0])
            except OSError:
                return

    @property
    def connections(self) -> int:
        """How many connections it accepted so far."""
        return len(self._held)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A hung server: a client must give up on its own timeout (and say how many times it tried)."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def silent_port(silent_server: SilentServer) -> int:
    return silent_server.port
