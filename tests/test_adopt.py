"""Adopting existing secrets (`secrets-platform:adopt`): the import, its checks, the pack, the follow-up step."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from components.errors import ConfigurationError
from preview.cli import Report, preview, to_json
from preview.cli import main as preview_main
from preview.model import CollectedResource
from tests.conftest import MINIMAL_STACK, run_stack

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
ARN = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/staging/api-token-Ab12Cd"
KEY = "arn:aws:kms:eu-west-1:210987654321:key/0b7c8f6e-3a1d-4e2b-9c5f-6d7e8f9a0b1c"

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
  session:
    description: Signs sessions
    class: critical
    rotation: {strategy: token, every_days: 90}
    consumers: [api]
    value: {env: SESSION_SECRET, generate: {kind: bytes, bytes: 32, encoding: hex}}
"""


def adopt(entry: str = "", *, name: str = "api-token", env: str = "staging") -> str:
    return MINIMAL_STACK + f"""\
  secrets-platform:adopt:
    {name}:
      arn: {ARN.replace("/staging/api-token", f"/{env}/{name}")}
      name: shop/{env}/{name}
      description: the partner token, set by hand
      kmsKeyId: {KEY}
      tags: {{team: web}}
""" + entry


def _secret(report: Report, name: str = "shop-staging-api-token-secret") -> CollectedResource:
    return next(r for r in report.run.resources if r.type == SECRET and r.name == name)


def test_an_adopted_secret_is_imported_as_it_is(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, adopt())
    report = preview("staging", project)
    secret = _secret(report)
    assert secret.import_id == ARN
    assert secret.inputs == {"name": "shop/staging/api-token", "description": "the partner token, set by hand",
                             "kmsKeyId": KEY, "tags": {"team": "web"}}
    assert set(secret.ignore_changes) == {"recoveryWindowInDays", "forceOverwriteReplicaSecret"}
    children = [r for r in report.run.resources if r.parent == secret.parent and r.custom]
    assert [r.type for r in children] == [SECRET]  # no value written, no resource policy added
    # A child of its catalog secret's component (its URN, which `pulumi up --replace` takes, says so), which
    # records the adoption in the state.
    component = next(r for r in report.run.resources if r.urn == secret.parent)
    assert (component.type, component.name) == ("secrets-platform:index:CatalogSecret", "shop-staging-api-token")
    assert report.run.component_outputs[component.urn] == {"arn": ARN, "name": "shop/staging/api-token", "adopted": ARN}
    assert secret.protect is False and secret.retain_on_delete is False, "staging does not protect its secrets"
    # Its value stays in AWS: nothing to set for it.
    assert [g["secret"] for g in report.run.outputs["actionRequired"]] == []
    assert report.run.outputs["secretArns"]["api-token"] == ARN
    assert report.run.outputs["envVars"]["API_TOKEN"] == "shop/staging/api-token"
    # The secret the stack creates is unchanged by the adoption of another.
    session = _secret(report, "shop-staging-session-secret")
    assert session.import_id == "" and session.inputs["name"] == "shop/staging/session"
    document = to_json(report)
    imported = [r for r in document["resources"] if r.get("import")]
    assert [r["import"] for r in imported] == [ARN]


def test_an_adopted_secret_is_protected_like_the_stack_s_own(make_project: Callable[..., Path]) -> None:
    """With protectSecrets (production), `pulumi destroy` can neither delete an adopted secret nor, once it
    is unprotected, take it from AWS (retain_on_delete): it existed before the stack."""
    report = run_stack("staging", make_project(CATALOG, adopt("  secrets-platform:protectSecrets: true\n")))
    secret = _secret(report)
    assert secret.import_id == ARN and secret.protect is True and secret.retain_on_delete is True


def test_the_preview_marks_the_import(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, adopt())
    out = io.StringIO()
    assert preview_main(["staging", "--project-dir", str(project)], out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    assert "= aws:secretsmanager/secret:Secret  shop-staging-api-token-secret  name=shop/staging/api-token" in text
    assert f"import {ARN}" in text
    assert "to create, 1 to import (existing, unchanged)" in text


def test_pack_findings_on_an_adopted_secret_are_the_follow_up(make_project: Callable[..., Path]) -> None:
    stack = adopt(env="production").replace(
        'recoveryWindowDays: 7', 'recoveryWindowDays: 30\n  secrets-platform:protectSecrets: true')
    stack += "  secrets-platform:consumption: {api: {kind: runtime, cacheTtlSeconds: 0}}\n"  # production refuses none
    project = make_project(CATALOG, stack, stack="production")
    report = preview("production", project)
    # Stack rules report per stack (no URN): their message starts with the resource's name.
    on_adopted = [v for v in report.violations if v.urn.endswith("shop-production-api-token-secret")
                  or v.message.startswith("shop-production-api-token-secret:")]
    policies = {v.policy for v in on_adopted}
    assert {"secret-required-tags", "secret-uses-environment-key"} <= policies
    assert all(v.suppressed and "adopted existing secret" in v.reason and "follow-up step" in v.reason
               for v in on_adopted)
    assert not report.mandatory  # the import itself may go ahead


def test_the_follow_up_step_declares_it_the_platform_way(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, adopt("      imported: true\n"))
    report = preview("staging", project)
    secret = _secret(report)
    assert secret.import_id == ""
    assert secret.inputs["name"] == "shop/staging/api-token"  # a rename would replace it: new ARN
    assert secret.inputs["kmsKeyId"] != KEY and "environment" in secret.inputs["tags"]
    assert secret.inputs["recoveryWindowInDays"] == 7 and secret.ignore_changes == ()
    children = {r.type for r in report.run.resources if r.parent == secret.parent and r.custom}
    assert children == {SECRET, POLICY}  # the resource policy comes now; still no version: the value stays
    on_it = [v for v in report.violations if v.urn.endswith("shop-staging-api-token-secret")]
    assert [v.policy for v in on_it if not v.suppressed] == []


@pytest.mark.parametrize(("entry", "field", "message"), [
    ("arn: legacy/api-token", "arn", "must be the existing secret's full ARN"),
    (f"arn: {ARN.replace('210987654321', '111111111111')}", "arn",
     "the secret is in account 111111111111, not this stack's 210987654321"),
    (f"arn: {ARN.replace('eu-west-1', 'eu-west-2')}", "arn", "the secret is in eu-west-2, not this stack's region"),
    (f"arn: {ARN}\n      name: shop/staging/other", "name", "'shop/staging/other' is not the name in the ARN"),
    (f"arn: {ARN}\n      name: shop/staging/api-token\n      kmsKey: x", "kmsKey", "unknown field"),
    (f"arn: {ARN}\n      name: shop/staging/api-token\n      imported: yes please", "imported", "must be true"),
    (f"arn: {ARN}\n      name: shop/staging/api-token\n      tags: [a]", "tags", "must map tag names"),
    (f"arn: {ARN}\n      name: shop/staging/api-token\n      tags: {{'aws:cloudformation:stack-name': s}}", "tags",
     "leave out tags starting with 'aws:'"),
])
def test_bad_adoption_is_one_line_before_any_resource(entry: str, field: str, message: str,
                                                      make_project: Callable[..., Path]) -> None:
    stack = MINIMAL_STACK + f"  secrets-platform:adopt:\n    api-token:\n      {entry}\n"
    project = make_project(CATALOG, stack)
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", project)
    assert caught.value.field == f"secrets-platform:adopt.api-token.{field}"
    assert message in caught.value.reason and caught.value.secret == "api-token"
    assert caught.value.registered == 0
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "message"), [
    ("unknown", "'unknown' is not a catalog secret of environment staging"),
    ("session", "an adopted secret keeps its value at the import; turn its rotation on in the follow-up step"),
])
def test_adoption_the_program_refuses(name: str, message: str, make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, adopt(name=name))
    err = io.StringIO()
    assert preview_main(["staging", "--project-dir", str(project)], out=io.StringIO(), err=err) == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


def test_the_same_secret_adopted_twice(make_project: Callable[..., Path]) -> None:
    stack = adopt() + f"""\
    session:
      arn: {ARN}
      name: shop/staging/api-token
"""
    with pytest.raises(ConfigurationError, match="already adopted by 'api-token'"):
        run_stack("staging", make_project(CATALOG, stack))


def test_the_adopt_key_is_plain_config(make_project: Callable[..., Path]) -> None:
    """`adopt` is a setting: it appears in names and ARNs, so it is refused when set with --secret."""
    stack = MINIMAL_STACK + "  secrets-platform:adopt:\n    secure: v1:" + "A" * 44 + "\n"
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(CATALOG, stack))
    assert caught.value.field == "secrets-platform:adopt"
    assert json.dumps(str(caught.value)).count("\\n") == 0


SAME_NAME_ARN = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/staging/session-Zy98Xw"


def test_rotation_turned_on_in_the_follow_up_step(make_project: Callable[..., Path]) -> None:
    stack = MINIMAL_STACK + f"""\
  secrets-platform:adopt:
    session:
      arn: {SAME_NAME_ARN}
      name: shop/staging/session
      imported: true
"""
    report = preview("staging", make_project(CATALOG, stack))
    rotations = [r for r in report.run.resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"]
    assert len(rotations) == 1
    # The value it has is rotated on the schedule; nothing writes a first value over it.
    assert rotations[0].inputs["rotateImmediately"] is False
    assert not [r for r in report.run.resources if r.type == VERSION and "session" in r.name]
    assert not [v for v in report.violations if v.policy == "rotation-has-first-value"]
    # Before the import, the same rotation is refused: the first `pulumi up` must change nothing.
    with pytest.raises(ConfigurationError, match="turn its rotation on in the follow-up step"):
        run_stack("staging", make_project(CATALOG, stack.replace("      imported: true\n", "")))


def test_a_renamed_secret_cannot_rotate(make_project: Callable[..., Path]) -> None:
    stack = MINIMAL_STACK + f"""\
  secrets-platform:adopt:
    session:
      arn: {ARN.replace("api-token", "session-old")}
      name: shop/staging/session-old
      imported: true
"""
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(CATALOG, stack))
    assert caught.value.field == "secrets-platform:adopt.session.name"
    assert "must be named shop/staging/session" in caught.value.reason


def test_existing_replicas_are_declared_as_they_are(make_project: Callable[..., Path]) -> None:
    replica_key = "arn:aws:kms:eu-central-1:210987654321:key/1b7c8f6e-3a1d-4e2b-9c5f-6d7e8f9a0b1c"
    stack = adopt(f"      replicas: [{{region: eu-central-1, kmsKeyId: '{replica_key}'}}, {{region: us-east-1}}]\n")
    secret = _secret(preview("staging", make_project(CATALOG, stack), policies=False))
    assert secret.inputs["replicas"] == [{"region": "eu-central-1", "kmsKeyId": replica_key}, {"region": "us-east-1"}]


DATABASE_CATALOG = """\
app: shop
owner: web
secrets:
  database:
    description: The app's database user, installed by the rotation function
    class: critical
    rotation: {strategy: postgres-single-user, every_days: 90, master: database-admin}
    consumers: [api]
    keys:
      username: {env: DB_USER, config: {default: shop_app}}
      password: {env: DB_PASSWORD, generate: {kind: password, length: 48, alphabet: alphanumeric}}
      host: {env: DB_HOST, config: {default: db.internal}}
      port: {env: DB_PORT, config: {default: "5432"}, type: integer}
      dbname: {env: DB_NAME, config: {default: shop}}
      engine: {config: {default: postgres}}
  database-admin:
    description: The RDS master user, created by hand before the platform
    class: critical
    rotation: on-compromise
    rotation_reason: the RDS master user - rotated with the instance by the data team
    keys:
      username: {config: {default: postgres}}
      password: {external: {}}
"""
ADMIN_ARN = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/staging/database-admin-Ab12Cd"


def _adopted_admin(name: str = "shop/staging/database-admin", arn: str = ADMIN_ARN, imported: bool = False) -> str:
    return MINIMAL_STACK + f"""\
  secrets-platform:rotationSubnetIds: [subnet-0a1b2c3d4e5f60718]
  secrets-platform:rotationSecurityGroupIds: [sg-0a1b2c3d4e5f60718]
  secrets-platform:adopt:
    database-admin:
      arn: {arn}
      name: {name}
""" + ("      imported: true\n" if imported else "")


def test_a_credential_whose_admin_is_adopted_is_installed_after_the_follow_up_step(
        make_project: Callable[..., Path]) -> None:
    """The adopted admin secret holds its value in AWS, so nothing is to be set for it; its credential is
    installed once the follow-up step has put it on the environment's key (which the rotation role may use)."""
    during = run_stack("staging", make_project(DATABASE_CATALOG, _adopted_admin()))
    assert not [r for r in during.run.resources if r.type in (VERSION, ROTATION)]
    (install,) = during.run.outputs["firstInstalls"]
    assert (install["secret"], install["status"]) == ("database", "waits-for-master")
    assert install["action"].startswith("finish adopting database-admin (the follow-up step: `imported: true` in "
                                        "secrets-platform:adopt")
    after = run_stack("staging", make_project(DATABASE_CATALOG, _adopted_admin(imported=True)))
    (version,) = [r for r in after.run.resources if r.type == VERSION]
    assert version.name == "shop-staging-database-value"
    (schedule,) = [r for r in after.run.resources if r.type == ROTATION]
    assert schedule.inputs["rotateImmediately"] is True
    admin = _secret(after, "shop-staging-database-admin-secret")
    assert {version.urn, admin.urn} <= set(schedule.dependencies), "the first rotation waits for both"
    assert [(i["secret"], i["status"]) for i in after.run.outputs["firstInstalls"]] == [("database", "at-deploy")]
    # The rotation role reads the adopted admin secret by its name (grants.rotation_statements), as the
    # access matrix evaluates the program's policies.
    from preview.access_matrix import matrix

    reads = {(d.principal.rsplit("/", 1)[1], d.secret): d.decision for d in matrix(
        after.run.resources, account_id="210987654321", region="eu-west-1") if d.operation == "read"}
    assert reads[("shop-staging-rotate-postgres-single-user", "shop/staging/database-admin")] == "Allowed"


def test_an_adopted_admin_credential_must_have_the_name_the_rotation_policy_reads(
        make_project: Callable[..., Path]) -> None:
    legacy = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/staging/rds-admin-Zy98Xw"
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(DATABASE_CATALOG, _adopted_admin("shop/staging/rds-admin", legacy)))
    assert caught.value.field == "secrets-platform:adopt.database-admin.name"
    assert caught.value.reason.startswith("the admin credential of 'database' must be named "
                                          "shop/staging/database-admin (the rotation policy reads it by that name)")
    assert caught.value.registered == 0


# The adoption follow-up across its steps: replicas, tags, the resource policy -----------------------------

REPLICA_KEY = "arn:aws:kms:eu-central-1:210987654321:key/1b7c8f6e-3a1d-4e2b-9c5f-6d7e8f9a0b1c"
US_KEY = "arn:aws:kms:us-east-1:210987654321:key/2b7c8f6e-3a1d-4e2b-9c5f-6d7e8f9a0b1c"
REPLICAS = (f"      replicas: [{{region: eu-central-1, kmsKeyId: '{REPLICA_KEY}'}}, "
            f"{{region: us-east-1, kmsKeyId: '{US_KEY}'}}]\n")


def replica_set_diff(before: list[dict[str, str]], after: list[dict[str, str]]) -> tuple[set[tuple[str, str]],
                                                                                          set[tuple[str, str]]]:
    """(removed, added) as the provider computes them: the `replica` attribute is a set whose hash is the KMS key
    and the region together (hashicorp/terraform-provider-aws internal/service/secretsmanager/secret.go, the
    `replica` schema's `Set` function), and resourceSecretUpdate calls RemoveRegionsFromReplication for
    old.Difference(new) before ReplicateSecretToRegions for new.Difference(old)."""
    old = {(r.get("kmsKeyId", ""), r["region"]) for r in before}
    new = {(r.get("kmsKeyId", ""), r["region"]) for r in after}
    return old - new, new - old


def _with_replica_region(stack: str) -> str:
    return stack.replace("  secrets-platform:recoveryWindowDays: 7\n", "  secrets-platform:recoveryWindowDays: 7\n"
                         "  secrets-platform:replicaRegions: [eu-central-1]\n")


def test_the_follow_up_keeps_the_adopted_replicas_and_rekeying_is_a_step_of_its_own(
        make_project: Callable[..., Path]) -> None:
    """In production CI is denied RemoveRegionsFromReplication (components/grants.py): a follow-up that moved a
    replica to the environment's key would fail there, and elsewhere leave the region without the secret."""
    steps = [adopt(REPLICAS), adopt(REPLICAS + "      imported: true\n"),
             adopt(REPLICAS + "      imported: true\n      rekeyReplicas: true\n")]
    inputs = [_secret(preview("staging", make_project(CATALOG, _with_replica_region(s)), policies=False))
              .inputs["replicas"] for s in steps]
    import_step, follow_up, rekey = inputs
    assert import_step == [{"region": "eu-central-1", "kmsKeyId": REPLICA_KEY},
                           {"region": "us-east-1", "kmsKeyId": US_KEY}]
    removed, added = replica_set_diff(import_step, follow_up)
    assert removed == set() and added == set(), "the follow-up changes no replica"
    removed, added = replica_set_diff(follow_up, rekey)
    assert removed == {(REPLICA_KEY, "eu-central-1"), (US_KEY, "us-east-1")}, "rekeying removes each replica"
    assert [r["region"] for r in rekey] == ["eu-central-1"] and rekey[0]["kmsKeyId"] != REPLICA_KEY
    assert {r for _, r in added} == {"eu-central-1"}


def test_a_new_replica_region_is_added_beside_the_kept_ones(make_project: Callable[..., Path]) -> None:
    only_us = f"      replicas: [{{region: us-east-1, kmsKeyId: '{US_KEY}'}}]\n      imported: true\n"
    before = _secret(preview("staging", make_project(CATALOG, _with_replica_region(adopt(only_us.replace(
        "      imported: true\n", "")))), policies=False)).inputs["replicas"]
    after = _secret(preview("staging", make_project(CATALOG, _with_replica_region(adopt(only_us))),
                            policies=False)).inputs["replicas"]
    removed, added = replica_set_diff(before, after)
    assert removed == set() and {r for _, r in added} == {"eu-central-1"}


POLICY_TEXT = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "BatchReads", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:role/batch"},
    "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})


def _quoted(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def test_the_follow_up_keeps_the_team_s_tags_and_the_existing_policy(make_project: Callable[..., Path]) -> None:
    """PutResourcePolicy replaces the whole document and the provider untags what the declaration leaves out:
    the follow-up keeps both, and says so (a warning the engine shows, and the component's outputs)."""
    entry = (f"      resourcePolicy: {_quoted(POLICY_TEXT)}\n      imported: true\n")
    stack = adopt(entry).replace("tags: {team: web}", "tags: {team: web, cost-centre: '42', owner: someone}")
    report = preview("staging", make_project(CATALOG, stack))
    secret = _secret(report)
    tags = secret.inputs["tags"]
    assert (tags["team"], tags["cost-centre"], tags["owner"]) == ("web", "42", "web")  # owner: the platform's
    policy = next(r for r in report.run.resources if r.type == POLICY and r.parent == secret.parent)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyOutsideAccount", "BatchReads"]
    assert statements[1] == json.loads(POLICY_TEXT)["Statement"][0], "kept as it is"
    assert secret.parent is not None
    outputs = report.run.component_outputs[secret.parent]
    assert (outputs["keptTags"], outputs["replacedTags"]) == (["cost-centre", "team"], ["owner"])
    assert outputs["policyStatements"] == ["DenyOutsideAccount", "BatchReads"]
    (warning,) = [w for w in report.run.warnings if "adopted shop/staging/api-token" in w]
    assert "keeps its tags cost-centre, team, replaces owner" in warning and "DenyOutsideAccount, BatchReads" in warning
    # Without a recorded policy: the platform's statement alone, and the tags kept all the same.
    plain_report = preview("staging", make_project(CATALOG, adopt("      imported: true\n")), policies=False)
    plain_secret = _secret(plain_report)
    assert plain_secret.inputs["tags"]["team"] == "web"
    plain_policy = next(r for r in plain_report.run.resources if r.type == POLICY and r.parent == plain_secret.parent)
    assert [s["Sid"] for s in json.loads(plain_policy.inputs["policy"])["Statement"]] == ["DenyOutsideAccount"]


def _policy(statement: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


ALLOW = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}


@pytest.mark.parametrize(("policy", "message"), [
    ("{not json", "is not JSON text"),
    ('{"Version": "2012-10-17"}', "must be a policy document with a Statement"),
    ("[]", "must be a policy document with a Statement"),
    (_policy({**ALLOW, "Sid": "x" * 21_000}), "21,"),
    (_policy({**ALLOW, "Sid": "DenyOutsideAccount", "Principal": {"AWS": "210987654321"}}),
     "has the Sid 'DenyOutsideAccount' of the platform's own statement"),
    (_policy({**ALLOW, "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]}}),
     "allows 111122223333, outside account 210987654321"),
    (_policy({**ALLOW, "Principal": "*"}), "allows *, outside account 210987654321"),
    (_policy({**ALLOW, "NotPrincipal": {"AWS": "arn:aws:iam::210987654321:root"}}), "uses NotPrincipal"),
    (_policy({**ALLOW, "Principal": {"AWS": "210987654321"}, "Sid": "y" * 20_300}), "merged with the platform's"),
])
def test_an_existing_policy_that_cannot_be_kept_is_refused(policy: str, message: str,
                                                          make_project: Callable[..., Path]) -> None:
    stack = adopt(f"      resourcePolicy: {_quoted(policy)}\n")
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(CATALOG, stack))
    assert caught.value.field == "secrets-platform:adopt.api-token.resourcePolicy"
    assert message in caught.value.reason and caught.value.registered == 0


def test_a_resource_policy_that_is_not_text_is_refused(make_project: Callable[..., Path]) -> None:
    stack = adopt("      resourcePolicy: {Statement: []}\n")
    with pytest.raises(ConfigurationError, match="as JSON text"):
        run_stack("staging", make_project(CATALOG, stack))


# Hostile adopt entries: one environment's file reaching another --------------------------------------------

def _entry(name: str, extra: str = "", secret: str = "api-token") -> str:  # noqa: S107 (a catalog name)
    arn = f"arn:aws:secretsmanager:eu-west-1:210987654321:secret:{name}-Ab12Cd"
    return MINIMAL_STACK + f"  secrets-platform:adopt:\n    {secret}:\n      arn: {_quoted(arn)}\n" \
        f"      name: {_quoted(name)}\n" + extra


HOSTILE = [
    (_entry("billing/staging/api-token"), "name", "'billing/staging/api-token' is not a secret of shop/staging/"),
    (_entry("shop/production/api-token"), "name", "'shop/production/api-token' is not a secret of shop/staging/"),
    (_entry("api-token"), "name", "'api-token' is not a secret of shop/staging/"),
    (_entry("shop/staging/session"), "name", "is also the name of this stack's secret 'session'"),
    (_entry("shop/staging/api-token\nx"), "arn", "must be the existing secret's full ARN"),
    (_entry("shop/staging/api-token", "      replicas: [{region: eu-wst-1}]\n"), "replicas",
     "'eu-wst-1' is not a region of the aws partition where Secrets Manager runs (did you mean eu-west-1?)"),
    (_entry("shop/staging/api-token", "      replicas: [{region: eu-west-1}]\n"), "replicas",
     "lists the secret's own region eu-west-1"),
    (_entry("shop/staging/api-token", "      replicas: [{region: us-east-1}, {region: us-east-1}]\n"), "replicas",
     "lists us-east-1 twice"),
    (_entry("shop/staging/api-token", f"      replicas: [{{region: us-east-1, kmsKeyId: '{REPLICA_KEY}'}}]\n"),
     "replicas", "the replica in us-east-1 names a key in eu-central-1"),
    (_entry("shop/staging/api-token", "      rekeyReplicas: true\n"), "rekeyReplicas",
     "must be true (after the follow-up"),
    (_entry("shop/staging/api-token", "      imported: true\n      rekeyReplicas: true\n"), "rekeyReplicas",
     "the secret has no replicas"),
]


@pytest.mark.parametrize(("stack", "field", "message"), HOSTILE)
def test_a_hostile_adopt_entry_is_refused_by_the_program(stack: str, field: str, message: str,
                                                         make_project: Callable[..., Path]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(CATALOG, stack))
    assert caught.value.field == f"secrets-platform:adopt.api-token.{field}"
    assert message in caught.value.reason and caught.value.registered == 0
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("stack", "field", "message"), HOSTILE)
def test_a_hostile_adopt_entry_is_refused_by_ops(stack: str, field: str, message: str,
                                                 make_project: Callable[..., Path]) -> None:
    """`ops rollback api-token --stack staging` would act on the name the entry gives: ops refuses the entry with
    the program's own check (components/adopt.py load_adoptions) before any AWS call."""
    from ops.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["rollback", "api-token", "--stack", "staging", "--project-dir",
                 str(make_project(CATALOG, stack))], out=out, err=err, stdin=io.StringIO(""))
    assert code == 2 and out.getvalue() == ""
    assert f"field 'secrets-platform:adopt.api-token.{field}'" in err.getvalue() and message in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_a_stack_wide_tag_replaces_the_team_s_and_the_preview_says_so(make_project: Callable[..., Path]) -> None:
    stack = adopt(REPLICAS + "      imported: true\n").replace("tags: {team: web}",
                                                              "tags: {team: web, cost-centre: '42'}")
    stack = _with_replica_region(stack) + "  secrets-platform:tags: {cost-centre: '7'}\n"
    report = preview("staging", make_project(CATALOG, stack), policies=False)
    secret = _secret(report)
    assert (secret.inputs["tags"]["cost-centre"], secret.inputs["tags"]["team"]) == ("7", "web")
    assert secret.parent is not None
    outputs = report.run.component_outputs[secret.parent]
    assert (outputs["keptTags"], outputs["replacedTags"]) == (["team"], ["cost-centre"])
    (warning,) = [w for w in report.run.warnings if "adopted shop/staging/api-token" in w]
    assert "replicas eu-central-1, us-east-1 keep their keys (rekeyReplicas moves them)" in warning
    assert "(no existing policy recorded)" in warning
