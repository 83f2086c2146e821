"""What `secret_string_wo` would do to a supplied value's version, played with the provider's semantics
(tests/life/engine.py) over moto: why the program keeps `secret_string` (docs/state.md, "Write-only values").

- A version written with `secret_string_wo` is refreshed without GetSecretValue (the provider lists the
  secret's versions instead), and a new value is written only when `secret_string_wo_version` changes: the
  value itself is never compared.
- Switching a deployed version from `secret_string` to `secret_string_wo` replaces it (`secret_string` is
  ForceNew and not Computed, `secret_string_wo_version` ForceNew): the first `pulumi up` after such a change
  writes the stack's config value again as AWSCURRENT, over a newer value put since.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from components.names import PROGRAM_VALUE_LABEL
from preview.model import CollectedResource, plain
from tests.conftest import MINIMAL_STACK, run_stack
from tests.life.engine import SECRET, VERSION, Engine
from tests.life.world import _regional
from tests.servers import MotoServer

CATALOG = """\
app: shop
owner: web
secrets:
  api-token:
    description: Calls the partner API
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the partner - reissue in their console
    consumers: [api]
    value: {env: API_TOKEN, external: {}}
"""
STACK = MINIMAL_STACK + "  secrets-platform:apiToken:\n    secure: v1:" + "A" * 44 + "\n"
"""The supplied value is set with `pulumi config set --secret`; the offline run makes it at run time."""
REGION = "eu-west-1"


class Recorded:
    """A boto3 client that records the name of every call made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def program(make_project: Callable[..., Path]) -> list[CollectedResource]:
    """The supplied secret's Secret and SecretVersion as the program registers them today."""
    run = run_stack("staging", make_project(CATALOG, STACK)).run
    return [r for r in run.resources if r.type in (SECRET, VERSION)]


@pytest.fixture
def stack(moto: MotoServer, program: list[CollectedResource]) -> Iterator[Engine]:
    client = Recorded(_regional(moto, "secretsmanager", REGION))
    externals: dict[str, str | None] = {r.inputs["kmsKeyId"]: None for r in program
                                        if r.type == SECRET and r.inputs.get("kmsKeyId")}
    engine = Engine(client, externals)
    try:
        yield engine
    finally:
        for arn in {rid.split("|")[0] for rid in engine.created}:
            with contextlib.suppress(ClientError):
                client.client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def as_write_only(resources: list[CollectedResource], value: Any = None, version: int = 1) -> list[CollectedResource]:
    """The versions as they would be registered with `secret_string_wo` (the same value unless one is given)."""
    out = []
    for r in resources:
        if r.type == VERSION:
            inputs = {k: v for k, v in r.inputs.items() if k != "secretString"}
            inputs["secretStringWo"] = r.inputs["secretString"] if value is None else value
            inputs["secretStringWoVersion"] = version
            r = dataclasses.replace(r, inputs=inputs)
        out.append(r)
    return out


def _version(resources: list[CollectedResource]) -> CollectedResource:
    return next(r for r in resources if r.type == VERSION)


def _current(engine: Engine, arn: str) -> str:
    return str(engine.sm.client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def test_the_program_writes_a_supplied_value_with_secret_string(program: list[CollectedResource]) -> None:
    """The decision this file explains: the version keeps `secret_string` (no write-only input, no version)."""
    version = _version(program)
    assert "secretString" in version.inputs, version.urn
    assert not {"secretStringWo", "secretStringWoVersion"} & set(version.inputs), version.urn


def test_a_write_only_version_is_refreshed_without_its_value_and_rewritten_only_on_a_new_number(
        stack: Engine, program: list[CollectedResource]) -> None:
    configured = plain(_version(program).inputs["secretString"])
    created = stack.up(as_write_only(program))
    assert [s.op for s in created] == ["create", "create"], created
    arn = next(e.id for e in stack.state.values() if e.type == SECRET)
    assert _current(stack, arn) == configured

    stack.sm.calls.clear()
    assert stack.refresh() == []
    assert "get_secret_value" not in stack.sm.calls and "list_secret_version_ids" in stack.sm.calls, stack.sm.calls
    entry = next(e for e in stack.state.values() if e.type == VERSION)
    assert entry.outputs["secretString"] is None and entry.outputs["hasSecretStringWo"] is True
    assert PROGRAM_VALUE_LABEL in entry.outputs["versionStages"]

    # A new value under the same number is not seen: nothing is written.
    new_value = "nv" + secrets.token_hex(16)
    assert stack.up(as_write_only(program, new_value)) == []
    assert _current(stack, arn) == configured
    # A new number replaces the version: the new value is put, and takes AWSCURRENT and the program's label.
    steps = stack.up(as_write_only(program, new_value, version=2))
    assert [(s.op, s.changed) for s in steps] == [("replace", ("secretStringWoVersion",))], steps
    assert _current(stack, arn) == new_value
    stages = {v["VersionId"]: v.get("VersionStages", [])
              for v in stack.sm.client.list_secret_version_ids(SecretId=arn)["Versions"]}
    assert [v for v, s in stages.items() if PROGRAM_VALUE_LABEL in s] == [stack.version_ids()[arn]]


def test_switching_a_deployed_version_to_write_only_replaces_it_and_puts_the_config_value_back(
        stack: Engine, program: list[CollectedResource]) -> None:
    configured = plain(_version(program).inputs["secretString"])
    stack.up(program)
    arn = next(e.id for e in stack.state.values() if e.type == SECRET)
    # A newer value put since (the partner's console, a person with PutSecretValue): AWSCURRENT moves to it.
    newer = "nw" + secrets.token_hex(16)
    stack.sm.client.put_secret_value(SecretId=arn, SecretString=newer)

    # The program as it is writes nothing: the newer value stays.
    assert stack.up(program, dry_run=True) == []
    assert stack.refresh() == []
    assert stack.up(program) == [] and _current(stack, arn) == newer

    # The same value declared write-only: the version is replaced and the config's older value is put again.
    steps = stack.up(as_write_only(program))
    assert [(s.op, s.urn) for s in steps] == [("replace", _version(program).urn)], steps
    assert {"secretString", "secretStringWoVersion"} <= set(steps[0].changed), steps
    assert _current(stack, arn) == configured != newer
