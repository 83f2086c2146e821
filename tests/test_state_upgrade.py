"""The first `pulumi up` after upgrading: every example stack as the program declared it before generated
server passwords left Pulumi state, then as it declares it now, with the same project files and values.

What the engine would do with each difference is emulated here from its own rules:
- an input listed in `ignore_changes` takes the old input's value before the provider diffs the resource
  (pulumi/pulumi `pkg/resource/deploy/step_generator.go`, `processIgnoreChanges`: "sets the value for each
  ignoreChanges property in inputs to the value from oldInputs ... ensuring that no changes will be made for
  the corresponding property"), so a changed `secretString` on a version that ignores it is no update;
- a resource the program no longer declares is deleted: a pulumi-random resource exists only in the state
  (nothing in AWS changes); a SecretVersion holding AWSCURRENT keeps it (pulumi-aws 7.51.1
  `aws.secretsmanager.SecretVersion`: "If the AWSCURRENT staging label is present on this version during
  resource deletion, that label cannot be removed and will be skipped");
- a SecretRotation whose inputs change sends RotateImmediately again (terraform-provider-aws
  `secret_rotation.go`): a rotation at once, i.e. a new value.

Rule checked for every stack: no SecretVersion is created or changed (after `ignore_changes`), none is deleted
but the AWSCURRENT version of a generated secret no function rotates (which keeps AWSCURRENT, and so its value),
no schedule changes, no secret is renamed (a new secret) and no generated value changes; the generated passwords
of server credentials with a master and the values made once by the first-value function leave the state; and
that function, run with the program's own input against a secret that has a value, writes nothing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

BASELINE = "c0b7856cf5cbd02a2fd5fe8be7b51372b6848e2a"
"""The last commit whose program wrote a generated password (pulumi-random) into a server credential's first
version: the stacks deployed before this change."""
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
DRIVER = REPO / "tests" / "state_snapshot.py"
SERVER_STRATEGIES = ("postgres-single-user", "postgres-alternating-users", "redis-acl")
VALUE_INPUTS = ("secretId", "secretString", "secretBinary")
"""A SecretVersion's inputs that make a new value (terraform-provider-aws
`internal/service/secretsmanager/secret_version.go`: each is ForceNew, so a change replaces the version)."""


def _snapshot(code_tree: Path, project: Path, request: dict[str, Any], work: Path, label: str) -> list[dict[str, Any]]:
    request_file, result_file = work / f"{label}.request.json", work / f"{label}.result.json"
    request_file.write_text(json.dumps(request))
    done = subprocess.run([sys.executable, str(DRIVER), str(code_tree), str(project), str(request_file),
                           str(result_file)], cwd=work, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{label} run failed:\n{done.stderr[-3000:]}"
    return list(json.loads(result_file.read_text()))


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], tuple[dict, dict]]]:
    """(app, stack) -> (what the baseline registers, what this checkout registers)."""
    if shutil.which("git") is None or subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-e", f"{BASELINE}^{{commit}}"], capture_output=True).returncode:
        pytest.skip(f"the baseline commit {BASELINE[:10]} is not in this clone's history")
    work = tmp_path_factory.mktemp("upgrade")
    old = work / "baseline"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    apps = sorted(p.parent.name for p in (old / "examples").glob("*/catalog.yaml"))
    key = secrets.token_hex(32)
    stacks = [{"app": app, "stack": stack, "config": None} for app in apps for stack in ("staging", "production")]
    before = _snapshot(old, old, {"key": key, "directory": str(work), "stacks": stacks}, work, "baseline")
    # The same project files (the baseline's catalogs and completed stack files) and the same values.
    again = [{"app": r["app"], "stack": r["stack"], "config": r["config"]} for r in before]
    after = _snapshot(REPO, old, {"key": key, "directory": str(work), "stacks": again}, work, "now")
    yield {(b["app"], b["stack"]): (b, a) for b, a in zip(before, after, strict=True)}


def _by_urn(run: dict[str, Any], token: str | None = None) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in run["resources"] if token is None or r["type"] == token}


def engine_inputs(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The new inputs as the engine diffs them: every `ignore_changes` property takes the old input's value."""
    inputs = dict(new["inputs"])
    for prop in new["ignore_changes"]:
        if prop in old["inputs"]:
            inputs[prop] = old["inputs"][prop]
        else:
            inputs.pop(prop, None)
    return inputs


def value_writes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every step of the upgrade that would write a value into a secret, or change one in the state."""
    problems: list[str] = []
    old_versions, new_versions = _by_urn(before, VERSION), _by_urn(after, VERSION)
    problems += [f"new version {u.rsplit('::', 1)[-1]}" for u in sorted(set(new_versions) - set(old_versions))]
    problems += [f"version {u.rsplit('::', 1)[-1]} deleted" for u in sorted(set(old_versions) - set(new_versions))]
    for urn in sorted(set(old_versions) & set(new_versions)):
        old, new = old_versions[urn], new_versions[urn]
        changed = sorted(k for k in {*old["inputs"], *engine_inputs(old, new)}
                         if old["inputs"].get(k) != engine_inputs(old, new).get(k))
        # A new value, or a replacement (a new version): the value and the secret it belongs to. Labels
        # moving AWSCURRENT onto this version would bring its value back; other labels write no value.
        labels = set(engine_inputs(old, new).get("versionStages") or ()) - set(old["inputs"].get("versionStages") or ())
        writes = [k for k in changed if k in VALUE_INPUTS] + (["versionStages"] if labels & {"AWSCURRENT"} else [])
        if writes:
            problems.append(f"version {urn.rsplit('::', 1)[-1]} updated ({', '.join(writes)})")
    old_rotations, new_rotations = _by_urn(before, ROTATION), _by_urn(after, ROTATION)
    for urn in sorted(set(old_rotations) | set(new_rotations)):
        old_inputs = old_rotations.get(urn, {}).get("inputs")
        new_inputs = engine_inputs(old_rotations[urn], new_rotations[urn]) if old_inputs is not None \
            and urn in new_rotations else new_rotations.get(urn, {}).get("inputs")
        if old_inputs != new_inputs:
            problems.append(f"schedule {urn.rsplit('::', 1)[-1]} changed: RotateImmediately is sent again")
    old_secrets, new_secrets = _by_urn(before, SECRET), _by_urn(after, SECRET)
    for urn in sorted(set(old_secrets) | set(new_secrets)):
        if old_secrets.get(urn, {}).get("inputs", {}).get("name") != new_secrets.get(urn, {}).get("inputs", {}).get(
                "name"):
            problems.append(f"secret {urn.rsplit('::', 1)[-1]} created, deleted or renamed (a new secret)")
    old_random = {u: r for u, r in _by_urn(before).items() if r["type"].startswith("random:")}
    new_random = {u: r for u, r in _by_urn(after).items() if r["type"].startswith("random:")}
    problems += [f"new generated value {u.rsplit('::', 1)[-1]}" for u in sorted(set(new_random) - set(old_random))]
    for urn in sorted(set(old_random) & set(new_random)):
        if old_random[urn]["inputs"] != new_random[urn]["inputs"]:
            problems.append(f"generated value {urn.rsplit('::', 1)[-1]} replaced (a new value)")
    return problems


STACKS = [(app, stack) for app in sorted(p.parent.name for p in (REPO / "examples").glob("*/catalog.yaml"))
          for stack in ("staging", "production")]


def made_once(run: dict[str, Any]) -> set[str]:
    """Catalog secret components whose value the first-value function makes once (the `first-value` tag)."""
    return {r["name"].removesuffix("-secret") for r in _by_urn(run, SECRET).values()
            if r["inputs"]["tags"].get("first-value") == "function"}


@pytest.mark.parametrize(("app", "stack"), STACKS)
def test_the_first_up_after_upgrading_writes_no_value_and_drops_the_server_passwords(
    upgrade: dict[tuple[str, str], tuple[dict, dict]], app: str, stack: str,
) -> None:
    if (app, stack) not in upgrade:
        pytest.skip(f"{app} is not an example of the baseline")
    before, after = upgrade[app, stack]
    # A generated secret no function rotates had its value written by the program, and has it in AWS: the
    # program registers no version for it now. Its old version leaves the state; the provider's delete keeps
    # AWSCURRENT on it (pulumi-aws 7.51.1 SecretVersion: "If the AWSCURRENT staging label is present on this
    # version during resource deletion, that label cannot be removed and will be skipped"), so the secret keeps
    # its value, and the first-value function, invoked once, finds it and writes nothing
    # (tests/rotation/test_rotation_one_shot.py, and test_the_upgrades_invocations_write_nothing below).
    once = made_once(after)
    old_versions = {r["name"]: r for r in _by_urn(before, VERSION).values()}
    assert value_writes(before, after) == [f"version {c}-value deleted" for c in sorted(once)]
    # Its old version holds AWSCURRENT: named, or by default (PutSecretValue without VersionStages labels the
    # new version AWSCURRENT: botocore secretsmanager model, PutSecretValue `VersionStages`).
    assert all("AWSCURRENT" in old_versions[f"{c}-value"]["inputs"].get("versionStages", ["AWSCURRENT"])
               for c in once)
    assert not [r["name"] for r in _by_urn(after, VERSION).values() if r["name"].removesuffix("-value") in once]

    # Catalog secret components (`<stack name>-<secret>`) of the server credentials: their secret, their
    # first version (`-value`) and, before, their generated password (`-password`).
    credentials = {r["name"].removesuffix("-secret") for r in _by_urn(before, SECRET).values()
                   if r["inputs"]["tags"].get("rotation-strategy") in SERVER_STRATEGIES}
    old_random = {r["name"] for r in before["resources"] if r["type"].startswith("random:")}
    new_random = {r["name"] for r in after["resources"] if r["type"].startswith("random:")}
    once_values = {r["name"] for r in before["resources"] if r["type"].startswith("random:")
                   and any(r["name"].startswith(f"{c}-") for c in once)}
    assert old_random - new_random == {f"{c}-password" for c in credentials} | once_values, \
        "exactly the server passwords and the values made once in AWS leave"
    assert len(once_values) >= len(once)
    versions = {r["name"]: r for r in _by_urn(after, VERSION).values()}
    for component in credentials:
        old, new = old_versions[f"{component}-value"], versions[f"{component}-value"]
        # The input lost the password, a change the engine ignores: the state keeps the old first value,
        # which the immediate rotation replaced and no server ever accepted
        # (tests/rotation/test_rotation_first_install.py).
        # (and the labels, set once at creation: a change would move AWSCURRENT back to this version).
        assert new["ignore_changes"] == ["secretString", "versionStages"], component
        assert "password" in json.loads(old["inputs"]["secretString"]["value"]), component
        assert "password" not in json.loads(new["inputs"]["secretString"]["value"]), component


def test_the_check_catches_a_version_that_would_be_written(upgrade: dict[tuple[str, str], tuple[dict, dict]]) -> None:
    """Without `ignore_changes`, the credentials' versions would be updated: the check sees it."""
    before, after = upgrade["fieldkit", "staging"]
    stripped = {**after, "resources": [{**r, "ignore_changes": []} if r["type"] == VERSION else r
                                       for r in after["resources"]]}
    writes = value_writes(before, stripped)
    # The credential's first version would take a new value, and every version the program's own label with
    # AWSCURRENT again (a put-back once a rotation has moved AWSCURRENT away).
    assert "version fieldkit-staging-database-value updated (secretString, versionStages)" in writes
    assert writes and all(w.endswith("(versionStages)") or w.endswith("(secretString, versionStages)")
                          for w in writes), writes


TOKEN_CATALOG = """\
app: shop
owner: platform
secrets:
  session-key:
    description: Signs sessions
    class: critical
    rotation: {{strategy: token, every_days: 90{first_value}}}
    consumers: [api]
    value: {{env: SESSION_KEY, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}
"""


def _records(report: Any) -> dict[str, Any]:
    return {"resources": [{"urn": r.urn, "type": r.type, "name": r.name, "inputs": r.inputs,
                           "ignore_changes": list(r.ignore_changes)} for r in report.run.resources]}


def test_switching_a_deployed_token_to_first_value_rotation_rotates_nothing(make_project: Any) -> None:
    """The version leaves the program (its deletion keeps AWSCURRENT: pulumi-aws SecretVersion, "If the
    AWSCURRENT staging label is present on this version during resource deletion, that label cannot be
    removed"), and the schedule keeps the RotateImmediately it was created with: no rotation at once."""
    from tests.conftest import MINIMAL_STACK, run_stack

    project = make_project(TOKEN_CATALOG.format(first_value=""), MINIMAL_STACK)
    before = _records(run_stack("staging", project))
    (project / "catalog.yaml").write_text(TOKEN_CATALOG.format(first_value=", first_value: rotation"))
    after = _records(run_stack("staging", project))
    (schedule,) = [r for r in after["resources"] if r["type"] == ROTATION]
    assert schedule["inputs"]["rotateImmediately"] is True, "a new stack's first rotation makes the value"
    assert value_writes(before, after) == ["version shop-staging-session-key-value deleted"]


def test_the_upgrades_invocations_write_nothing(upgrade: dict[tuple[str, str], tuple[dict, dict]]) -> None:
    """The first `pulumi up` after upgrading creates the Invocations; each runs the function with the input the
    program declares and the targets its Function declares, against a secret that has the value the program
    wrote before (moto server on 127.0.0.1): nothing is written, the value and its versions stay."""
    from rotation.first_value import load_targets, make_first_value
    from tests.servers import moto_keeps_version_values, moto_server

    checked = 0
    with moto_server() as server, moto_keeps_version_values():
        sm = server.client("secretsmanager")
        for _, after in sorted(upgrade.values(), key=lambda pair: pair[1]["app"] + pair[1]["stack"]):
            functions = [r for r in after["resources"] if r["type"] == "aws:lambda/function:Function"
                         and r["name"].endswith("-first-value-function")]
            invocations = [r for r in after["resources"] if r["type"] == "aws:lambda/invocation:Invocation"]
            if not invocations:
                continue
            (function,) = functions
            targets = load_targets(function["inputs"]["environment"]["variables"])
            for invocation in invocations:
                event = json.loads(invocation["inputs"]["input"])
                existing = secrets.token_hex(32)  # the value the program's old version holds
                sm.create_secret(Name=event["FirstValue"], SecretString=existing)
                versions = sm.describe_secret(SecretId=event["FirstValue"])["VersionIdsToStages"]
                assert make_first_value(event, sm, targets) == {"secret": event["FirstValue"], "written": False}
                assert sm.describe_secret(SecretId=event["FirstValue"])["VersionIdsToStages"] == versions
                assert sm.get_secret_value(SecretId=event["FirstValue"])["SecretString"] == existing
                checked += 1
    assert checked >= 2, "relaybox and tria-aibpo have generated secrets no function rotates"
