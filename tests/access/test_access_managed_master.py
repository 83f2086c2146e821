"""Managed rotation in fieldkit's production stack (examples/fieldkit). The RDS-managed master of its
reporting database: only the alternating-users rotation role reads it, only for reading, and decrypts it
with its customer-managed key only through Secrets Manager and only for that secret. The role Secrets Manager
assumes for the Salesforce managed external secret: that secret only, only while it has its partner's Type.
Decided by the independent simulator; our evaluator
(preview.access_matrix) must agree on every request.

The managed secret has no resource policy (RDS creates it without one), and its key, which the data team
owns, is taken with AWS's default key policy (the account's IAM policies decide: "Default key policy",
KMS developer guide), so the identity policies the program writes are what grant or refuse.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from access_harness import Simulator

from preview.access_matrix import (
    AccessModel,
    KeyInfo,
    Principal,
    Request,
    collect,
    evaluate,
    kms_request,
    principal_context,
    secret_request,
)
from tests.conftest import REPO, run_stack

ACCOUNT, REGION = "123456789012", "ca-central-1"
CONFIG = REPO / "examples" / "fieldkit" / "Pulumi.production.yaml"
MANAGED = (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
           "rds!cluster-9c8d7e6f-1a2b-4c3d-8e4f-5a6b7c8d9e0f-Qr34Cd")
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
ROTATOR = "fieldkit-production-rotate-postgres-alternating-users"
DEFAULT_KEY_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def model() -> AccessModel:
    report = run_stack("production", REPO, CONFIG)
    return collect(report.run.resources, account_id=ACCOUNT, region=REGION)


def _read(principal: Principal, action: str) -> Request:
    return Request(principal=principal.arn, action=action, resource=MANAGED, resource_account=ACCOUNT,
                   context=principal_context(principal), identity_policies=principal.policies,
                   resource_policy=None, service="secretsmanager")


def _decide(simulator: Simulator, batch: list[Request]) -> list[str]:
    decided = simulator.decide(batch)
    assert [evaluate(r) for r in batch] == decided, [(r.principal, r.action, dict(r.context)) for r in batch]
    return decided


def test_only_the_rotation_role_reads_the_managed_master(model: AccessModel, simulator: Simulator) -> None:
    assert any(p.name == ROTATOR for p in model.principals)
    for principal in model.principals:
        batch = [_read(principal, a) for a in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                                               "secretsmanager:PutSecretValue", "secretsmanager:RotateSecret")]
        want = "Allowed" if principal.name == ROTATOR else "ImplicitlyDenied"
        read, describe, *writes = _decide(simulator, batch)
        assert (read, describe) == (want, want), principal.name
        # Denied to all: implicitly, or explicitly by a read policy's deny of every write.
        assert "Allowed" not in writes, principal.name


def _without_context_condition(request: Request) -> Request:
    """The request with `kms:EncryptionContext:SecretARN` dropped from every identity condition.

    @cloud-copilot/iam-simulate cannot evaluate a condition key whose variable part follows a colon: its
    `replaceVariableInContextKey` (dist/cjs/context_keys/contextKeys.js) substitutes only after a `/`, so the
    request's `kms:EncryptionContext:SecretARN` becomes the literal `kms:EncryptionContext:${EncryptionContextKey}`
    and never matches (checked: Allowed without that condition, ImplicitlyDenied with it). The simulator
    therefore decides the rest (resource, kms:ViaService, the key policy); our evaluator decides that key."""
    policies = tuple(
        replace(p, document={**p.document, "Statement": [
            {**st, "Condition": {op: {k: v for k, v in keys.items() if k != "kms:EncryptionContext:SecretARN"}
                                 for op, keys in st.get("Condition", {}).items()}} if "Condition" in st else st
            for st in p.document["Statement"]]})
        for p in request.identity_policies)
    return replace(request, identity_policies=policies)


def test_its_key_decrypts_only_through_secrets_manager_for_that_secret(model: AccessModel,
                                                                       simulator: Simulator) -> None:
    key = KeyInfo(arn=KEY, region=REGION, environment="production", policy=DEFAULT_KEY_POLICY)
    via = f"secretsmanager.{REGION}.amazonaws.com"
    other = MANAGED.replace("9c8d7e6f", "00000000")
    for principal in model.principals:
        mine = principal.name == ROTATOR
        cases = [
            (via, MANAGED, "Allowed" if mine else "ImplicitlyDenied"),
            (None, MANAGED, "ImplicitlyDenied"),     # a direct kms:Decrypt
            (f"ssm.{REGION}.amazonaws.com", MANAGED, "ImplicitlyDenied"),
            ("secretsmanager.us-east-1.amazonaws.com", MANAGED, "ImplicitlyDenied"),
        ]
        batch = [kms_request(principal, key, "kms:Decrypt", via_service=v,
                             extra_context={"kms:EncryptionContext:SecretARN": s}) for v, s, _ in cases]
        assert _decide(simulator, [_without_context_condition(r) for r in batch]) == [w for _, _, w in cases]
        assert [evaluate(r) for r in batch] == [w for _, _, w in cases], principal.name
        # Another secret under the same key (the data team's other databases): not through this grant.
        elsewhere = kms_request(principal, key, "kms:Decrypt", via_service=via,
                                extra_context={"kms:EncryptionContext:SecretARN": other})
        assert evaluate(elsewhere) == "ImplicitlyDenied", principal.name


EXTERNAL = "fieldkit-production-rotate-managed-external"


def test_the_managed_external_role_rotates_only_the_partner_s_secret(model: AccessModel,
                                                                     simulator: Simulator) -> None:
    """Secrets Manager's role for managed external secrets: read, write and restage fieldkit's Salesforce secret
    while it carries its partner's Type, nothing else; and the environment's key through Secrets Manager."""
    role = model.principal(EXTERNAL)
    batch, want = [], []
    for secret in model.secrets:
        ours = secret.name == "fieldkit/production/salesforce"
        assert (secret.secret_type == "SalesforceClientSecret") == ours
        for operation in ("read", "write", "secretsmanager:UpdateSecretVersionStage", "delete", "rotate"):
            batch.append(secret_request(role, secret, operation))
            want.append("Allowed" if ours and operation in ("read", "write",
                                                             "secretsmanager:UpdateSecretVersionStage")
                        else "ImplicitlyDenied")
        if ours:  # the same secret without its partner's type (the condition key of the grant)
            batch.append(secret_request(role, secret, "write", {"secretsmanager:resource/Type": "BigIDClientSecret"}))
            want.append("ImplicitlyDenied")
    decided = _decide(simulator, batch)
    assert [d == "Allowed" for d in decided] == [w == "Allowed" for w in want]
    for key in model.keys:
        via = f"secretsmanager.{key.region}.amazonaws.com"
        request = kms_request(role, key, "kms:GenerateDataKey", via_service=via)
        direct = kms_request(role, key, "kms:Decrypt", via_service=None)
        assert _decide(simulator, [request, direct]) == [
            "Allowed" if key.environment == "production" else "ImplicitlyDenied", "ImplicitlyDenied"], key.arn


def test_a_key_of_another_account_needs_its_own_policy_to_name_the_role(tmp_path: Path,
                                                                         simulator: Simulator) -> None:
    """A customer-managed key the data team keeps in another account: the identity grant the program writes is
    not enough while that key's policy names only its own account (KMS Developer Guide, "Allowing users in other
    accounts to use a KMS key"); once it names the rotation role, the role decrypts."""
    other = KEY.replace(f":{ACCOUNT}:", ":210987654321:")
    config = tmp_path / "Pulumi.production.yaml"
    config.write_text(CONFIG.read_text().replace(KEY, other))
    model = collect(run_stack("production", REPO, config).run.resources, account_id=ACCOUNT, region=REGION)
    rotator = model.principal(ROTATOR)
    own_only = {**DEFAULT_KEY_POLICY, "Statement": [{**DEFAULT_KEY_POLICY["Statement"][0],
                                                     "Principal": {"AWS": "arn:aws:iam::210987654321:root"}}]}
    naming = {**DEFAULT_KEY_POLICY, "Statement": [{
        "Sid": "RotationRoleOfFieldkit", "Effect": "Allow", "Principal": {"AWS": rotator.arn},
        "Action": "kms:Decrypt", "Resource": "*"}]}
    via = f"secretsmanager.{REGION}.amazonaws.com"
    context = {"kms:EncryptionContext:SecretARN": MANAGED}
    batch = [_without_context_condition(kms_request(rotator, KeyInfo(other, REGION, "production", policy),
                                                    "kms:Decrypt", via_service=via, extra_context=context))
             for policy in (own_only, naming)]
    assert _decide(simulator, batch) == ["ImplicitlyDenied", "Allowed"]
