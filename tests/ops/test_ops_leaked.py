"""`python -m ops rotate --leaked`: until the leaked value works nowhere, against moto's server.

Secrets Manager's RotateSecret is asynchronous (it returns once the rotation has started; botocore's
RotateSecret documentation) and is refused while AWSPENDING sits on a version that is not AWSCURRENT
("assumes that a previous rotation request is still in progress"). moto runs the four steps inside the
RotateSecret call and does not refuse a stale AWSPENDING (it moves it), so the tests here emulate both: a
function whose finishSecret completes later, on a thread, and a function that fails in between; the command's
own wait and refusal are what stops a second rotation from starting early.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from ops_harness import Moto, Result, Rotation, Terminal, enable_rotation
from test_ops_commands import _ecs_consumer, one_line

from components import names
from components.first_value import made_once, targets
from ops import leaked as leaked_module
from ops.stack import load_stack

REPO = Path(__file__).resolve().parents[2]
Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaked_module, "POLL_SECONDS", 0.05)


@pytest.fixture
def relaybox(moto: Moto, tmp_path: Path) -> Iterator[Path]:
    """relaybox's staging stack (PostgreSQL alternating and single users, RS256 keys, values made once) moved
    to moto's default region; its secrets are removed afterwards (the harness clears filot/ and shop/ only)."""
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text((REPO / "examples" / "relaybox" / "Pulumi.staging.yaml").read_text()
                      .replace("aws:region: eu-west-1", "aws:region: ap-southeast-2"))
    yield config
    sm = moto.client("secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for entry in page["SecretList"]:
            if entry["Name"].startswith("relaybox/"):
                sm.delete_secret(SecretId=entry["ARN"], ForceDeleteWithoutRecovery=True)


def _secret(moto: Moto, rotation: Rotation, full: str) -> str:
    """A secret with rotation on (enabling rotates it once, as AWS does); its AWSCURRENT, the leaked version."""
    moto.client("secretsmanager").create_secret(Name=full, SecretString=moto.value())
    enable_rotation(moto, rotation, full, 30)
    rotation.invocations.clear()
    return moto.stages(full)["AWSCURRENT"]


def _rotations(rotation: Rotation, full: str) -> int:
    return sum(1 for step, secret in rotation.invocations if secret == full and step == "createSecret")


def _labels(moto: Moto, full: str, version: str) -> list[str]:
    described = moto.client("secretsmanager").describe_secret(SecretId=full)
    return list(described["VersionIdsToStages"].get(version) or [])


class Steps:
    """Wraps the harness's token function: finishSecret late (on a thread, as an asynchronous rotation ends), or
    setSecret failing for the first rotation (Lambda answers FunctionError and Secrets Manager runs no later step
    of that rotation, leaving AWSPENDING on its version)."""

    def __init__(self, delay: float = 0.0, fail_first: bool = False, keep_pending: bool = False,
                 abandon: bool = False) -> None:
        self.delay, self.fail_first, self.keep_pending, self.abandon = delay, fail_first, keep_pending, abandon
        self.events: list[tuple[float, str, str]] = []
        self.threads: list[threading.Thread] = []
        self.failed: set[str] = set()
        self.tokens: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch, url: str = "") -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        self.url = url

        inner = LambdaSimpleBackend.invoke  # the rotation_function fixture's token function

        def invoke(backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any,
                   response_headers: Any) -> bytes:
            event = json.loads(body)
            step, token = event["Step"], event["ClientRequestToken"]
            if step == "createSecret":
                self.tokens.append(token)
            if token in self.failed:
                return b"null"
            if step == "setSecret" and self.fail_first and len(self.tokens) == 1:
                self.failed.add(token)
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": "ExternalServiceError", "errorMessage": "server down"}).encode()
            if step == "finishSecret" and self.keep_pending:  # AWSCURRENT moved, AWSPENDING left on it
                sm = self._sm()
                current = next(v for v, labels in sm.describe_secret(SecretId=event["SecretId"])[
                    "VersionIdsToStages"].items() if "AWSCURRENT" in labels)
                sm.update_secret_version_stage(SecretId=event["SecretId"], VersionStage="AWSCURRENT",
                                               MoveToVersionId=token, RemoveFromVersionId=current)
                self.events.append((time.monotonic(), step, token))
                return b"null"
            if step == "finishSecret" and self.abandon:  # AWSPENDING removed, AWSCURRENT never moved
                def drop() -> None:
                    time.sleep(0.3)
                    self._sm().update_secret_version_stage(SecretId=event["SecretId"], VersionStage="AWSPENDING",
                                                           RemoveFromVersionId=token)

                thread = threading.Thread(target=drop)
                self.threads.append(thread)
                thread.start()
                return b"null"
            if step == "finishSecret" and self.delay:
                def later() -> None:
                    time.sleep(self.delay)
                    inner(backend, function_name, qualifier, body, headers, {})
                    self.events.append((time.monotonic(), "finished", token))

                thread = threading.Thread(target=later)
                self.threads.append(thread)
                thread.start()
                return b"null"
            self.events.append((time.monotonic(), step, token))
            return bytes(inner(backend, function_name, qualifier, body, headers, response_headers))

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    def _sm(self) -> Any:
        return boto3.client("secretsmanager", endpoint_url=self.url, region_name="ap-southeast-2",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)


def stopped(result: Result) -> str:
    """A stop part-way: what was done is on stdout, the reason one line on stderr, exit 2."""
    assert result.code == 2, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.err, result.err
    return lines[0]


# ---------------------------------------------------------------- how many rotations


@pytest.mark.parametrize(("stack_file", "name", "count"), [
    ("filot", "jwt-secret", 2),                # jwt-hs256: the previous key still verifies
    ("filot", "redis", 2),                     # redis-acl: the previous password stays on the ACL user
    ("relaybox", "database", 2),               # postgres-alternating-users: the leaked user keeps working
    ("relaybox", "dashboard-jwt-key", 2),      # jwt-rs256: the previous key stays in the JWKS
    ("filot", "session-secret", 1),            # token
    ("relaybox", "reports-database", 1),       # postgres-single-user: the one password changes
])
def test_leaked_rotates_until_the_leaked_version_is_retired(
        moto: Moto, ops: Run, rotation_function: Rotation, relaybox: Path,
        stack_file: str, name: str, count: int) -> None:
    config = str(relaybox) if stack_file == "relaybox" else str(REPO / "Pulumi.staging.yaml")
    full = f"{stack_file}/staging/{name}"
    leaked = _secret(moto, rotation_function, full)

    result = ops("rotate", "--leaked", name, "--stack", "staging", "--config-file", config)

    assert result.code == 0, result.err
    assert _rotations(rotation_function, full) == count
    stages = moto.stages(full)
    made = re.findall(r"rotation \d of \d: version (\S+) is AWSCURRENT", result.out)
    assert len(made) == count and stages["AWSCURRENT"] == made[-1] and "AWSPENDING" not in stages
    if count == 2:
        assert _labels(moto, full, leaked) == []  # the leaked version is no longer AWSCURRENT nor AWSPREVIOUS
        assert stages["AWSPREVIOUS"] == made[0]
        assert f"the leaked version {leaked} holds no staging label" in result.out
    else:
        assert _labels(moto, full, leaked) == ["AWSPREVIOUS"]
        assert f"the leaked version {leaked} is now AWSPREVIOUS" in result.out
    assert "warning: anything still holding the leaked value now fails" in result.out


def test_every_strategy_has_a_count() -> None:
    """A strategy added to the catalog model must be placed: previous credential valid (2) or not (1)."""
    from typing import get_args

    from components.catalog import Rotation as CatalogRotation
    from components.catalog.model import ROTATION_STRATEGIES

    twice = {s for s in get_args(ROTATION_STRATEGIES)
             if leaked_module.rotations_needed(_entry(CatalogRotation, s)) == 2}
    assert twice == {"postgres-alternating-users", "jwt-hs256", "jwt-rs256", "redis-acl"}


def _entry(rotation_cls: Any, strategy: str) -> Any:
    class Entry:
        rotation = rotation_cls.model_construct(strategy=strategy)

    return Entry()


# ---------------------------------------------------------------- the wait between the two


def test_the_second_rotation_starts_only_once_the_first_is_complete(
        moto: Moto, ops: Run, rotation_function: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    full = "filot/staging/jwt-secret"
    leaked = _secret(moto, rotation_function, full)
    steps = Steps(delay=0.4)
    steps.install(monkeypatch)

    result = ops("rotate", "--leaked", "jwt-secret", "--stack", "staging")
    steps.join()

    assert result.code == 0, result.err
    first, second = steps.tokens
    finished_first = next(t for t, what, token in steps.events if what == "finished" and token == first)
    created_second = next(t for t, what, token in steps.events if what == "createSecret" and token == second)
    assert finished_first < created_second
    waits = [float(w) for w in re.findall(r"is AWSCURRENT after (\d+\.\d)s", result.out)]
    assert len(waits) == 2 and all(w >= 0.4 for w in waits)
    assert _labels(moto, full, leaked) == [] and moto.stages(full)["AWSCURRENT"] == second


def test_a_rotation_that_does_not_complete_in_time_stops_before_the_second(
        moto: Moto, ops: Run, rotation_function: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    full = "filot/staging/jwt-secret"
    leaked = _secret(moto, rotation_function, full)
    steps = Steps(delay=2.0)
    steps.install(monkeypatch)
    try:
        started = time.monotonic()
        line = stopped(ops("rotate", "--leaked", "jwt-secret", "--stack", "staging", "--wait", "0.5"))
        took = time.monotonic() - started
        stages = moto.stages(full)
    finally:
        steps.join()
    assert "rotation 1 of 2" in line and "did not complete within 0.5s" in line
    assert f"the leaked version {leaked} is still AWSCURRENT" in line
    assert len(steps.tokens) == 1  # no second RotateSecret
    assert stages["AWSCURRENT"] == leaked and stages["AWSPENDING"] == steps.tokens[0]
    assert took < 2.0


def test_a_rotation_that_fails_in_between_leaves_pending_and_names_the_clear_command(
        moto: Moto, ops: Run, rotation_function: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto would accept a second RotateSecret here (it moves the stale AWSPENDING; AWS refuses): the command
    must not send one. The named commands then recover: clear-pending, and --leaked again."""
    full = "filot/staging/jwt-secret"
    leaked = _secret(moto, rotation_function, full)
    steps = Steps(fail_first=True)
    steps.install(monkeypatch)

    line = stopped(ops("rotate", "--leaked", "jwt-secret", "--stack", "staging", "--wait", "0.3"))

    assert len(steps.tokens) == 1
    stages = moto.stages(full)
    assert stages["AWSCURRENT"] == leaked and stages["AWSPENDING"] == steps.tokens[0]
    assert "python -m ops clear-pending jwt-secret --stack staging" in line
    assert "python -m ops rotate --leaked jwt-secret --stack staging" in line

    assert ops("clear-pending", "jwt-secret", "--stack", "staging").code == 0
    again = ops("rotate", "--leaked", "jwt-secret", "--stack", "staging")
    assert again.code == 0, again.err
    assert _labels(moto, full, leaked) == []


def test_a_last_rotation_that_leaves_pending_on_the_new_current_version_is_complete(
        moto: Moto, ops: Run, rotation_function: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    """"When rotation is successful, the AWSPENDING staging label might be attached to the same version as the
    AWSCURRENT version" (RotateSecret's documentation): the last rotation is done, not timed out."""
    full = "filot/staging/session-secret"
    leaked = _secret(moto, rotation_function, full)
    steps = Steps(keep_pending=True)
    steps.install(monkeypatch, moto.url)
    result = ops("rotate", "--leaked", "session-secret", "--stack", "staging", "--wait", "5")
    assert result.code == 0, result.err
    (new,) = steps.tokens
    assert moto.stages(full) == {"AWSCURRENT": new, "AWSPENDING": new, "AWSPREVIOUS": leaked}


def test_a_rotation_that_ends_without_its_version_becoming_current_stops_at_once(
        moto: Moto, ops: Run, rotation_function: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWSPENDING seen on the new version, then gone while AWSCURRENT stayed on the leaked one (an abandoned
    rotation): no use waiting out --wait, and no second rotation."""
    full = "filot/staging/redis"
    leaked = _secret(moto, rotation_function, full)
    steps = Steps(abandon=True)
    steps.install(monkeypatch, moto.url)
    try:
        started = time.monotonic()
        line = stopped(ops("rotate", "--leaked", "redis", "--stack", "staging", "--wait", "20"))
        took = time.monotonic() - started
    finally:
        steps.join()
    assert "rotation 1 of 2" in line and "ended without becoming AWSCURRENT" in line and took < 10
    assert len(steps.tokens) == 1 and moto.stages(full)["AWSCURRENT"] == leaked


def test_a_rotation_in_progress_at_the_start_is_refused(moto: Moto, ops: Run, rotation_function: Rotation) -> None:
    full = "filot/staging/jwt-secret"
    _secret(moto, rotation_function, full)
    sm = moto.client("secretsmanager")
    stale = str(uuid.uuid4())
    sm.put_secret_value(SecretId=full, ClientRequestToken=stale, SecretString=moto.value(),
                        VersionStages=["AWSPENDING"])
    before = moto.stages(full)
    line = one_line(ops("rotate", "--leaked", "jwt-secret", "--stack", "staging"))
    assert f"AWSPENDING on version {stale}" in line and "clear-pending" in line
    assert moto.stages(full) == before and _rotations(rotation_function, full) == 0


# ---------------------------------------------------------------- restarts, production


def test_leaked_restarts_the_at_start_consumers_after_the_last_rotation(
        moto: Moto, ops: Run, rotation_function: Rotation, tmp_path: Path) -> None:
    full = "filot/staging/session-secret"
    _secret(moto, rotation_function, full)
    config, primary = _ecs_consumer(moto, tmp_path)
    before = primary()
    result = ops("rotate", "--leaked", "session-secret", "--stack", "staging", "--config-file", str(config))
    assert result.code == 0, result.err
    assert re.search(r"ECS service shop-[0-9a-f]{8}/api: restarted", result.out), result.out
    assert result.out.index("warning:") < result.out.index("restarted")
    assert primary() != before


def test_leaked_with_no_restart_leaves_the_consumers_alone(
        moto: Moto, ops: Run, rotation_function: Rotation, tmp_path: Path) -> None:
    full = "filot/staging/session-secret"
    leaked = _secret(moto, rotation_function, full)
    config, primary = _ecs_consumer(moto, tmp_path)
    before = primary()
    result = ops("rotate", "--leaked", "session-secret", "--stack", "staging", "--config-file", str(config),
                 "--no-restart")
    assert result.code == 0, result.err
    assert primary() == before and "restarted" not in result.out and "--no-restart" in result.out
    assert moto.stages(full)["AWSCURRENT"] != leaked


def test_production_needs_the_typed_name_or_yes(moto: Moto, ops: Run, rotation_function: Rotation) -> None:
    full = "filot/production/jwt-secret"
    leaked = _secret(moto, rotation_function, full)
    refused = ops("rotate", "--leaked", "jwt-secret", "--stack", "production")
    assert refused.code == 2 and refused.out == "" and "needs --yes" in refused.err.splitlines()[-1]
    wrong = ops("rotate", "--leaked", "jwt-secret", "--stack", "production", stdin=Terminal("filot/staging/x\n"))
    assert wrong.code == 2 and "did not match" in wrong.err
    assert moto.stages(full)["AWSCURRENT"] == leaked and _rotations(rotation_function, full) == 0

    typed = ops("rotate", "--leaked", "jwt-secret", "--stack", "production", "--no-restart",
                stdin=Terminal(f"{full}\n"))
    assert typed.code == 0, typed.err
    assert "twice" in typed.err and _labels(moto, full, leaked) == []


def test_without_leaked_the_new_options_are_refused(moto: Moto, ops: Run, rotation_function: Rotation) -> None:
    full = "filot/staging/session-secret"
    leaked = _secret(moto, rotation_function, full)
    line = one_line(ops("rotate", "session-secret", "--stack", "staging", "--yes"))
    assert "--leaked" in line and moto.stages(full)["AWSCURRENT"] == leaked


# ---------------------------------------------------------------- hostile


@pytest.mark.parametrize(("given", "expected"), [
    ("no-such-secret", "unknown secret 'no-such-secret'"),
    ("shop/staging/jwt-secret", "unknown secret 'shop/staging/jwt-secret'"),          # another app's
    ("filot/production/jwt-secret", "unknown secret 'filot/production/jwt-secret'"),  # another environment's
    ("database-url", "has no rotation configured in AWS; nothing changed"),           # on-compromise, supplied
    ("x" * 100_000, "is not a secret name"),
    ("jwt-secret\x00\n", "is not a secret name"),
])
def test_hostile_names_change_nothing(moto: Moto, ops: Run, rotation_function: Rotation,
                                      given: str, expected: str) -> None:
    moto.seed("staging")
    moto.seed("production")
    enable_rotation(moto, rotation_function, "filot/staging/jwt-secret", 30)
    enable_rotation(moto, rotation_function, "filot/production/jwt-secret", 30)
    rotation_function.invocations.clear()
    every = [f"filot/{env}/{n}" for env in ("staging", "production") for n in load_stack(env).secrets]
    before = {full: moto.stages(full) for full in every}
    line = one_line(ops("rotate", "--leaked", given, "--stack", "staging"))
    assert expected in line and len(line) < 2_000
    assert {full: moto.stages(full) for full in every} == before
    assert rotation_function.invocations == []


@pytest.mark.parametrize("wait", ["0", "-1", "nan", "inf", "1e9"])
def test_an_unbounded_or_empty_wait_is_refused(moto: Moto, ops: Run, rotation_function: Rotation, wait: str) -> None:
    full = "filot/staging/jwt-secret"
    leaked = _secret(moto, rotation_function, full)
    line = one_line(ops("rotate", "--leaked", "jwt-secret", "--stack", "staging", "--wait", wait))
    assert "--wait must be more than 0 and at most 3600 seconds" in line
    assert moto.stages(full)["AWSCURRENT"] == leaked and _rotations(rotation_function, full) == 0


# ---------------------------------------------------------------- a value made once, replaced inside AWS


@pytest.fixture
def first_value_function(moto: Moto, relaybox: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """relaybox's first-value function deployed in moto with the program's FIRST_VALUE_TARGETS; its invokes run
    rotation/first_value.py here against moto; an unhandled error answers FunctionError, as Lambda does."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from rotation.first_value import lambda_handler

    stack = load_stack("staging", REPO, relaybox)
    once = {n: e for n, e in stack.secrets.items() if made_once(e)}
    function = names.rotation_function("relaybox", "staging", "first-value")
    iam = moto.client("iam")
    role = iam.create_role(RoleName=f"fv-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    environment = {"FIRST_VALUE_TARGETS": targets("relaybox", "staging", once)}
    moto.client("lambda").create_function(
        FunctionName=function, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="index.handler",
        Code={"ZipFile": buffer.getvalue()}, Environment={"Variables": environment})
    calls: list[dict[str, Any]] = []

    def invoke(backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any,
               response_headers: Any) -> bytes:
        event = json.loads(body)
        calls.append(event)
        monkeypatch.setenv("FIRST_VALUE_TARGETS", backend.get_function(function_name).environment_vars[
            "FIRST_VALUE_TARGETS"])
        monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
        monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", moto.url)
        try:
            return json.dumps(lambda_handler(event, None)).encode()
        except Exception as exc:  # noqa: BLE001 - Lambda answers an unhandled error with FunctionError
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    yield {"name": function, "calls": calls, "config": relaybox}
    moto.client("lambda").delete_function(FunctionName=function)


def _made_once_secret(moto: Moto, full: str) -> str:
    sm = moto.client("secretsmanager")
    sm.create_secret(Name=full)
    version = sm.put_secret_value(SecretId=full, SecretString=moto.value(), VersionStages=["AWSCURRENT"])
    return str(version["VersionId"])


def test_leaked_replaces_a_value_made_once_inside_aws(moto: Moto, ops: Run,
                                                      first_value_function: dict[str, Any]) -> None:
    full = "relaybox/staging/api-key-signing-key"
    leaked = _made_once_secret(moto, full)
    value = moto.current_value(full)
    result = ops("rotate", "--leaked", "api-key-signing-key", "--stack", "staging", "--config-file",
                 str(first_value_function["config"]))

    assert result.code == 0, result.err
    assert first_value_function["calls"] == [{"FirstValue": full, "Replace": True}]
    stages = moto.stages(full)
    assert stages["AWSPREVIOUS"] == leaked and stages["AWSCURRENT"] != leaked
    new = moto.current_value(full)
    moto.planted.add(new)  # made by the function: must not appear in the output either
    assert new != value and len(new) == 64
    assert f"replaced by {first_value_function['name']}: version {stages['AWSCURRENT']} is AWSCURRENT" in result.out
    assert "warning: anything still holding the leaked value now fails" in result.out


def test_a_failing_first_value_function_is_one_line_and_changes_nothing(
        moto: Moto, ops: Run, first_value_function: dict[str, Any]) -> None:
    """A function deployed from an older catalog, which does not name the secret: the handler refuses it, Lambda
    answers FunctionError (RequestResponse), and the command says so in one line."""
    full = "relaybox/staging/api-key-signing-key"
    leaked = _made_once_secret(moto, full)
    stack = load_stack("staging", REPO, first_value_function["config"])
    older = {n: e for n, e in stack.secrets.items() if made_once(e) and n != "api-key-signing-key"}
    moto.client("lambda").update_function_configuration(
        FunctionName=first_value_function["name"],
        Environment={"Variables": {"FIRST_VALUE_TARGETS": targets("relaybox", "staging", older)}})
    line = one_line(ops("rotate", "--leaked", "api-key-signing-key", "--stack", "staging", "--config-file",
                        str(first_value_function["config"])))
    assert "failed (Unhandled: SecretNotAllowedError" in line and "still the leaked version" in line
    assert moto.stages(full) == {"AWSCURRENT": leaked}


def test_a_made_once_value_with_no_first_value_function_deployed_is_one_line(
        moto: Moto, ops: Run, relaybox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invoke of a function that does not exist fails with ResourceNotFoundException (botocore lambda model,
    Invoke's errors); moto's docker-less backend answers any name, so the lookup is put back here."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(backend: Any, function_name: str, qualifier: Any, *rest: Any) -> bytes:
        backend.get_function(function_name, qualifier)  # raises moto's ResourceNotFoundException
        raise AssertionError("no function should exist here")

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    full = "relaybox/staging/api-key-signing-key"
    leaked = _made_once_secret(moto, full)
    line = one_line(ops("rotate", "--leaked", "api-key-signing-key", "--stack", "staging", "--config-file",
                        str(relaybox)))
    assert "first-value function relaybox-staging-rotate-first-value" in line and "ResourceNotFound" in line
    assert moto.stages(full)["AWSCURRENT"] == leaked


def test_an_adopted_secret_of_generated_values_names_the_put_instead(moto: Moto, ops: Run, relaybox: Path) -> None:
    """An adopted secret keeps the value it had: no first-value function made it, so none replaces it, and the
    refusal must not send the operator back to `--leaked`."""
    full = "relaybox/staging/api-key-signing-key"
    leaked = _made_once_secret(moto, full)
    arn = moto.client("secretsmanager").describe_secret(SecretId=full)["ARN"]
    relaybox.write_text(relaybox.read_text() + f"  secrets-platform:adopt:\n    api-key-signing-key:\n"
                        f"      arn: {arn}\n      name: {full}\n")
    line = one_line(ops("rotate", "--leaked", "api-key-signing-key", "--stack", "staging", "--config-file",
                        str(relaybox)))
    assert f"aws secretsmanager put-secret-value --secret-id {full}" in line and "--leaked" not in line
    assert moto.stages(full) == {"AWSCURRENT": leaked}
