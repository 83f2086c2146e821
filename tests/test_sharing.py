"""Sharing a secret with another account's role (catalog `shared_with`): validation, the three documents.

The simulator proof of who may then do what is tests/access/test_access_sharing.py; the pack rule's is
tests/policies/test_policy_sharing.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from components import grants, iam
from components.kms import EnvironmentKeyArgs, key_policy_statements
from tests.conftest import MINIMAL_STACK, REPO, run_stack
from tests.test_errors import GOOD, expect_error, run_cli

OTHER = "345678901234"
OWN = "210987654321"  # MINIMAL_STACK's account


def _shared(entries: str) -> str:
    """GOOD with `shared_with` on session-secret (entries: YAML flow items, one per line)."""
    block = "    shared_with:\n" + "".join(f"      - {e}\n" for e in entries.splitlines())
    return GOOD.replace("    rotation: {strategy: token, every_days: 30}\n",
                        "    rotation: {strategy: token, every_days: 30}\n" + block, 1)


def test_a_share_by_name_and_one_by_arn_with_a_path_run(make_project: Callable[..., Path]) -> None:
    catalog = _shared(f'{{account: "{OTHER}", role: batch-reader}}\n'
                      f'{{account: "{OTHER}", role: "arn:aws:iam::{OTHER}:role/team/jobs/exporter"}}')
    code, _out, err = run_cli(make_project(catalog, MINIMAL_STACK))
    assert code == 0, err


HOSTILE = [
    ('{account: "12345", role: reader}', "shared_with.0.account", "is not a 12-digit AWS account id"),
    ("{account: 345678901234, role: reader}", "shared_with.0.account", "quoted string of 12 digits"),
    ('{account: "3456789012345", role: reader}', "shared_with.0.account", "is not a 12-digit"),
    (f'{{account: "{OTHER}", role: "*"}}', "shared_with.0.role", "never the account root or '*'"),
    (f'{{account: "{OTHER}", role: "arn:aws:iam::{OTHER}:root"}}', "shared_with.0.role", "never the account root"),
    (f'{{account: "{OTHER}", role: root}}', "shared_with.0.role", "never the account root"),
    (f'{{account: "{OTHER}", role: "bad name!"}}', "shared_with.0.role", "is not an IAM role name"),
    (f'{{account: "{OTHER}", role: "{"r" * 65}"}}', "shared_with.0.role", "is not an IAM role name"),
    (f'{{account: "{OTHER}", role: "{"r" * 5000}"}}', "shared_with.0.role", "at most 2048 characters"),
    (f'{{account: "{OTHER}", role: "r\\x00\\x1b[2J"}}', "shared_with.0.role", "is not an IAM role name"),
    (f'{{account: "{OTHER}", role: "rôle"}}', "shared_with.0.role", "is not an IAM role name"),
    (f'{{account: "{OTHER}", role: "arn:aws:iam::{OTHER}:user/bob"}}', "shared_with.0.role", "is not an IAM role ARN"),
    (f'{{account: "{OTHER}", role: "arn:aws:iam::111111111111:role/reader"}}', "shared_with.0",
     "role ARN is in account 111111111111, not 345678901234"),
    (f'{{account: "{OTHER}", role: reader}}\n{{account: "{OTHER}", role: "arn:aws:iam::{OTHER}:role/reader"}}',
     "shared_with", f"role arn:aws:iam::{OTHER}:role/reader is listed twice"),
    (f'{{account: "{OTHER}", role: reader, environments: []}}', "shared_with.0.environments", "at least 1 item"),
    (f'{{account: "{OTHER}", rol: reader}}', "shared_with.0.role", "required field is missing"),
    (f'{{account: "{OWN}", role: reader}}', "shared_with.0.account", "this stack's own account"),
    (f'{{account: "{OTHER}", role: reader, environments: [dev]}}', "shared_with.0.environments",
     "environment 'dev' is not one of the catalog's environments"),
]


@pytest.mark.parametrize(("entries", "field", "message"), HOSTILE, ids=[f"{i}-{h[1]}" for i, h in enumerate(HOSTILE)])
def test_a_bad_share_is_one_line_naming_the_secret_and_the_field(
        make_project: Callable[..., Path], entries: str, field: str, message: str) -> None:
    line = expect_error(make_project(_shared(entries), MINIMAL_STACK), "catalog.yaml", "secret 'session-secret'",
                        f"field '{field}", message)
    assert "\x00" not in line and "\x1b" not in line


def test_a_share_not_given_as_a_list_is_refused(make_project: Callable[..., Path]) -> None:
    catalog = GOOD.replace("    rotation: {strategy: token, every_days: 30}\n",
                           f'    rotation: {{strategy: token, every_days: 30}}\n    shared_with: "{OTHER}"\n', 1)
    expect_error(make_project(catalog, MINIMAL_STACK), "secret 'session-secret'", "field 'shared_with'")


# The documents ----------------------------------------------------------------------------------

ROLE = f"arn:aws:iam::{OTHER}:role/batch-reader"


def test_an_unshared_secret_keeps_exactly_the_account_wide_deny() -> None:
    assert grants.shared_secret_resource_policy(OWN, ()) == grants.secret_resource_policy(OWN)


def test_a_shared_secrets_resource_policy_names_the_role_never_its_account() -> None:
    document = iam.render(grants.shared_secret_resource_policy(OWN, [ROLE, ROLE]), "test")
    assert document["Statement"] == [
        {"Sid": "DenyOutsideAccount", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:*",
         "Resource": "*", "Condition": {
             "ArnNotEquals": {"aws:PrincipalArn": ROLE},
             "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
             "StringNotEquals": {"aws:PrincipalAccount": OWN}}},
        {"Sid": "SharedRolesRead", "Effect": "Allow", "Principal": {"AWS": ROLE},
         "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": "*"},
        {"Sid": "SharedRolesOnlyRead", "Effect": "Deny", "Principal": {"AWS": "*"},
         "NotAction": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}},
    ]


def test_not_action_is_only_for_a_deny() -> None:
    allow = iam.Statement(sid="X", effect="Allow", actions=("secretsmanager:GetSecretValue",), not_action=True)
    with pytest.raises(iam.PolicyError, match="NotAction only in a Deny"):
        iam.render([allow], "test")


def _key_args(**shared: tuple[str, ...]) -> EnvironmentKeyArgs:
    return EnvironmentKeyArgs(app="shop", environment="production", account_id=OWN, region="eu-west-1",
                              deletion_window_days=30, shared={ROLE: shared.get("names", ())} if shared else {})


def test_the_key_lets_the_role_decrypt_only_its_secrets_through_secrets_manager() -> None:
    statements = key_policy_statements(_key_args(names=("shop/production/b", "shop/production/a")), [], [])
    unshared = key_policy_statements(_key_args(), [], [])
    assert statements[:-1] == unshared  # the account's own statements are unchanged
    assert iam.render(statements[-1:], "test")["Statement"] == [{
        "Sid": "SharedRoleDecrypt1", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt",
        "Resource": "*", "Condition": {
            "StringEquals": {"kms:CallerAccount": OTHER, "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:SecretARN": [
                f"arn:aws:secretsmanager:eu-west-1:{OWN}:secret:shop/production/a-??????",
                f"arn:aws:secretsmanager:eu-west-1:{OWN}:secret:shop/production/b-??????"]}},
    }]


# The example: ledgerly shares renderer-token with its batch account, in production only ----------------


@pytest.fixture(scope="module")
def ledgerly() -> list:  # type: ignore[type-arg]
    return run_stack("production", REPO, REPO / "examples" / "ledgerly" / "Pulumi.production.yaml").run.resources


def test_a_shared_secret_is_on_the_environments_customer_managed_key(ledgerly: list) -> None:  # type: ignore[type-arg]
    """The AWS-managed key's policy cannot be changed, so a secret under it cannot be shared (Secrets Manager
    user guide, cross-account access): the shared secret is encrypted with the environment's own key."""
    keys = {r.urn: r for r in ledgerly if r.type == "aws:kms/key:Key" and "region" not in r.inputs}
    secret = next(r for r in ledgerly if r.type == "aws:secretsmanager/secret:Secret"
                  and r.inputs["name"] == "ledgerly/production/renderer-token")
    assert len(keys) == 1
    assert secret.property_dependencies["kmsKeyId"] == tuple(keys)
    assert ":kms:eu-west-1:123456789012:key/" in secret.inputs["kmsKeyId"]
    for replica in secret.inputs["replicas"]:
        assert ":kms:eu-central-1:123456789012:key/" in replica["kmsKeyId"]


def test_only_the_shared_secret_names_the_other_account(ledgerly: list) -> None:  # type: ignore[type-arg]
    policies = {r.name: json.loads(r.inputs["policy"]) for r in ledgerly
                if r.type == "aws:secretsmanager/secretPolicy:SecretPolicy"}
    naming = sorted(n for n, p in policies.items() if OTHER in json.dumps(p))
    assert naming == ["ledgerly-production-renderer-token-policy"]


# An adopted secret keeps its own key until the follow-up step -------------------------------------


def test_an_adopted_secret_is_shared_only_once_it_is_on_the_environments_key(make_project: Callable[..., Path]) -> None:
    from tests.test_adopt import CATALOG, adopt

    catalog = CATALOG.replace("    consumers: [api]\n    value: {env: API_TOKEN",
                              f'    shared_with: [{{account: "{OTHER}", role: partner-reader}}]\n'
                              "    consumers: [api]\n    value: {env: API_TOKEN", 1)
    assert catalog != CATALOG
    line = expect_error(make_project(catalog, adopt()), "catalog.yaml", "secret 'api-token'", "field 'shared_with'",
                        "finish the adoption (`imported: true` in secrets-platform:adopt) first")
    assert "Traceback" not in line
    # After the follow-up step the secret is on the environment's key: its policy names the role.
    resources = run_stack("staging", make_project(catalog, adopt("      imported: true\n"))).run.resources
    policy = next(r for r in resources if r.name == "shop-staging-api-token-policy")
    assert f"arn:aws:iam::{OTHER}:role/partner-reader" in policy.inputs["policy"]
