"""The engine's rules that the label relies on, each played against moto: a stack deployed before the label takes
the change without a write, the label is added to its version by hand, a version is replaced label first, an
import, a destroy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from components.names import PROGRAM_VALUE_LABEL
from tests.life.engine import VERSION, ImportMismatch
from tests.life.test_put_back import APP
from tests.life.world import Life, as_before

ONLY = "admin-token"


def _version(stack: Life) -> tuple[str, str]:
    ((arn, version),) = stack.engine.version_ids().items()
    return arn, version


def _rotations(stack: Life, count: int) -> None:
    for _ in range(count):
        stack.clock.advance(3600)
        stack.rotate(stack.secret_arns()[0])
    stack.clock.advance(24 * 3600)


def test_an_existing_stack_takes_the_change_without_writing_and_keeps_its_value_once_labelled(
        life: Callable[..., Life]) -> None:
    stack = life(APP, "labelled", only=ONLY)
    labelled = stack.resources
    stack.engine.up(as_before(labelled))  # deployed before the label existed
    arn, first_version = _version(stack)
    _rotations(stack, 1)
    rotated = stack.current(arn)
    stack.engine.refresh()
    # The first up with the label: versionStages is a new input of an existing version, and ignored.
    assert stack.engine.up(labelled) == []
    assert stack.current(arn) == rotated and stack.labelled(arn) == []
    # Without ignore_changes on it, the provider would update it in place: AWSCURRENT moved back to the first value.
    unignored = [dataclasses.replace(r, ignore_changes=("secretString",)) if r.type == VERSION else r
                 for r in labelled]
    assert [(s.op, s.changed) for s in stack.engine.up(unignored, dry_run=True)] == [("update", ("versionStages",))]
    # The documented one-liner labels the version the state tracks; AWS then never removes it.
    stack.sm.update_secret_version_stage(SecretId=arn, VersionStage=PROGRAM_VALUE_LABEL,
                                         MoveToVersionId=first_version)
    _rotations(stack, 100)
    assert stack.aws.remove_old_versions() > 0
    assert stack.engine.refresh() == [] and stack.engine.up(labelled) == []
    put_back = stack.current(arn) == stack.value_of(arn, first_version)
    assert not put_back and stack.labelled(arn) == [first_version]


@pytest.mark.parametrize("retain", [True, False])
@pytest.mark.parametrize("delete_first", [True, False])
def test_a_new_value_replaces_the_version_and_the_old_one_gives_up_the_label_first(
        life: Callable[..., Life], delete_first: bool, retain: bool) -> None:
    """A value the program owns (no rotation, a supplied value) changes: secret_string is ForceNew, so the version
    is replaced. The label can be on one version only: created first, the new version takes it, and the provider's
    delete of the old one (UpdateSecretVersionStage RemoveFromVersionId) then fails. A retained version (the program
    as it is) is not given to the provider's Delete: either order ends as the delete-first one does, the old value
    under AWSPREVIOUS."""
    stack = life(APP, "labelled", only=ONLY)
    owned = [dataclasses.replace(r, ignore_changes=("versionStages",), retain_on_delete=retain)
             if r.type == VERSION else r for r in stack.resources]
    stack.engine.up(owned)
    arn, old_version = _version(stack)
    old_value = stack.current(arn)
    def renewed(wrapped: dict[str, str]) -> dict[str, str]:
        return {**wrapped, "value": wrapped["value"] + "-new"}  # still a wrapped secret, another value

    changed = [dataclasses.replace(r, inputs={**r.inputs, "secretString": renewed(r.inputs["secretString"])},
                                   delete_before_replace=delete_first) if r.type == VERSION else r for r in owned]
    assert [(s.op, s.changed) for s in stack.engine.up(changed, dry_run=True)] == [("replace", ("secretString",))]
    if not delete_first and not retain:
        with pytest.raises(ClientError, match="InvalidParameterException"):
            stack.engine.up(changed)
        return
    stack.engine.up(changed)
    _, new_version = _version(stack)
    assert new_version != old_version and stack.labelled(arn) == [new_version]
    assert stack.stages(arn)[old_version] == ["AWSPREVIOUS"]
    assert stack.value_of(arn, old_version) == old_value
    assert (f"{arn}|{old_version}" in stack.engine.provider_deletes) is not retain
    still_old = stack.current(arn) == old_value
    assert not still_old
    assert stack.engine.up(changed, dry_run=True) == []


def test_an_import_of_the_current_version_and_its_mismatch(life: Callable[..., Life]) -> None:
    """A stack whose first version AWS already removed: after the refresh dropped it, importing the current version
    as that resource writes nothing (its value and labels are ignored); an import whose value is not ignored and
    differs is refused."""
    stack = life(APP, "before", only=ONLY)
    stack.engine.up(stack.resources)
    arn, _ = _version(stack)
    _rotations(stack, 101)
    stack.aws.remove_old_versions()
    assert [s.op for s in stack.engine.refresh()] == ["drop"]
    current = next(v for v, s in stack.stages(arn).items() if "AWSCURRENT" in s)
    record = next(r for r in stack.resources if r.type == VERSION)
    imported = [dataclasses.replace(r, import_id=f"{arn}|{current}") if r is record else r for r in stack.resources]
    rotated = stack.current(arn)
    strict = [dataclasses.replace(r, ignore_changes=()) if r.import_id else r for r in imported]
    with pytest.raises(ImportMismatch, match="secretString"):
        stack.engine.up(strict)
    assert [s.op for s in stack.engine.up(imported)] == ["import"]
    assert stack.current(arn) == rotated and stack.engine.up(stack.resources, dry_run=True) == []


@pytest.mark.parametrize("retain", [True, False])
def test_destroy_cancels_rotation_removes_the_label_and_schedules_the_secret_for_deletion(
        life: Callable[..., Life], retain: bool) -> None:
    """A retained version (the program as it is) is left as it is: its secret, scheduled for deletion, takes it along.
    Without retainOnDelete the provider's Delete removes the program's label first."""
    stack = life(APP, "labelled", only=ONLY)
    stack.engine.up([dataclasses.replace(r, retain_on_delete=retain) if r.type == VERSION else r
                     for r in stack.resources])
    arn, version = _version(stack)
    assert [(s.op, s.retained) for s in stack.engine.destroy()] == [
        ("delete", False), ("delete", retain), ("delete", False)]
    described = stack.sm.describe_secret(SecretId=arn)
    assert described.get("DeletedDate") and not described.get("RotationEnabled")
    assert stack.labelled(arn) == ([version] if retain else []) and "AWSCURRENT" in stack.stages(arn)[version]


def test_a_stale_pending_version_stops_rotation_until_it_is_cleared(life: Callable[..., Life]) -> None:
    """AWS refuses RotateSecret while AWSPENDING sits on a version other than AWSCURRENT (moto 5.2.5 does not:
    tests/life/aws.py); once the label is removed, rotation goes on and the program's label never moved."""
    import secrets

    stack = life(APP, "labelled", only=ONLY)
    stack.engine.up(stack.resources)
    arn, version = _version(stack)
    stale = stack.sm.put_secret_value(SecretId=arn, SecretString=secrets.token_hex(16),
                                      VersionStages=["AWSPENDING"])["VersionId"]
    with pytest.raises(ClientError, match="previous rotation isn't complete"):
        stack.rotate(arn)
    stack.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=stale)
    stack.rotate(arn)
    assert stack.stages(arn)[version] == ["AWSPREVIOUS", PROGRAM_VALUE_LABEL]
