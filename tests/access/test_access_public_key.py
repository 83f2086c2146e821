"""A service that only verifies tokens reads the published public key and never the private key.

A project made by the test: a jwt-rs256 signing key with `public_key: {verifiers: [gateway]}`, its
signer `auth` as a consumer, and a second secret `gateway` reads normally. Every cell of the verifier,
the signer and the rotation function is decided by our evaluator and by the independent simulator;
the private key's denial for the verifier is explicit, so it holds even if the runtime's read-all
policy is attached to the same role. The new documents pass parliament.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import yaml
from access_harness import REPO, Simulator

from preview.access_matrix import AccessModel, Request, SecretInfo, collect, evaluate, kms_request, secret_request
from preview.model import CollectedResource
from tests.test_public_key_and_due import SIGNING

ACCOUNT = "210987654321"
REGION = "eu-west-1"
PRIVATE = "shop/staging/signing-key"
PUBLIC = "shop/staging/signing-key-public-key"
OTHER = "shop/staging/gateway-token"
OPERATIONS = ("read", "write", "rotate", "delete")

# The signing key of the catalog tests (tests/test_public_key_and_due.py), and a token the gateway reads.
CATALOG = "app: shop\nowner: platform\nsecrets:\n" + SIGNING + """\
  gateway-token:
    description: Token the gateway presents upstream
    class: critical
    rotation: {strategy: token, every_days: 30, first_value: rotation}
    consumers: [gateway]
    value: {env: GATEWAY_TOKEN, generate: {kind: bytes, bytes: 32, encoding: hex}}
"""


def role(what: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/shop-staging-{what}"


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[CollectedResource]:
    from tests.conftest import run_stack

    project = Path(tmp_path_factory.mktemp("public-key"))
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (project / "catalog.yaml").write_text(textwrap.dedent(CATALOG))
    config = {
        "aws:region": REGION, "secrets-platform:accountId": ACCOUNT, "secrets-platform:recoveryWindowDays": 7,
        "secrets-platform:principals": {
            "runtime": [role("app")], "ci": [role("deploy")],
            "services": {"auth": [role("auth")], "gateway": [role("gateway")]},
        },
    }
    (project / "Pulumi.staging.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return run_stack("staging", project_dir=project).run.resources


@pytest.fixture(scope="module")
def model(resources: list[CollectedResource]) -> AccessModel:
    return collect(resources, account_id=ACCOUNT, region=REGION)


def test_the_schedule_waits_for_the_public_key_secret(resources: list[CollectedResource]) -> None:
    """The jwt-rs256 function's setSecret writes the public keys to `-public-key` (PutSecretValue) before the
    new key may sign; the first rotation runs as soon as the schedule is set (RotateImmediately, first value
    by rotation), so the schedule must wait for that secret, or setSecret fails with ResourceNotFound."""
    secrets = {r.inputs.get("name"): r for r in resources if r.type == "aws:secretsmanager/secret:Secret"}
    (schedule,) = [r for r in resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"
                   and r.property_dependencies.get("secretId") == (secrets[PRIVATE].urn,)]
    assert secrets[PUBLIC].urn in schedule.dependencies, schedule.dependencies
    # Only the signing key's schedule: the gateway token's function publishes nothing.
    (other,) = [r for r in resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"
                and r.property_dependencies.get("secretId") == (secrets[OTHER].urn,)]
    assert secrets[PUBLIC].urn not in other.dependencies


def _secret(model: AccessModel, name: str) -> SecretInfo:
    return next(s for s in model.secrets if s.name == name)


def _both(simulator: Simulator, requests: list[Request]) -> list[str]:
    ours: list[str] = [evaluate(r) for r in requests]
    theirs = simulator.decide(requests)
    assert ours == theirs, [(r.principal, r.action, r.resource) for r, a, b in zip(requests, ours, theirs, strict=True)
                            if a != b]
    return ours


def _cells(model: AccessModel, simulator: Simulator, who: str) -> dict[tuple[str, str], str]:
    principal = model.principal(role(who))
    requests = [secret_request(principal, _secret(model, s), op) for s in (PRIVATE, PUBLIC, OTHER) for op in OPERATIONS]
    return dict(zip([(s, op) for s in (PRIVATE, PUBLIC, OTHER) for op in OPERATIONS], _both(simulator, requests),
                    strict=True))


def test_the_verifier_reads_the_public_key_and_is_denied_the_private_one(model: AccessModel,
                                                                         simulator: Simulator) -> None:
    cells = _cells(model, simulator, "gateway")
    assert cells[(PUBLIC, "read")] == "Allowed"
    assert cells[(PRIVATE, "read")] == "ExplicitlyDenied"  # explicit: no other grant can reopen it
    assert cells[(OTHER, "read")] == "Allowed"  # its own secrets are unaffected
    assert "Allowed" not in {v for (s, op), v in cells.items() if op != "read"}


def test_the_explicit_deny_beats_a_read_all_policy_on_the_same_role(model: AccessModel, simulator: Simulator) -> None:
    """A role given both the runtime's read-all policy and the verifier's policy still cannot read the private key."""
    verifier = model.principal(role("gateway"))
    runtime = model.principal(role("app"))
    both = [*verifier.policies, *runtime.policies]
    base = secret_request(verifier, _secret(model, PRIVATE), "read")
    merged = dataclasses.replace(base, identity_policies=tuple(both))
    assert _both(simulator, [secret_request(runtime, _secret(model, PRIVATE), "read"), merged]) == [
        "Allowed", "ExplicitlyDenied"]


def test_the_signer_reads_both_halves(model: AccessModel, simulator: Simulator) -> None:
    cells = _cells(model, simulator, "auth")
    assert cells[(PRIVATE, "read")] == cells[(PUBLIC, "read")] == "Allowed"
    assert cells[(OTHER, "read")] == "ImplicitlyDenied"


def test_the_rotation_function_only_puts_new_public_versions(model: AccessModel, simulator: Simulator) -> None:
    function = model.principal(role("rotate-jwt-rs256"))
    public = _secret(model, PUBLIC)
    actions = ("read", "write", "rotate", "delete", "secretsmanager:UpdateSecretVersionStage",
               "secretsmanager:DescribeSecret")
    decisions = _both(simulator, [secret_request(function, public, a) for a in actions])
    assert dict(zip(actions, decisions, strict=True)) == {
        "read": "ImplicitlyDenied", "write": "Allowed", "rotate": "ImplicitlyDenied", "delete": "ImplicitlyDenied",
        "secretsmanager:UpdateSecretVersionStage": "ImplicitlyDenied", "secretsmanager:DescribeSecret":
            "ImplicitlyDenied",
    }
    # It stores the public document through the environment's key, via Secrets Manager only.
    key = next(k for k in model.keys if k.region == REGION)
    via = f"secretsmanager.{REGION}.amazonaws.com"
    assert _both(simulator, [kms_request(function, key, "kms:GenerateDataKey", via_service=via),
                             kms_request(function, key, "kms:GenerateDataKey", via_service=None)]) == [
        "Allowed", "ImplicitlyDenied"]


def test_the_verifier_decrypts_through_secrets_manager_only(model: AccessModel, simulator: Simulator) -> None:
    verifier = model.principal(role("gateway"))
    key = next(k for k in model.keys if k.region == REGION)
    via = f"secretsmanager.{REGION}.amazonaws.com"
    assert _both(simulator, [kms_request(verifier, key, "kms:Decrypt", via_service=via),
                             kms_request(verifier, key, "kms:Decrypt", via_service=None)]) == [
        "Allowed", "ImplicitlyDenied"]


def test_the_new_documents_pass_parliament(model: AccessModel) -> None:
    from test_access_lint import _findings, _unaccepted

    documents = [("identity", p.name, p.document) for who in ("gateway", "rotate-jwt-rs256")
                 for p in model.principal(role(who)).policies]
    problems = [f"{label}: {f.issue} {f.detail}" for kind, label, doc in documents for f in _findings(doc)
                if _unaccepted(kind, f)]
    assert not problems, problems
