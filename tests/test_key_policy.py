"""The KMS key policy (components/kms.py), asserted whole: every statement, principal and condition.

Named principals hide a dropped condition from the access simulator (the principal alone already limits
who may call), so the document itself is checked. Condition keys: kms:ViaService and kms:CallerAccount
("AWS KMS condition keys", KMS developer guide: kms:CallerAccount is the account of the caller;
kms:ViaService `secretsmanager.<region>.amazonaws.com` limits use to requests Secrets Manager makes).
"""

from __future__ import annotations

import json
import re

import pytest

from components import iam
from components.kms import (
    KEY_ADMIN_ACTIONS,
    KEY_DECRYPT_ACTIONS,
    KEY_WRITE_ACTIONS,
    EnvironmentKeyArgs,
    key_policy_statements,
)
from tests.conftest import run_stack

ACCOUNT = "210987654321"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-staging-app"
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-staging-worker"
CI_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-staging-ci"
ROTATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-staging-rotator"


def _args(region: str = "eu-west-1") -> EnvironmentKeyArgs:
    return EnvironmentKeyArgs(app="shop", environment="staging", account_id=ACCOUNT, region=region,
                              deletion_window_days=30)


def _via(region: str) -> dict[str, dict[str, str]]:
    return {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}


def _document(readers: list[str], writers: list[str], region: str = "eu-west-1") -> dict:
    text = iam.document(key_policy_statements(_args(region), readers, writers), where="key policy",
                        limit=iam.KEY_POLICY_LIMIT)
    return json.loads(text)


def test_the_whole_key_policy_with_readers_and_writers() -> None:
    document = _document([APP_ROLE, WORKER_ROLE, CI_ROLE], [ROTATOR_ROLE, CI_ROLE, ROTATOR_ROLE])
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": {"AWS": ROOT},
             "Action": sorted(KEY_ADMIN_ACTIONS), "Resource": "*"},
            {"Sid": "StoreOnlyThroughSecretsManager", "Effect": "Allow",
             "Principal": {"AWS": sorted([CI_ROLE, ROTATOR_ROLE])}, "Action": sorted(KEY_WRITE_ACTIONS),
             "Resource": "*", "Condition": _via("eu-west-1")},
            {"Sid": "ReadOnlyThroughSecretsManager", "Effect": "Allow",
             "Principal": {"AWS": sorted([APP_ROLE, WORKER_ROLE])}, "Action": sorted(KEY_DECRYPT_ACTIONS),
             "Resource": "*", "Condition": _via("eu-west-1")},
        ],
    }


def test_without_named_writers_the_account_stores_through_secrets_manager_only() -> None:
    document = _document([APP_ROLE], [], region="ap-southeast-2")
    store = document["Statement"][1]
    assert store == {"Sid": "StoreOnlyThroughSecretsManager", "Effect": "Allow", "Principal": {"AWS": ROOT},
                     "Action": sorted(KEY_WRITE_ACTIONS), "Resource": "*", "Condition": _via("ap-southeast-2")}
    assert document["Statement"][2]["Principal"] == {"AWS": APP_ROLE}


def test_a_reader_that_also_writes_gets_no_separate_read_statement() -> None:
    document = _document([CI_ROLE], [CI_ROLE])
    assert [s["Sid"] for s in document["Statement"]] == ["AccountAdministersKey", "StoreOnlyThroughSecretsManager"]
    document = _document([], [])
    assert [s["Sid"] for s in document["Statement"]] == ["AccountAdministersKey", "StoreOnlyThroughSecretsManager"]


def test_administrators_cannot_use_the_key_for_data_or_grants() -> None:
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert not any(iam_match(pattern, action) for pattern in KEY_ADMIN_ACTIONS), action
    assert KEY_DECRYPT_ACTIONS == ("kms:Decrypt", "kms:DescribeKey")
    assert KEY_WRITE_ACTIONS == ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*")


def iam_match(pattern: str, action: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


@pytest.fixture(scope="module", params=["staging", "production"])
def keys(request: pytest.FixtureRequest) -> tuple[str, str, list[dict]]:
    report = run_stack(request.param)
    region = report.run.stack.values["aws:region"]
    account = report.run.stack.values["secrets-platform:accountId"]
    found = [r.inputs for r in report.run.resources if r.type == "aws:kms/key:Key"]
    aliases = [r.inputs for r in report.run.resources if r.type == "aws:kms/alias:Alias"]
    # One alias per key, in the key's region (KMS aliases are regional).
    assert sorted(a["name"] for a in aliases) == [f"alias/filot/{request.param}/secrets"] * len(found)
    assert sorted(a.get("region", region) for a in aliases) == sorted(k.get("region", region) for k in found)
    for key in found:
        key_region = key.get("region", region)
        assert key["description"] == f"Encrypts the {request.param} secrets of filot in {key_region}"
    return region, str(account), found


def test_every_key_of_the_program_limits_use_to_secrets_manager_in_its_own_account(keys) -> None:  # type: ignore[no-untyped-def]
    stack_region, account, found = keys
    assert found
    for inputs in found:
        region = inputs.get("region", stack_region)
        policy = json.loads(inputs["policy"])
        uses = [s for s in policy["Statement"] if s["Sid"] != "AccountAdministersKey"]
        assert uses
        for statement in uses:
            assert statement["Condition"] == {"StringEquals": {
                "kms:CallerAccount": account, "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}
        admin = policy["Statement"][0]
        assert admin["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"} and "Condition" not in admin
        assert inputs["enableKeyRotation"] is True and inputs["bypassPolicyLockoutSafetyCheck"] is False


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_each_key_is_its_own_component_protected_like_the_stack(stack: str) -> None:
    """The component's type token is part of every child's URN: changing it would replace the keys."""
    report = run_stack(stack)
    values = report.run.stack.values
    by_urn = {r.urn: r for r in report.run.resources}
    components = [r for r in report.run.resources if r.type == "secrets-platform:index:EnvironmentKey"]
    replicas = json.loads(values.get("secrets-platform:replicaRegions", "[]"))
    assert len(components) == 1 + len(replicas)
    protect = stack == "production"
    window = int(values.get("secrets-platform:kmsDeletionWindowDays", 30))
    tags = json.loads(values.get("secrets-platform:tags", "{}"))
    for component in components:
        assert by_urn[component.parent].type == "secrets-platform:index:SecretsEnvironment", component.urn
        children = [r for r in report.run.resources if r.parent == component.urn]
        assert sorted(r.type for r in children) == ["aws:kms/alias:Alias", "aws:kms/key:Key"], component.urn
        key = next(r for r in children if r.type == "aws:kms/key:Key")
        alias = next(r for r in children if r.type == "aws:kms/alias:Alias")
        assert key.protect is protect and alias.protect is False
        assert key.inputs["deletionWindowInDays"] == window
        assert key.inputs["tags"] == {**tags, "app": "filot", "environment": stack, "managed-by": "pulumi"}
        replica = component.name != f"filot-{stack}-kms"
        assert ("region" in key.inputs) is replica and ("region" in alias.inputs) is replica
        if replica:
            assert key.inputs["region"] == alias.inputs["region"] == component.name.rsplit("kms-", 1)[1]
        assert alias.property_dependencies.get("targetKeyId") == (key.urn,)
        # What the state shows for the component: its key's ARN (in the key's region) and the alias.
        outputs = report.run.component_outputs[component.urn]
        region = key.inputs.get("region", values["aws:region"])
        assert set(outputs) == {"arn", "alias"} and outputs["alias"] == alias.inputs["name"]
        assert re.fullmatch(rf"arn:aws:kms:{region}:123456789012:key/[0-9a-f-]{{36}}", outputs["arn"])
        policy = json.loads(key.inputs["policy"])
        sids = [s["Sid"] for s in policy["Statement"]]
        assert sids == ["AccountAdministersKey", "StoreOnlyThroughSecretsManager", "ReadOnlyThroughSecretsManager"]
        writers = set(_as_list(policy["Statement"][1]["Principal"]["AWS"]))
        readers = set(_as_list(policy["Statement"][2]["Principal"]["AWS"]))
        assert readers and not readers & writers, "readers who do not write, apart from the writers"
        assert f"arn:aws:iam::123456789012:role/filot-{stack}-app" in readers


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


ONE_SECRET = """\
app: shop
owner: platform
secrets:
  api-token:
    description: API token
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the provider
    value: {env: API_TOKEN, external: {}}
"""


def _with_readers(make_project, count: int):  # type: ignore[no-untyped-def]
    """A run of the program whose stack names `count` reader roles (each in the key policy)."""
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config
    from tests.conftest import MINIMAL_STACK, REPO

    roles = "".join(f"      - arn:aws:iam::210987654321:role/shop-staging-reader-{i:03d}\n" for i in range(count))
    project = make_project(ONE_SECRET, MINIMAL_STACK + "  secrets-platform:principals:\n    runtime:\n" + roles)
    stack = load_stack_config(project, "staging")
    stack.values["secrets-platform:allowMissingValues"] = "true"
    return run_program(stack, project, str(REPO / "__main__.py"))


def test_a_key_policy_may_use_kms_s_own_size_limit(make_project) -> None:  # type: ignore[no-untyped-def]
    """150 reader roles make a key policy of about 8,000 characters: over IAM's 6,144 for a managed
    policy, well within KMS's 32,768 for a key policy ("AWS KMS quotas": key policy document size)."""
    run = _with_readers(make_project, 150)
    (key,) = [r for r in run.resources if r.type == "aws:kms/key:Key"]
    assert 6144 < len(key.inputs["policy"]) < 32768
    readers = json.loads(key.inputs["policy"])["Statement"][2]["Principal"]["AWS"]
    assert len(readers) == 150


def test_a_key_policy_over_kms_s_limit_is_refused_naming_the_key(make_project) -> None:  # type: ignore[no-untyped-def]
    """700 reader roles make a key policy of about 41,000 characters: KMS would refuse it at deploy
    (MalformedPolicyDocumentException); the preview refuses it first and names the key."""
    from components.iam import PolicyError

    with pytest.raises(PolicyError) as refused:
        _with_readers(make_project, 700)
    assert str(refused.value).startswith("key policy of shop-staging-kms, field 'statements': the policy document "
                                         "has ")
    assert str(refused.value).endswith(
        "characters, over AWS's limit of 32768; the key policy names every reader and writer role: name fewer "
        "roles in secrets-platform:principals (one role per service)")
