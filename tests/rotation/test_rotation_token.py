"""Protocol + token strategy, driven by moto's RotateSecret and step by step."""

from __future__ import annotations

import json
import string

import pytest
from rotation_harness import STEPS, Harness, assert_no_secret

from rotation import generate
from rotation.errors import (
    ConfigurationError,
    RotationError,
    RotationNotEnabledError,
    SecretNotAllowedError,
    VersionStageError,
)

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}


# ------------------------------------------------------------------ generation specs


def test_bytes_hex_is_openssl_rand_hex_32() -> None:
    value = generate.generate(HEX32)
    assert len(value) == 64 and set(value) <= set(string.hexdigits.lower())


def test_bytes_base64_48_is_64_chars() -> None:
    value = generate.generate({"kind": "bytes", "bytes": 48, "encoding": "base64"})
    assert len(value) == 64


def test_password_alphabet_and_exclude() -> None:
    spec = {"kind": "password", "length": 64, "alphabet": "alphanumeric", "exclude": "0Ol1I"}
    value = generate.generate(spec)
    assert len(value) == 64
    assert set(value) <= set(string.ascii_letters + string.digits) - set("0Ol1I")


def test_password_custom_chars() -> None:
    spec = {"kind": "password", "length": 40, "alphabet": "custom", "chars": "abcdefghij!@#$%"}
    assert set(generate.generate(spec)) <= set("abcdefghij!@#$%")


def test_uuid() -> None:
    value = generate.generate({"kind": "uuid"})
    assert len(value) == 36 and value.count("-") == 4


def test_values_differ() -> None:
    distinct = len({generate.generate(HEX32) for _ in range(50)}) == 50
    assert distinct


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "bytes", "bytes": 4, "encoding": "hex"}, "bytes=4 must be an integer in [16, 1024]"),
        ({"kind": "bytes", "bytes": 32, "encoding": "b32"}, "encoding 'b32' is not 'hex', 'base64' or 'base64url'"),
        ({"kind": "password", "length": 8}, "length=8 must be an integer in [16, 4096]"),
        ({"kind": "password", "length": 32, "alphabet": "custom"}, "needs a non-empty 'chars'"),
        ({"kind": "password", "length": 32, "alphabet": "custom", "chars": "abc"}, "3 usable characters"),
        ({"kind": "password", "length": 32, "chars": "abc"}, "only allowed with alphabet 'custom'"),
        ({"kind": "uuid", "bytes": 3}, "unknown fields ['bytes']"),
        ({"kind": "pin"}, "kind 'pin' is not one of"),
    ],
)
def test_invalid_specs_are_explained(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        generate.generate(spec)


# ------------------------------------------------------------------ token strategy through moto


def test_rotate_secret_drives_all_four_steps(harness: Harness, name: str) -> None:
    harness.secret(name, "initial-token-value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}})
    token = harness.rotate(name, fn)

    assert not harness.router.errors(token)
    steps = [c.event["Step"] for c in harness.router.calls if c.event["ClientRequestToken"] == token]
    assert steps == list(STEPS)
    assert harness.version_of(name, "AWSCURRENT") == token
    assert harness.version_of(name, "AWSPENDING") is None
    new = harness.value(name)
    rotated = new != "initial-token-value" and len(new) == 64
    assert rotated
    kept_previous = harness.value(name, "AWSPREVIOUS") == "initial-token-value"
    assert kept_previous


def test_token_inside_json_secret_changes_only_its_key(harness: Harness, name: str) -> None:
    harness.secret(name, json.dumps({"token": "old", "endpoint": "https://api.example.com"}))
    fn = harness.function("token", {name: {"key": "token", "generate": {"kind": "uuid"}}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    data = harness.json(name)
    assert data["endpoint"] == "https://api.example.com"
    changed = data["token"] != "old" and len(data["token"]) == 36
    assert changed


def test_second_rotation_rotates_again(harness: Harness, name: str) -> None:
    harness.secret(name, "v0-value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}})
    first = harness.rotate(name, fn)
    value1 = harness.value(name)
    second = harness.rotate(name, fn)
    assert not harness.router.errors(first) and not harness.router.errors(second)
    assert harness.version_of(name, "AWSCURRENT") == second
    assert harness.version_of(name, "AWSPREVIOUS") == first
    moved = harness.value(name, "AWSPREVIOUS") == value1 != harness.value(name)
    assert moved


# ------------------------------------------------------------------ re-entry, step by step


def _pending_rotation(harness: Harness, name: str, value: str = "start-value") -> tuple[str, str]:
    """A secret whose rotation has begun (AWSPENDING version, no value yet) and a paused function."""
    harness.secret(name, value)
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    return fn, harness.rotate(name, fn)


def test_create_secret_reuses_existing_pending(harness: Harness, name: str) -> None:
    fn, token = _pending_rotation(harness, name)
    harness.step(name, "createSecret", token, fn)
    pending = harness.value(name, "AWSPENDING")
    harness.step(name, "createSecret", token, fn)
    reused = harness.value(name, "AWSPENDING") == pending
    assert reused


def test_each_step_twice_then_finish_is_noop(harness: Harness, name: str) -> None:
    fn, token = _pending_rotation(harness, name)
    for step in STEPS:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)
    assert harness.version_of(name, "AWSCURRENT") == token
    stages = harness.stages(name)
    harness.step(name, "finishSecret", token, fn)
    harness.step(name, "createSecret", token, fn)  # a late retry of an earlier step: also a no-op
    assert harness.stages(name) == stages


def test_finish_resumes_after_dying_between_stage_moves(harness: Harness, name: str) -> None:
    fn, token = _pending_rotation(harness, name)
    for step in STEPS[:3]:
        harness.step(name, step, token, fn)
    old = harness.version_of(name, "AWSCURRENT")
    # The first finishSecret moved AWSCURRENT and died before clearing AWSPENDING.
    harness.sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old
    )
    harness.step(name, "finishSecret", token, fn)
    assert harness.stages(name)[token] == ["AWSCURRENT"]
    assert harness.version_of(name, "AWSPREVIOUS") == old


def test_unknown_token_is_refused(harness: Harness, name: str) -> None:
    fn, _ = _pending_rotation(harness, name)
    with pytest.raises(VersionStageError, match="does not exist"):
        harness.step(name, "createSecret", "00000000-0000-4000-8000-000000000000", fn)


def test_token_not_pending_is_refused(harness: Harness, name: str) -> None:
    fn, first = _pending_rotation(harness, name)
    harness.rotate(name, fn)  # a newer rotation takes AWSPENDING away from `first`
    with pytest.raises(VersionStageError, match="is not AWSPENDING"):
        harness.step(name, "testSecret", first, fn)


def test_rotation_not_enabled_is_refused(harness: Harness, name: str) -> None:
    harness.secret(name, "value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    version = harness.version_of(name, "AWSCURRENT")
    assert version
    with pytest.raises(RotationNotEnabledError, match=f"rotation is not enabled for secret {name}"):
        harness.step(name, "createSecret", version, fn)


def test_secret_not_in_deployment_is_refused(harness: Harness, name: str) -> None:
    other = name + "-other"
    harness.secret(other, "other-value")
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}})
    token = harness.rotate(other, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], SecretNotAllowedError)
    assert f"does not rotate secret {other!r}" in str(errors[0])
    assert_no_secret(str(errors[0]), "other-value")
    unchanged = harness.value(other) == "other-value"
    assert unchanged
    # By ARN as well as by name.
    arn = harness.sm.describe_secret(SecretId=other)["ARN"]
    with pytest.raises(SecretNotAllowedError):
        harness.step(arn, "createSecret", token, fn)


def test_unknown_step_and_bad_event(harness: Harness, name: str) -> None:
    fn, token = _pending_rotation(harness, name)
    with pytest.raises(RotationError, match="unknown rotation step 'rollbackSecret'"):
        harness.step(name, "rollbackSecret", token, fn)
    with pytest.raises(RotationError, match="lacks 'ClientRequestToken'"):
        from rotation import handler

        handler.handle({"Step": "createSecret", "SecretId": name}, harness.environments[fn], harness.sm)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ROTATION_STRATEGY": "ldap", "ROTATION_TARGETS": "{}"}, "ROTATION_STRATEGY='ldap' is not one of"),
        ({"ROTATION_STRATEGY": "token", "ROTATION_TARGETS": "[1]"}, "must be a non-empty JSON object"),
        ({"ROTATION_STRATEGY": "token", "ROTATION_TARGETS": "{"}, "ROTATION_TARGETS is not valid JSON"),
        ({"ROTATION_STRATEGY": "token", "ROTATION_TARGETS": '{"a": {}}'}, "'generate' .* is required"),
        (
            {"ROTATION_STRATEGY": "token", "ROTATION_TARGETS": '{"a": {"generate": {"kind": "uuid"}, "x": 1}}'},
            r"ROTATION_TARGETS\['a'\]: token: unknown parameters \['x'\]",
        ),
    ],
)
def test_bad_deployment_is_explained(environ: dict[str, str], message: str) -> None:
    from rotation import handler

    with pytest.raises(ConfigurationError, match=message):
        handler.load_deployment(environ)


def test_lambda_handler_reads_its_environment(harness: Harness, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real entry point: deployment and endpoint from os.environ, client built by the handler."""
    from rotation import handler

    fn, token = _pending_rotation(harness, name)
    for key, value in harness.environments[fn].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", harness.sm.meta.endpoint_url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for step in STEPS:
        handler.lambda_handler({"Step": step, "SecretId": name, "ClientRequestToken": token}, None)
    assert harness.version_of(name, "AWSCURRENT") == token


def test_create_secret_of_a_plain_token_reads_nothing(harness: Harness, name: str) -> None:
    """A new plain token derives from nothing: createSecret does not read AWSCURRENT (one call fewer), nor
    AWSPENDING (PutSecretValue refuses a second value under the token)."""
    fn, token = _pending_rotation(harness, name)
    reads: list[dict[str, object]] = []

    def record(params: dict[str, object], **_: object) -> None:
        reads.append({k: v for k, v in params.items() if k in ("VersionStage", "VersionId")})

    event = "provide-client-params.secrets-manager.GetSecretValue"
    harness.sm.meta.events.register(event, record)
    try:
        harness.step(name, "createSecret", token, fn)
    finally:
        harness.sm.meta.events.unregister(event, record)
    assert reads == []
    made = len(harness.value(name, "AWSPENDING")) == 64
    assert made


def test_a_token_rotation_makes_seven_secrets_manager_calls(harness: Harness, name: str) -> None:
    """DescribeSecret in createSecret and finishSecret (setSecret installs nothing and calls nothing;
    testSecret's read of AWSPENDING carries the name and stages); GetSecretValue(AWSPENDING) in
    testSecret and finishSecret (which never moves AWSCURRENT onto a version with no value);
    PutSecretValue; two UpdateSecretVersionStage (AWSCURRENT moved, AWSPENDING cleared)."""
    fn, token = _pending_rotation(harness, name)
    calls: list[str] = []

    def record(model: object, **_: object) -> None:
        calls.append(str(getattr(model, "name", model)))

    harness.sm.meta.events.register("before-call.secrets-manager.*", record)
    try:
        for step in STEPS:
            harness.step(name, step, token, fn)
    finally:
        harness.sm.meta.events.unregister("before-call.secrets-manager.*", record)
    assert harness.version_of(name, "AWSCURRENT") == token
    assert sorted(calls) == sorted(["DescribeSecret"] * 2 + ["GetSecretValue"] * 2 + ["PutSecretValue"]
                                   + ["UpdateSecretVersionStage"] * 2), calls


def test_set_secret_of_a_function_that_installs_nothing_calls_nothing(harness: Harness, name: str) -> None:
    fn, token = _pending_rotation(harness, name)
    calls: list[str] = []

    def record(**_: object) -> None:
        calls.append("call")

    harness.sm.meta.events.register("before-call.secrets-manager.*", record)
    try:
        harness.step(name, "setSecret", token, fn)
    finally:
        harness.sm.meta.events.unregister("before-call.secrets-manager.*", record)
    assert calls == []


def test_every_strategy_name_loads_its_class() -> None:
    from rotation import strategies

    assert set(strategies.NAMES) == {"token", "postgres-single-user", "postgres-alternating-users", "redis-acl",
                                     "jwt-hs256", "jwt-rs256"}
    for name in strategies.NAMES:
        cls = strategies.load(name)
        assert cls is not None and cls.name == name
    assert strategies.load("ldap") is None


@pytest.mark.parametrize(("strategy", "module", "library"), [
    ("token", "token", None),
    ("jwt-hs256", "jwt", "cryptography"),
    ("postgres-single-user", "postgres", "psycopg"),
    ("redis-acl", "redis_acl", "redis"),
])
def test_a_function_imports_only_its_own_strategy(strategy: str, module: str, library: str | None) -> None:
    """Cold start: the handler and one strategy, in a fresh interpreter, import that strategy's module
    and client library and no other strategy's (a token function imports none of them)."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from rotation import handler, strategies\n"
        f"cls = strategies.load({strategy!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rotation.strategies.')\n"
        "                        or m in ('psycopg', 'redis', 'cryptography'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    imported = set(json.loads(done.stdout))
    assert {m for m in imported if m.startswith("rotation.strategies.")} == {f"rotation.strategies.{module}"}
    others = {"psycopg", "redis"} - {library}
    assert not imported & others, imported
    if library is not None:
        assert library in imported
    else:
        assert not imported & {"psycopg", "redis", "cryptography"}, imported
