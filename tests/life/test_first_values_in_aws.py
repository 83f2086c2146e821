"""A deployed stack moves a rotated HS256 key's first value out of Pulumi state: `firstValues: aws`.

The program then registers neither the pulumi-random resource nor the SecretVersion, so the engine deletes both.
Played by the test engine (tests/life/engine.py) with the engine's and the provider's rules:
- the SecretVersion's delete is the provider's Delete unless the OLD state records retainOnDelete (pulumi/pulumi
  `pkg/resource/deploy/step.go` DeleteStep.Apply), and that Delete removes every label the state last read but
  AWSCURRENT (terraform-provider-aws `secret_version.go` resourceSecretVersionDelete);
- the state records retainOnDelete on a Same step too (step_generator.go generateSteps, snapshot.go mustWrite).
So a stack runs one `pulumi up` with this release (retain recorded, nothing written) before turning the setting on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from components.names import PROGRAM_VALUE_LABEL
from preview.model import CollectedResource
from preview.runtime import ProgramRun
from rotation.strategies.jwt import sign_hs256, verify_hs256
from tests.conftest import REPO, run_stack
from tests.life.engine import RANDOM, ROTATION, SECRET, VERSION
from tests.life.world import Life, program_run

APP, ONLY = "fieldkit", "device-token-key"
"""fieldkit's staging stack: an HS256 key (jwt-hs256) whose first value the program writes today."""
CLAIMS = {"sub": "device-1"}


def _run_with(first_values: str, directory: Path) -> ProgramRun:
    document = yaml.safe_load((REPO / "examples" / APP / "Pulumi.staging.yaml").read_text())
    document["config"]["secrets-platform:firstValues"] = first_values
    path = directory / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return run_stack("staging", REPO, path).run


def _of_the_secret(stack: Life, run: ProgramRun) -> list[CollectedResource]:
    """The secret's Secret, SecretVersion, pulumi-random resource and SecretRotation as `run` registers them."""
    secrets = {r.urn for r in stack.resources if r.type == SECRET}
    components = {r.parent for r in stack.resources if r.type == SECRET}
    return [r for r in run.resources if r.custom and (
        (r.parent in components and (r.type in (SECRET, VERSION) or r.type.startswith(RANDOM)))
        or (r.type == ROTATION and set(r.property_dependencies.get("secretId", ())) & secrets))]


def _today(resources: list[CollectedResource]) -> list[CollectedResource]:
    """The program before this release: its versions not retained on delete."""
    return [dataclasses.replace(r, retain_on_delete=False) if r.type == VERSION else r for r in resources]


def _deployed_and_rotated(life: Callable[..., Life], rotations: int, tmp_path: Path) -> tuple[
        Life, str, str, list[CollectedResource], list[CollectedResource]]:
    """Deployed with today's program, rotated, refreshed: the stack, the secret's ARN, the program's version id,
    this release's resources (setting `program`) and those with `firstValues: aws`."""
    stack = life(APP, only=ONLY, strategies=("jwt-hs256",))
    this_release = _of_the_secret(stack, program_run(APP))
    in_aws = _of_the_secret(stack, _run_with("aws", tmp_path))
    stack.engine.up(_today(this_release))
    ((arn, version),) = stack.engine.version_ids().items()
    for _ in range(rotations):
        stack.clock.advance(3600)
        stack.rotate(arn)
    stack.engine.refresh()
    return stack, arn, version, this_release, in_aws


def _value(stack: Life, arn: str, stage: str) -> dict[str, str]:
    return dict(json.loads(stack.sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))


@pytest.mark.parametrize("rotations", [1, 2])
def test_a_deployed_stack_moves_its_first_value_out_of_state_without_touching_a_label(
        life: Callable[..., Life], rotations: int, tmp_path: Path) -> None:
    stack, arn, version, this_release, in_aws = _deployed_and_rotated(life, rotations, tmp_path)
    assert any(r.type.startswith(RANDOM) for r in this_release)
    assert not [r for r in in_aws if r.type == VERSION or r.type.startswith(RANDOM)], "aws: no value registered"
    previous = _value(stack, arn, "AWSPREVIOUS")
    issued = sign_hs256(previous["key"], previous["kid"], CLAIMS)  # signed before the last rotation

    # This release: nothing written, nothing changed in AWS; the state now records retainOnDelete.
    stages = stack.stages(arn)
    assert stack.engine.up(this_release) == []
    tracked = next(e for e in stack.engine.state.values() if e.type == VERSION)
    assert tracked.retain_on_delete and stack.stages(arn) == stages

    # The setting on: the version and the random resource leave the state, the provider's Delete is not called.
    steps = stack.engine.up(in_aws)
    deleted = {s.urn.rsplit("::", 1)[-1]: s.retained for s in steps if s.op == "delete"}
    assert deleted == {f"{APP}-staging-{ONLY}-value": True, f"{APP}-staging-{ONLY}-key": False}, steps
    assert not [e for e in stack.engine.state.values() if e.type == VERSION or e.type.startswith(RANDOM)]
    assert f"{arn}|{version}" not in stack.engine.provider_deletes
    assert stack.stages(arn) == stages, "AWSCURRENT, AWSPREVIOUS and the program's label as they were"
    assert _value(stack, arn, "AWSPREVIOUS") == previous
    assert verify_hs256(_value(stack, arn, "AWSCURRENT"), issued) == CLAIMS  # the function's view

    # Life goes on without a version in the program.
    stack.clock.advance(3600)
    stack.rotate(arn)
    assert stack.engine.refresh() == []
    assert stack.engine.up(in_aws, dry_run=True) == [] and stack.engine.up(in_aws) == []


def test_without_the_retain_release_the_flip_strips_awsprevious(life: Callable[..., Life], tmp_path: Path) -> None:
    """The counter-case: today's state (no retainOnDelete) and the setting turned on at once. After one rotation and a
    refresh the state records AWSPREVIOUS on the program's version; the provider's Delete removes it."""
    stack, arn, version, _, in_aws = _deployed_and_rotated(life, 1, tmp_path)
    assert "AWSPREVIOUS" in stack.stages(arn)[version]
    previous = _value(stack, arn, "AWSPREVIOUS")

    steps = stack.engine.up(in_aws)
    assert [(s.urn.rsplit("::", 1)[-1], s.retained) for s in steps if s.op == "delete" and VERSION in s.urn] == [
        (f"{APP}-staging-{ONLY}-value", False)]
    assert f"{arn}|{version}" in stack.engine.provider_deletes
    assert stack.stages(arn)[version] == [], "AWSPREVIOUS and the program's label removed"
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        stack.sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    # The previous key is still in AWS, unlabelled: nothing that reads AWSPREVIOUS (a rollback) finds it.
    assert json.loads(stack.value_of(arn, version))["key"] == previous["key"]
    assert PROGRAM_VALUE_LABEL not in str(stack.stages(arn))


@pytest.mark.parametrize("retained", [True, False])
def test_a_stale_awsprevious_in_the_state_fails_the_flip_without_the_retain_release(
        life: Callable[..., Life], tmp_path: Path, retained: bool) -> None:
    """Rotated once, refreshed (the state records AWSPREVIOUS on the program's version), rotated again (AWSPREVIOUS
    moved on; no refresh): the provider's Delete asks to remove AWSPREVIOUS from a version that no longer holds it,
    which AWS refuses, and the `up` fails. With the retain release in between, no Delete is sent."""
    stack, arn, version, this_release, in_aws = _deployed_and_rotated(life, 1, tmp_path)
    if retained:
        stack.engine.up(this_release)
    stack.clock.advance(3600)
    stack.rotate(arn)
    stages = stack.stages(arn)
    if not retained:
        with pytest.raises(ClientError, match="InvalidParameterException"):
            stack.engine.up(in_aws)
        return
    stack.engine.up(in_aws)
    assert stack.stages(arn) == stages and f"{arn}|{version}" not in stack.engine.provider_deletes
