"""Cross-account sharing, proven by the independent simulator over a two-account matrix.

The ledgerly example's production stack (account 123456789012) shares `renderer-token` with the role
`ledgerly-batch-renderer` of account 345678901234 (catalog `shared_with`) and does not share `stripe`.
Every principal of both accounts x both secrets x three requests:

    read     secretsmanager:GetSecretValue on the secret
    decrypt  kms:Decrypt on the environment's key, through Secrets Manager (kms:ViaService), with the
             encryption context Secrets Manager sends for that secret (kms:EncryptionContext:SecretARN)
    policy   secretsmanager:PutResourcePolicy on the secret

A cross-account request is allowed only when the caller's own account allows it (identity policy) AND
the resource's account allows it (resource or key policy): IAM user guide, "Cross-account policy
evaluation logic"; Secrets Manager user guide, "Access AWS Secrets Manager secrets from a different
account" (resource policy, key policy and the role's identity policy, all three). So each principal of
the other account is run twice: with the identity policy the stack outputs (`sharedWith`) attached to
it, and without any. The simulator (`@cloud-copilot/iam-simulate`) and the project's evaluator
(`preview.access_matrix.evaluate`) must agree on every cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from access_harness import Simulator

from preview.access_matrix import (
    AccessModel,
    KeyInfo,
    NamedPolicy,
    Principal,
    Request,
    SecretInfo,
    collect,
    evaluate,
    kms_request,
    secret_request,
)
from tests.conftest import REPO, run_stack

HERE_ACCOUNT = "123456789012"
OTHER = "345678901234"
REGION = "eu-west-1"
SHARED, NOT_SHARED = "renderer-token", "stripe"
SHARED_ROLE = f"arn:aws:iam::{OTHER}:role/ledgerly-batch-renderer"

A, N, D = "Allowed", "ImplicitlyDenied", "ExplicitlyDenied"  # allowed, not granted, denied
OPERATIONS = ("read", "decrypt", "policy")

# (principal label) -> {secret: (read, decrypt, policy)}: what the rules say, written out by hand.
EXPECTED: dict[str, dict[str, tuple[str, str, str]]] = {
    # This account: sharing changes nothing. The api service reads both (it consumes both); its read
    # policy denies every write. CI manages both and reads values (ciReadsValues: true in production).
    "here:api": {SHARED: (A, A, D), NOT_SHARED: (A, A, D)},
    "here:ci": {SHARED: (A, A, A), NOT_SHARED: (A, A, A)},
    "here:unrelated": {SHARED: (N, N, N), NOT_SHARED: (N, N, N)},
    # The shared role with the output identity policy: reads and decrypts exactly the shared secret.
    # The unshared secret's resource policy denies every principal outside the account; on the shared
    # one, everything but reading is denied to the role whatever its own account grants.
    "other:shared+policy": {SHARED: (A, A, D), NOT_SHARED: (D, N, D)},
    # The same role without its own account's grant: the resource and key policies alone do not suffice.
    "other:shared": {SHARED: (N, N, D), NOT_SHARED: (D, N, D)},
    # Any other principal of the other account, even holding the same identity policy: denied.
    "other:role+policy": {SHARED: (D, N, D), NOT_SHARED: (D, N, D)},
    "other:role": {SHARED: (D, N, D), NOT_SHARED: (D, N, D)},
    "other:root+policy": {SHARED: (D, N, D), NOT_SHARED: (D, N, D)},
    "other:root": {SHARED: (D, N, D), NOT_SHARED: (D, N, D)},
}


@pytest.fixture(scope="module")
def production() -> tuple[AccessModel, dict[str, Any]]:
    report = run_stack("production", REPO, REPO / "examples" / "ledgerly" / "Pulumi.production.yaml")
    return collect(report.run.resources, account_id=HERE_ACCOUNT, region=REGION), dict(report.run.outputs)


def _consumer_policy(outputs: dict[str, Any]) -> NamedPolicy:
    shared = outputs["sharedWith"]
    assert sorted(shared) == [OTHER] and sorted(shared[OTHER]) == [SHARED_ROLE]
    document = json.loads(shared[OTHER][SHARED_ROLE]["identityPolicy"])
    return NamedPolicy("ledgerly-shared-read", f"arn:aws:iam::{OTHER}:policy/ledgerly-shared-read", document)


def _principals(model: AccessModel, outputs: dict[str, Any]) -> dict[str, Principal]:
    policy = (_consumer_policy(outputs),)
    role = f"arn:aws:iam::{OTHER}:role/reporting"
    root = f"arn:aws:iam::{OTHER}:root"
    return {
        "here:api": model.principal("ledgerly-production-api"),
        "here:ci": model.principal("ledgerly-production-deploy"),
        "here:unrelated": Principal(f"arn:aws:iam::{HERE_ACCOUNT}:role/unrelated", "unrelated", ()),
        "other:shared+policy": Principal(SHARED_ROLE, "ledgerly-batch-renderer", policy),
        "other:shared": Principal(SHARED_ROLE, "ledgerly-batch-renderer", ()),
        "other:role+policy": Principal(role, "reporting", policy),
        "other:role": Principal(role, "reporting", ()),
        "other:root+policy": Principal(root, "root", policy),
        "other:root": Principal(root, "root", ()),
    }


def _secret(model: AccessModel, name: str) -> SecretInfo:
    return next(s for s in model.secrets if s.name == f"ledgerly/production/{name}" and s.region == REGION)


def _key(model: AccessModel, secret: SecretInfo) -> KeyInfo:
    key = model.key_of(secret)
    assert key is not None and key.region == REGION
    return key


def _request(model: AccessModel, principal: Principal, secret: SecretInfo, operation: str) -> Request:
    if operation == "read":
        return secret_request(principal, secret, "read")
    if operation == "policy":
        # What `pulumi up` sends: the provider's SecretPolicy passes block_public_policy, which the program sets
        # (CI's own policy denies a PutResourcePolicy without it).
        return secret_request(principal, secret, "secretsmanager:PutResourcePolicy",
                              extra_context={"secretsmanager:BlockPublicPolicy": "true"})
    # What Secrets Manager sends KMS when it decrypts this secret for the principal (user guide, "Secret
    # encryption and decryption": encryption context SecretARN and SecretVersionId).
    via = f"secretsmanager.{REGION}.amazonaws.com"
    return kms_request(principal, _key(model, secret), "kms:Decrypt", via_service=via,
                       extra_context={"kms:EncryptionContext:SecretARN": secret.arn,
                                      "kms:EncryptionContext:SecretVersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"})


# The simulator drops `kms:EncryptionContext:<key>` from the request context: its variable-key match only
# knows keys with a `/` (`aws:PrincipalTag/<key>`; @cloud-copilot/iam-simulate
# `dist/cjs/simulation_engine/simulationEngine.js`, `listHasVariableKeyMatch`, which reports the key under
# `ignoredContextKeys`). So, for the simulator only, the key is renamed on both sides (every policy's
# conditions and the request's context) to a single-valued string key it does parse, with the same operator,
# pattern and missing-key semantics. None of the principals here carries a tag of that name.
CONTEXT_KEY = "kms:EncryptionContext:SecretARN"
STAND_IN_KEY = "aws:PrincipalTag/EncryptionContextSecretARN"


def _renamed(document: Any) -> Any:
    if isinstance(document, dict):
        return {(STAND_IN_KEY if k == CONTEXT_KEY else k): _renamed(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_renamed(v) for v in document]
    return document


def _decide(simulator: Simulator, batch: list[Request]) -> list[str]:
    """The simulator's decisions, with the encryption-context key renamed as above."""
    return simulator.raw([_renamed(r.to_simulation()) for r in batch])


def test_the_simulator_ignores_the_encryption_context_key_it_would_be_given(
        production: tuple[AccessModel, dict[str, Any]], simulator: Simulator) -> None:
    """Why the rename: given as is, the key policy's SecretARN condition never matches in the simulator, so
    even the shared role's legitimate Decrypt is refused (with the rename it is allowed, below)."""
    model, outputs = production
    role = _principals(model, outputs)["other:shared+policy"]
    request = _request(model, role, _secret(model, SHARED), "decrypt")
    assert simulator.raw([request.to_simulation()]) == [N]
    assert _decide(simulator, [request]) == [A]


def test_two_account_matrix(production: tuple[AccessModel, dict[str, Any]], simulator: Simulator) -> None:
    model, outputs = production
    principals = _principals(model, outputs)
    cells = [(label, name, op) for label in EXPECTED for name in (SHARED, NOT_SHARED) for op in OPERATIONS]
    batch = [_request(model, principals[label], _secret(model, name), op) for label, name, op in cells]
    simulated = _decide(simulator, batch)
    want = [EXPECTED[label][name][OPERATIONS.index(op)] for label, name, op in cells]
    wrong = [(cell, w, s) for cell, w, s in zip(cells, want, simulated, strict=True) if w != s]
    assert not wrong, wrong
    # The project's evaluator decides every cell as the simulator does.
    ours = [evaluate(r) for r in batch]
    disagree = [(cell, s, o) for cell, s, o in zip(cells, simulated, ours, strict=True) if s != o]
    assert not disagree, disagree


def test_decrypt_needs_secrets_manager_and_the_shared_secrets_context(
        production: tuple[AccessModel, dict[str, Any]], simulator: Simulator) -> None:
    """The shared role's key grant holds only for Secrets Manager in the key's region decrypting the shared
    secret: a direct Decrypt, another service, another region's Secrets Manager, or the unshared secret's
    context are all refused, even with its identity policy attached."""
    model, outputs = production
    role = _principals(model, outputs)["other:shared+policy"]
    shared, other = _secret(model, SHARED), _secret(model, NOT_SHARED)
    key = _key(model, shared)
    cases = [
        (f"secretsmanager.{REGION}.amazonaws.com", shared.arn, A),
        (None, shared.arn, N),
        (f"ssm.{REGION}.amazonaws.com", shared.arn, N),
        ("secretsmanager.us-east-1.amazonaws.com", shared.arn, N),
        (f"secretsmanager.{REGION}.amazonaws.com", other.arn, N),
        (f"secretsmanager.{REGION}.amazonaws.com", None, N),
    ]
    batch = [kms_request(role, key, "kms:Decrypt", via_service=via,
                         extra_context={"kms:EncryptionContext:SecretARN": arn} if arn else None)
             for via, arn, _ in cases]
    assert _decide(simulator, batch) == [want for *_, want in cases]
    assert [evaluate(r) for r in batch] == [want for *_, want in cases]


def test_the_replica_region_is_shared_under_its_own_key(production: tuple[AccessModel, dict[str, Any]],
                                                        simulator: Simulator) -> None:
    """The replica (eu-central-1) carries the same resource policy; its key grants the role for the replica's
    ARN through Secrets Manager in eu-central-1 only."""
    model, outputs = production
    role = _principals(model, outputs)["other:shared+policy"]
    replica_keys = [k for k in model.keys if k.region == "eu-central-1" and k.environment == "production"]
    assert len(replica_keys) == 1
    shared = _secret(model, SHARED)
    replica_arn = shared.arn.replace(f":{REGION}:", ":eu-central-1:")
    cases = [("secretsmanager.eu-central-1.amazonaws.com", replica_arn, A),
             (f"secretsmanager.{REGION}.amazonaws.com", replica_arn, N),
             ("secretsmanager.eu-central-1.amazonaws.com", shared.arn, N)]
    batch = [kms_request(role, replica_keys[0], "kms:Decrypt", via_service=via,
                         extra_context={"kms:EncryptionContext:SecretARN": arn}) for via, arn, _ in cases]
    assert _decide(simulator, batch) == [want for *_, want in cases]


def test_staging_shares_nothing(tmp_path: Path) -> None:
    """The share is limited to production (`environments: [production]`): staging's documents name no
    other account."""
    report = run_stack("staging", REPO, REPO / "examples" / "ledgerly" / "Pulumi.staging.yaml")
    assert report.run.outputs["sharedWith"] == {}
    for resource in report.run.resources:
        if resource.type in ("aws:secretsmanager/secretPolicy:SecretPolicy", "aws:kms/key:Key"):
            assert OTHER not in str(resource.inputs.get("policy")), resource.name
