"""The log fixture every rotation test goes through (conftest.py `rotation_logs`) is not vacuous: it
sees the rotation's records at DEBUG, finds the old and new values in the emulator, and counts a value
that reaches a log line."""

from __future__ import annotations

import json
import logging
import secrets

from log_capture import RotationLogs, leaked, secret_values, secret_versions, values_of
from rotation_harness import Harness
from servers import MotoServer

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}


def test_the_rotation_logger_is_captured_at_debug(harness: Harness, name: str, rotation_logs: RotationLogs) -> None:
    assert logging.getLogger("rotation").getEffectiveLevel() == logging.DEBUG
    logging.getLogger("rotation.strategies.example").debug("a debug line")
    harness.secret(name, secrets.token_hex(32))
    token = harness.rotate(name, harness.function("token", {name: {"key": None, "generate": HEX32}}))
    assert not harness.router.errors(token)
    loggers = {record.name for record in rotation_logs.records}
    assert {"rotation.protocol", "rotation.strategies.example"} <= loggers, "children of `rotation`, DEBUG too"
    steps = " ".join(record.getMessage() for record in rotation_logs.records)
    for step in ("createSecret", "finishSecret"):
        assert step in steps


def test_every_version_of_a_changed_secret_is_checked(harness: Harness, moto: MotoServer, name: str) -> None:
    sm = moto.client("secretsmanager")
    before = secret_versions(sm)
    old = secrets.token_hex(32)
    arn = harness.secret(name, old)
    token = harness.rotate(name, harness.function("token", {name: {"key": None, "generate": HEX32}}))
    assert not harness.router.errors(token)
    after = secret_versions(sm)
    assert after[arn] != before.get(arn)
    assert len(after[arn]) == 2, "the first value and the rotated one"
    values = values_of(sm, arn)
    assert old in values and harness.value(arn) in values and harness.value(arn) != old
    assert harness.value(arn, "AWSPREVIOUS") == old


def test_json_secrets_are_checked_leaf_by_leaf() -> None:
    password = secrets.token_urlsafe(24)
    document = json.dumps({"username": "app_user", "host": "127.0.0.1", "port": 5432, "password": password,
                           "kid": "key-2026", "engine": "postgres"})
    values = secret_values(document)
    assert document in values and password in values
    assert "app_user" not in values and "127.0.0.1" not in values and "key-2026" not in values
    assert secret_values("short") == [], "a value below 8 characters would match by chance"


def test_a_value_in_a_log_line_or_a_traceback_is_counted() -> None:
    value = secrets.token_hex(16)
    capture = RotationLogs()
    logger = logging.getLogger("rotation.test-capture")
    logger.addHandler(capture)
    try:
        logger.info("setSecret: password of %s set", "postgres 127.0.0.1:5432/app as app_user")
        assert leaked(capture.text(), [value]) == 0
        logger.info("setSecret: data %s", {"password": value})
        assert leaked(capture.text(), [value]) == 1
        capture.records.clear()
        try:
            raise RuntimeError(f"cannot log in with {value}")
        except RuntimeError:
            logger.exception("setSecret failed")
        assert leaked(capture.text(), [value, "not-there-at-all"]) == 1
    finally:
        logger.removeHandler(capture)


def test_with_the_root_logger_at_debug_no_value_reaches_the_logs(harness: Harness, name: str, root_at_debug: None,
                                                                  rotation_logs: RotationLogs) -> None:
    """Lambda's advanced logging controls set the root logger to DEBUG (AWS_LAMBDA_LOG_LEVEL=DEBUG), where
    botocore logs every request and response body: each GetSecretValue and PutSecretValue of a rotation.
    The handler holds the SDK's loggers at INFO; the fixture (root_at_debug) captures the root logger and
    counts every value of the secret in what was logged."""
    from rotation.handler import SDK_LOGGERS

    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    harness.secret(name, secrets.token_hex(32))
    token = harness.rotate(name, harness.function("token", {name: {"key": None, "generate": HEX32}}))
    assert not harness.router.errors(token)
    assert any(record.name.startswith("rotation") for record in rotation_logs.records), "the capture sees the root"
    sdk_debug = [r for r in rotation_logs.records if r.name.startswith(SDK_LOGGERS) and r.levelno < logging.INFO]
    assert sdk_debug == [], f"{len(sdk_debug)} SDK record(s) below INFO"


def test_an_sdk_logger_set_to_debug_is_raised_to_info_on_the_next_invocation() -> None:
    from rotation.handler import cap_sdk_logging

    root, endpoint, pool = logging.getLogger(), logging.getLogger("botocore.endpoint"), logging.getLogger("urllib3")
    saved = (root.level, endpoint.level, pool.level)
    try:
        root.setLevel(logging.DEBUG)
        endpoint.setLevel(logging.DEBUG)
        pool.setLevel(logging.NOTSET)
        cap_sdk_logging()
        for name in ("botocore", "botocore.endpoint", "botocore.parsers", "boto3", "urllib3.connectionpool",
                     "s3transfer"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
        assert root.getEffectiveLevel() == logging.DEBUG, "the function's own root level is left alone"
    finally:
        root.setLevel(saved[0])
        endpoint.setLevel(saved[1])
        pool.setLevel(saved[2])
