"""The real program under the mock runtime, for both stacks: rules about what it declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.catalog import Rotation, load_catalog
from preview.cli import to_json
from preview.model import CollectedResource, plain
from tests.conftest import REPO, run_stack

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"

CATALOG = load_catalog(REPO / "catalog.yaml")


@pytest.fixture(scope="module", params=["staging", "production"])
def report(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return run_stack(request.param)


def of_type(resources: list[CollectedResource], token: str) -> list[CollectedResource]:
    return [r for r in resources if r.type == token]


def test_every_catalog_secret_is_declared_once_with_the_stack_prefix(report) -> None:  # type: ignore[no-untyped-def]
    env = report.run.stack.stack
    names = sorted(r.inputs["name"] for r in of_type(report.run.resources, SECRET))
    assert names == sorted(f"filot/{env}/{name}" for name in CATALOG.for_environment(env))


def test_every_secret_uses_this_stacks_primary_key(report) -> None:  # type: ignore[no-untyped-def]
    resources = report.run.resources
    region = report.run.stack.values["aws:region"]
    primary = [k for k in of_type(resources, KEY) if "region" not in k.inputs]
    assert len(primary) == 1, "exactly one primary key per stack"
    key_urn = primary[0].urn
    for secret in of_type(resources, SECRET):
        assert secret.property_dependencies.get("kmsKeyId") == (key_urn,), secret.urn
        assert re.fullmatch(rf"arn:aws:kms:{region}:123456789012:key/[0-9a-f-]{{36}}", secret.inputs["kmsKeyId"])


def test_secrets_carry_the_required_tags(report) -> None:  # type: ignore[no-untyped-def]
    env = report.run.stack.stack
    for secret in of_type(report.run.resources, SECRET):
        tags = secret.inputs["tags"]
        name = secret.inputs["name"].split("/")[-1]
        entry = CATALOG.secrets[name]
        assert tags["app"] == "filot" and tags["environment"] == env, secret.urn
        assert tags["class"] == entry.class_, secret.urn
        assert tags["owner"] == CATALOG.owner_of(entry), secret.urn
        assert tags["rotation"] == entry.rotation_tag, secret.urn
        assert secret.inputs.get("description"), secret.urn


def test_key_has_rotation_an_alias_and_a_policy_scoped_to_secrets_manager(report) -> None:  # type: ignore[no-untyped-def]
    resources = report.run.resources
    region = report.run.stack.values["aws:region"]
    for key in of_type(resources, KEY):
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs.get("bypassPolicyLockoutSafetyCheck") is not True
        policy = json.loads(key.inputs["policy"])
        key_region = key.inputs.get("region", region)
        use = [s for s in policy["Statement"] if "kms:Decrypt" in s["Action"]]
        assert {s["Sid"] for s in use} == {"StoreOnlyThroughSecretsManager", "ReadOnlyThroughSecretsManager"}
        for statement in use:
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == (
                f"secretsmanager.{key_region}.amazonaws.com"), key.urn
        readers = next(s for s in use if s["Sid"] == "ReadOnlyThroughSecretsManager")
        assert sorted(readers["Action"]) == ["kms:Decrypt", "kms:DescribeKey"], "readers only decrypt"
        reader_roles = readers["Principal"]["AWS"]
        assert "arn:aws:iam::123456789012:role/filot-" + report.run.stack.stack + "-app" in reader_roles
        assert all(s["Principal"] != "*" and s["Principal"].get("AWS") != "*" for s in policy["Statement"])
        admin = next(s for s in policy["Statement"] if s["Sid"] == "AccountAdministersKey")
        assert "kms:Decrypt" not in admin["Action"], "administrators must not be able to decrypt"
        assert not any(a in ("kms:Create*", "kms:CreateGrant") for a in admin["Action"]), "no grants"
    aliases = [a.inputs["name"] for a in of_type(resources, ALIAS)]
    assert f"alias/filot/{report.run.stack.stack}/secrets" in aliases


def test_production_is_protected_and_staging_is_not(report) -> None:  # type: ignore[no-untyped-def]
    production = report.run.stack.stack == "production"
    for secret in of_type(report.run.resources, SECRET):
        assert secret.protect is production, secret.urn
        assert secret.retain_on_delete is production, secret.urn
        assert secret.inputs["recoveryWindowInDays"] == (30 if production else 7), secret.urn


def test_versions_hold_generated_values_and_rotated_ones_ignore_changes(report) -> None:  # type: ignore[no-untyped-def]
    resources = report.run.resources
    by_urn = {r.urn: r for r in resources}
    for version in of_type(resources, VERSION):
        parent = by_urn[version.parent] if version.parent else None
        assert parent is not None and parent.type == "secrets-platform:index:CatalogSecret"
        name = parent.name.removeprefix(f"filot-{report.run.stack.stack}-")
        entry = CATALOG.secrets[name]
        sources = version.property_dependencies.get("secretString", ())
        assert sources, f"{version.urn}: the value must come from generated or config values"
        # Generated parts, and for a rotated database secret the ARN of its admin secret (masterarn).
        kinds = {by_urn[s].type for s in sources}
        assert any(k.startswith("random:") for k in kinds), version.urn
        assert kinds <= {k for k in kinds if k.startswith("random:")} | {SECRET}, version.urn
        if isinstance(entry.rotation, Rotation) and entry.rotation.master:
            master = f"filot-{report.run.stack.stack}-{entry.rotation.master}-secret"
            assert master in {by_urn[s].name for s in sources}, version.urn
        # A rotation function or the application itself (`rotation: application`) renews the value.
        renewed = isinstance(entry.rotation, Rotation) or entry.rotation == "application"
        assert ("secretString" in version.ignore_changes) is renewed, version.urn


def test_no_generated_or_secret_value_is_printed(report) -> None:  # type: ignore[no-untyped-def]
    document = json.dumps(to_json(report))
    assert report.run.generated, "the mocks generated values; the check below would be vacuous otherwise"
    for value in report.run.generated:
        assert value not in document
    for version in of_type(report.run.resources, VERSION):
        secret_string = plain(version.inputs["secretString"])
        assert secret_string not in document
    assert '"secretString": "[secret]"' in document


def test_outputs_name_every_environment_variable(report) -> None:  # type: ignore[no-untyped-def]
    env = report.run.stack.stack
    outputs = report.run.outputs
    expected = {
        var for name, entry in CATALOG.for_environment(env).items()
        for value in entry.values.values() for var in value.env
    }
    assert set(outputs["envVars"]) == expected
    ecs = {e["name"]: e["valueFrom"] for e in outputs["ecsSecrets"]}
    assert set(ecs) == expected
    assert re.fullmatch(
        rf"arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:filot/{env}/redis-\w{{6}}:url::",
        ecs["REDIS_URL"],
    )
    assert re.fullmatch(
        rf"arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:filot/{env}/session-secret-\w{{6}}",
        ecs["SESSION_SECRET"],
    )
    assert set(outputs["secretArns"]) == set(CATALOG.for_environment(env))
    example = outputs["envExample"]
    assert all(f"\n{var}=\n" in example for var in expected)


def test_missing_external_values_are_listed_as_action_required(report) -> None:  # type: ignore[no-untyped-def]
    gaps = {(g["secret"], g["key"]) for g in report.run.outputs["actionRequired"]}
    assert ("database-url", "") in gaps and ("buli2", "apiKey") in gaps
    names = {r.name for r in of_type(report.run.resources, VERSION)}
    assert f"filot-{report.run.stack.stack}-buli2-value" not in names, "no half-filled version"


def test_a_first_value_made_by_rotation_never_enters_state(report) -> None:  # type: ignore[no-untyped-def]
    """service-internal-key: `first_value: rotation`; the program declares the secret and its schedule only."""
    env = report.run.stack.stack
    resources = report.run.resources
    by_urn = {r.urn: r for r in resources}
    firsts = {n for n, e in CATALOG.for_environment(env).items()
              if isinstance(e.rotation, Rotation) and e.rotation.first_value_by_rotation}
    assert firsts == {"service-internal-key"}, "the catalog's example of the feature"
    component = next(r for r in resources if r.name == f"filot-{env}-service-internal-key")
    children = [r for r in resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == [
        SECRET, "aws:secretsmanager/secretPolicy:SecretPolicy"], "no version, no random value"
    secret = next(r for r in children if r.type == SECRET)
    assert secret.inputs["tags"]["first-value"] == "rotation"
    assert "secretString" not in json.dumps(secret.inputs)

    rotations = of_type(resources, "aws:secretsmanager/secretRotation:SecretRotation")
    waiting = {i["secret"] for i in report.run.outputs["firstInstalls"] if i["status"] == "waits-for-master"}
    assert waiting == {"redis"}, "redis-admin's password is not set in the committed stacks"
    assert len(rotations) == sum(isinstance(e.rotation, Rotation) and n not in waiting
                                 for n, e in CATALOG.for_environment(env).items())
    for rotation in rotations:
        (secret_urn,) = rotation.property_dependencies["secretId"]
        immediate = secret_urn == secret.urn
        assert rotation.inputs["rotateImmediately"] is immediate, rotation.urn
        kinds = {by_urn[d].type for d in rotation.dependencies}
        assert "aws:lambda/permission:Permission" in kinds, f"{rotation.urn}: invoked before it may be"
        # Secrets Manager runs testSecret when a waiting schedule is set: the value must exist first.
        assert (VERSION in kinds) is not immediate, rotation.urn
    assert report.run.outputs["envVars"]["SERVICE_INTERNAL_KEY"] == f"filot/{env}/service-internal-key"


def test_the_repository_root_is_the_default_project() -> None:
    assert (REPO / "Pulumi.yaml").is_file() and Path(REPO / "__main__.py").is_file()


def test_the_jwt_key_is_unpadded_url_safe_base64_of_48_bytes(report) -> None:  # type: ignore[no-untyped-def]
    version = next(r for r in of_type(report.run.resources, VERSION) if r.name.endswith("-jwt-secret-value"))
    document = json.loads(plain(version.inputs["secretString"]))
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", document["key"]), "48 random bytes as base64url (RFC 7515)"
    assert document["alg"] == "HS256"
