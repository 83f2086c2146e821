"""The first value of a generated secret no function rotates, made by `rotation/first_value.py` against moto.

`pulumi up` invokes the function once per such secret (aws.lambda_.Invocation, CREATE_ONLY: on creation or
replacement only, pulumi-aws 7.51.1 `lambda_/invocation.py`). The Invocation keeps the function's answer in
Pulumi state, so the answer must hold no value; and a stack deployed before the function existed gets the
Invocation at its first `pulumi up` after upgrading, against secrets that already have their value: the run
must write nothing there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import string
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from servers import MotoServer, moto_keeps_version_values

from rotation.errors import ConfigurationError, RotationError, SecretNotAllowedError
from rotation.first_value import first_token, load_targets, make_first_value

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}
PASSWORD = {"kind": "password", "length": 40, "alphabet": "alphanumeric"}


@pytest.fixture
def sm(moto: MotoServer) -> Iterator[Any]:
    with moto_keeps_version_values():
        yield moto.client("secretsmanager")


@pytest.fixture
def name() -> str:
    return f"shop/staging/once-{uuid.uuid4().hex[:8]}"


def _versions(sm: Any, name: str) -> dict[str, list[str]]:
    return dict(sm.describe_secret(SecretId=name).get("VersionIdsToStages") or {})


def test_an_empty_secret_gets_one_version_and_the_answer_holds_no_value(
        sm: Any, name: str, caplog: pytest.LogCaptureFixture) -> None:
    sm.create_secret(Name=name)
    with caplog.at_level(logging.DEBUG):
        answer = make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})
    assert answer == {"secret": name, "written": True}
    assert _versions(sm, name) == {first_token(name): ["AWSCURRENT"]}
    value = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    assert len(value) == 64 and set(value) <= set(string.hexdigits.lower())
    assert value not in json.dumps(answer) and value not in caplog.text


def test_a_json_secret_of_generated_keys_gets_each_key(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    make_first_value({"FirstValue": name}, sm, {name: {"signing": HEX32, "password": PASSWORD}})
    document = json.loads(sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
    assert set(document) == {"signing", "password"} and len(document["password"]) == 40


def test_a_secret_that_has_a_value_is_never_overwritten(sm: Any, name: str) -> None:
    """An existing stack's first `pulumi up` after upgrading: the secret's value (the program's old version)
    stays, no version is added."""
    existing = uuid.uuid4().hex + uuid.uuid4().hex  # made at run time: the value pulumi-random wrote before
    sm.create_secret(Name=name, SecretString=existing)
    before = _versions(sm, name)
    answer = make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})
    assert answer == {"secret": name, "written": False}
    assert _versions(sm, name) == before
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"] == existing


def test_a_second_run_writes_nothing(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})
    first = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    assert make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})["written"] is False
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"] == first
    assert len(_versions(sm, name)) == 1


def test_two_runs_racing_on_an_empty_secret_leave_one_value(sm: Any, name: str) -> None:
    """Both find no AWSCURRENT; the same ClientRequestToken makes the second PutSecretValue fail (Secrets
    Manager: a version's value cannot change), and the loser reports that nothing was written."""
    sm.create_secret(Name=name)
    answers: list[dict[str, Any]] = []
    gate = threading.Barrier(2)
    real_describe = sm.describe_secret

    class Racing:
        def __init__(self) -> None:
            self.calls = 0

        def describe_secret(self, **kwargs: Any) -> Any:
            self.calls += 1
            found = real_describe(**kwargs)
            if self.calls == 1:
                gate.wait(timeout=10)  # both have seen the secret empty
            return found

        def __getattr__(self, attribute: str) -> Any:
            return getattr(sm, attribute)

    def run(client: Racing) -> None:
        answers.append(make_first_value({"FirstValue": name}, client, {name: {"": HEX32}}))

    threads = [threading.Thread(target=run, args=(Racing(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(a["written"] for a in answers) == [False, True]
    assert _versions(sm, name) == {first_token(name): ["AWSCURRENT"]}


@pytest.mark.parametrize("event", [
    {"FirstValue": "shop/staging/other"},
    {"FirstValue": "shop/production/once"},
    {"FirstValue": ["shop/staging/once"]},
    {"FirstValue": "shop/staging/once", "Step": "createSecret"},
    {"Step": "createSecret", "SecretId": "shop/staging/once", "ClientRequestToken": "t" * 32},
    "shop/staging/once",
])
def test_a_secret_it_was_not_built_for_or_a_malformed_event_is_refused(sm: Any, event: Any) -> None:
    with pytest.raises((SecretNotAllowedError, RotationError)):
        make_first_value(event, sm, {"shop/staging/once": {"": HEX32}})


@pytest.mark.parametrize("raw", ["", "[]", "{}", '{"a": {}}', '{"a": {"": {"kind": "bytes", "bytes": 2}}}',
                                 '{"a": {"": {"kind": "uuid"}, "k": {"kind": "uuid"}}}', "x" * 10_000])
def test_a_bad_deployment_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError):
        load_targets({"FIRST_VALUE_TARGETS": raw})


# ---------------------------------------------------------------- replace after a leak (`ops rotate --leaked`)


def test_a_replace_request_makes_a_new_current_and_keeps_the_leaked_one_as_previous(
        sm: Any, name: str, caplog: pytest.LogCaptureFixture) -> None:
    """PutSecretValue with AWSCURRENT moves AWSPREVIOUS to the version AWSCURRENT leaves (botocore's
    PutSecretValue documentation); the answer names the new version and holds no value."""
    sm.create_secret(Name=name)
    make_first_value({"FirstValue": name}, sm, {name: {"signing": HEX32, "password": PASSWORD}})
    leaked = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    with caplog.at_level(logging.DEBUG):
        answer = make_first_value({"FirstValue": name, "Replace": True}, sm,
                                  {name: {"signing": HEX32, "password": PASSWORD}})
    assert answer["written"] is True and set(answer) == {"secret", "written", "version"}
    assert _versions(sm, name) == {first_token(name): ["AWSPREVIOUS"], answer["version"]: ["AWSCURRENT"]}
    new = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    assert new != leaked
    document = json.loads(new)
    assert set(document) == {"signing", "password"} and len(document["password"]) == 40
    assert len(document["signing"]) == 64 and set(document["signing"]) <= set(string.hexdigits.lower())
    for value in (new, leaked, *document.values()):
        assert value not in json.dumps(answer) and value not in caplog.text


def test_two_replaces_leave_the_leaked_value_without_a_label(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})
    first = make_first_value({"FirstValue": name, "Replace": True}, sm, {name: {"": HEX32}})
    second = make_first_value({"FirstValue": name, "Replace": True}, sm, {name: {"": HEX32}})
    stages = _versions(sm, name)
    assert stages[second["version"]] == ["AWSCURRENT"] and stages[first["version"]] == ["AWSPREVIOUS"]
    assert not stages.get(first_token(name))


def test_a_replace_of_a_secret_without_a_value_is_refused_and_writes_nothing(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    with pytest.raises(RotationError, match="no value to replace"):
        make_first_value({"FirstValue": name, "Replace": True}, sm, {name: {"": HEX32}})
    assert not _versions(sm, name)


@pytest.mark.parametrize("replace", ["true", 1, False, None, {"": True}])
def test_only_an_explicit_true_replaces(sm: Any, name: str, replace: Any) -> None:
    sm.create_secret(Name=name)
    make_first_value({"FirstValue": name}, sm, {name: {"": HEX32}})
    before = _versions(sm, name)
    with pytest.raises(RotationError):
        make_first_value({"FirstValue": name, "Replace": replace}, sm, {name: {"": HEX32}})
    assert _versions(sm, name) == before


@pytest.mark.parametrize("event", [
    {"FirstValue": "shop/staging/other", "Replace": True},
    {"FirstValue": "shop/production/once", "Replace": True},
    {"FirstValue": "shop/staging/once", "Replace": True, "Step": "createSecret"},
    {"Replace": True},
])
def test_a_replace_for_a_secret_it_was_not_built_for_is_refused(sm: Any, event: Any) -> None:
    with pytest.raises((SecretNotAllowedError, RotationError)):
        make_first_value(event, sm, {"shop/staging/once": {"": HEX32}})


def test_a_replaced_value_is_left_alone_by_the_next_up_and_refresh(moto: MotoServer) -> None:
    """The program registers no version for a value made once (only the empty Secret and an Invocation whose
    input is the secret's name: tests/test_first_value_function.py); so after a replace, a refresh drops nothing
    and an up changes nothing, played by the test engine with the provider's semantics (tests/life/engine.py).
    The Invocation is CREATE_ONLY (pulumi-aws 7.51.1 `lambda_/invocation.py`, `lifecycle_scope`): its unchanged
    input never runs the function again, and it never sends `Replace`."""
    import boto3

    from tests.life.engine import SECRET, VERSION, Engine
    from tests.life.world import program_run

    run = program_run("relaybox")
    full = "relaybox/staging/api-key-signing-key"
    resources = [r for r in run.resources if r.type in (SECRET, VERSION) and "-api-key-signing-key" in r.name]
    assert [r.type for r in resources] == [SECRET]  # no version: the value never passes through Pulumi
    invocation = next(r for r in run.resources if r.type == "aws:lambda/invocation:Invocation"
                      and r.name.endswith("-api-key-signing-key"))
    assert json.loads(invocation.inputs["input"]) == {"FirstValue": full}
    sm = boto3.client("secretsmanager", endpoint_url=moto.endpoint_url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    # moto keeps its state per process, whichever server or mock made it: another test of this example may have left
    # the secret behind (tests/ops run first in the same process).
    with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
        sm.delete_secret(SecretId=full, ForceDeleteWithoutRecovery=True)
    engine = Engine(sm, {r.inputs["kmsKeyId"]: None for r in resources if r.inputs.get("kmsKeyId")})
    try:
        with moto_keeps_version_values():
            assert [s.op for s in engine.up(resources)] == ["create"]
            keys = {full: {"": HEX32}}
            make_first_value(json.loads(invocation.inputs["input"]), sm, keys)
            replaced = make_first_value({"FirstValue": full, "Replace": True}, sm, keys)["version"]

            assert engine.refresh() == [] and engine.up(resources) == []
            assert _versions(sm, full) == {first_token(full): ["AWSPREVIOUS"], replaced: ["AWSCURRENT"]}
            assert make_first_value(json.loads(invocation.inputs["input"]), sm, keys)["written"] is False
            assert _versions(sm, full)[replaced] == ["AWSCURRENT"]
    finally:
        sm.delete_secret(SecretId=full, ForceDeleteWithoutRecovery=True)
