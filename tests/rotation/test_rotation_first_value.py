"""A secret created without a value: the rotation function makes its first value.

This is how a value never enters Pulumi state or CI logs (catalog `rotation.first_value: rotation`):
Pulumi creates the secret empty and turns rotation on with RotateImmediately, and createSecret,
finding no AWSCURRENT, asks the strategy for a first value. moto needs two fixes to rotate an
empty secret as AWS does (tests/servers.py, `moto_rotates_empty_secrets`).
"""

from __future__ import annotations

import json
import logging
import string
import uuid
from collections.abc import Iterator

import pytest
from rotation_harness import STEPS, Harness, assert_no_secret
from servers import EmptySecretRotation

from rotation.errors import SecretFormatError
from rotation.strategies.jwt import sign_hs256, sign_rs256, verify_hs256, verify_rs256

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}


def _empty(harness: Harness, name: str) -> None:
    harness.sm.create_secret(Name=name)
    assert "VersionIdsToStages" not in harness.sm.describe_secret(SecretId=name) or not harness.stages(name)


def _only_current(harness: Harness, name: str, token: str) -> None:
    """The rotation's version is the secret's one version, AWSCURRENT, with AWSPENDING cleared."""
    assert harness.stages(name) == {token: ["AWSCURRENT"]}


@pytest.fixture(params=[False, True], ids=["pending-only", "first-put-current"])
def labelling(request: pytest.FixtureRequest, empty_secret_rotation: EmptySecretRotation) -> Iterator[bool]:
    """Both readings of how AWS labels the first PutSecretValue of an empty secret."""
    empty_secret_rotation.first_put_is_current = request.param
    try:
        yield request.param
    finally:
        empty_secret_rotation.first_put_is_current = False


def test_token_first_value_is_made_by_the_function(
    harness: Harness, name: str, labelling: bool, caplog: pytest.LogCaptureFixture
) -> None:
    _empty(harness, name)
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}})
    with caplog.at_level(logging.DEBUG, logger="rotation"):
        token = harness.rotate(name, fn)

    assert not harness.router.errors(token)
    _only_current(harness, name, token)
    value = harness.value(name)
    generated = len(value) == 64 and set(value) <= set(string.hexdigits.lower())
    assert generated
    assert "making its first value" in caplog.text
    assert_no_secret(caplog.text, value)


def test_token_in_json_first_value_holds_its_key(harness: Harness, name: str) -> None:
    _empty(harness, name)
    fn = harness.function("token", {name: {"key": "token", "generate": {"kind": "uuid"}}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    data = harness.json(name)
    assert sorted(data) == ["token"]
    assert len(data["token"]) == 36


def test_first_value_then_scheduled_rotation_keeps_it_as_previous(harness: Harness, name: str) -> None:
    _empty(harness, name)
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}})
    first = harness.rotate(name, fn)
    value = harness.value(name)
    second = harness.rotate(name, fn)
    assert not harness.router.errors(first) and not harness.router.errors(second)
    assert harness.version_of(name, "AWSCURRENT") == second
    assert harness.version_of(name, "AWSPREVIOUS") == first
    kept = harness.value(name, "AWSPREVIOUS") == value != harness.value(name)
    assert kept


def test_hs256_first_key_then_rotation_still_verifies_tokens_of_the_first_key(harness: Harness, name: str) -> None:
    _empty(harness, name)
    fn = harness.function("jwt-hs256", {name: {"bytes": 48}})
    first = harness.rotate(name, fn)
    assert not harness.router.errors(first)
    key = harness.json(name)
    assert key["alg"] == "HS256" and "previous_kid" not in key and "previous_key" not in key
    claims = {"sub": "user-1"}
    issued = sign_hs256(key["key"], key["kid"], claims)
    assert verify_hs256(key, issued) == claims

    second = harness.rotate(name, fn)
    assert not harness.router.errors(second)
    rotated = harness.json(name)
    assert rotated["kid"] != key["kid"] and rotated["previous_kid"] == key["kid"]
    assert verify_hs256(rotated, issued) == claims  # signed before the switch, still accepted


def test_rs256_first_key_pair_publishes_a_one_key_jwks(harness: Harness, name: str) -> None:
    _empty(harness, name)
    fn = harness.function("jwt-rs256", {name: {"bits": 2048}})
    first = harness.rotate(name, fn)
    assert not harness.router.errors(first)
    pair = harness.json(name)
    assert [k["kid"] for k in json.loads(pair["jwks"])["keys"]] == [pair["kid"]]
    assert "previous_kid" not in pair
    claims = {"sub": "user-1"}
    issued = sign_rs256(pair["private_key_pem"], pair["kid"], claims)

    second = harness.rotate(name, fn)
    assert not harness.router.errors(second)
    rotated = harness.json(name)
    assert [k["kid"] for k in json.loads(rotated["jwks"])["keys"]] == [rotated["kid"], pair["kid"]]
    assert verify_rs256(rotated["jwks"], issued) == claims


def test_each_step_twice_on_an_empty_secret(harness: Harness, name: str, labelling: bool) -> None:
    _empty(harness, name)
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    token = harness.rotate(name, fn)
    assert harness.stages(name) == {token: ["AWSPENDING"]}
    harness.step(name, "createSecret", token, fn)
    made = harness.value(name, "AWSPENDING")
    for step in STEPS:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)
    _only_current(harness, name, token)
    kept = harness.value(name) == made  # the retried createSecret reused the first value it made
    assert kept


def test_function_dies_after_create_and_the_retry_finishes(harness: Harness, name: str) -> None:
    _empty(harness, name)
    fn = harness.function("token", {name: {"key": None, "generate": HEX32}}, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    harness.step(name, "setSecret", token, fn)
    made = harness.value(name, "AWSPENDING")
    # ... the function dies here; Secrets Manager retries the rotation from the start.
    for step in STEPS:
        harness.step(name, step, token, fn)
    _only_current(harness, name, token)
    nothing_lost = harness.value(name) == made
    assert nothing_lost


@pytest.mark.parametrize("strategy", ["postgres-single-user", "postgres-alternating-users", "redis-acl"])
def test_a_server_credential_cannot_start_empty(harness: Harness, name: str, strategy: str) -> None:
    """These strategies log in with the current credential; with none, createSecret stops clearly."""
    _empty(harness, name)
    fn = harness.function(strategy, {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], SecretFormatError)
    assert str(errors[0]) == (
        f"secret {name} has no AWSCURRENT value, and the {strategy} strategy needs the current credential to "
        "log in with: store a first value, then rotate"
    )
    steps = [c.event["Step"] for c in harness.router.calls if c.event["ClientRequestToken"] == token]
    assert steps == ["createSecret"]  # the rotation stopped at the first step
    assert harness.version_of(name, "AWSCURRENT") is None


# ------------------------------------------------------------------ what the program deploys, run for real


def test_the_programs_first_value_deployment_rotates_in_the_emulator(harness: Harness) -> None:
    """The production stack as the preview declares it, replayed in moto: the empty secret, the token
    function's environment and the schedule's RotateImmediately make the catalog's value."""
    from tests.conftest import run_stack

    resources = run_stack("production").run.resources
    secret = next(r for r in resources if r.type == "aws:secretsmanager/secret:Secret"
                  and r.inputs["name"].endswith("/service-internal-key"))
    assert not [r for r in resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"
                and r.property_dependencies.get("secretId") == (secret.urn,)]
    schedule = next(r for r in resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"
                    and r.property_dependencies.get("secretId") == (secret.urn,))
    (function_urn,) = schedule.property_dependencies["rotationLambdaArn"]
    function = next(r for r in resources if r.urn == function_urn)
    environment = function.inputs["environment"]["variables"]

    name = secret.inputs["name"]
    harness.sm.create_secret(Name=name, Description=secret.inputs["description"])  # no value, as declared
    fn = harness.function(environment["ROTATION_STRATEGY"], json.loads(environment["ROTATION_TARGETS"]))
    token = str(uuid.uuid4())
    harness.sm.rotate_secret(
        SecretId=name, ClientRequestToken=token, RotationLambdaARN=fn,
        RotationRules={"AutomaticallyAfterDays": int(schedule.inputs["rotationRules"]["automaticallyAfterDays"])},
        RotateImmediately=schedule.inputs["rotateImmediately"],
    )
    assert not harness.router.errors(token)
    _only_current(harness, name, token)
    value = harness.value(name)
    as_catalog_says = len(value) == 64 and set(value) <= set(string.hexdigits.lower())  # bytes: 32, hex
    assert as_catalog_says
