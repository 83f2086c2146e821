"""The environment keys: usable only through Secrets Manager, only by the environment's own roles.

Checked by the independent simulator (KMS key-policy semantics: the key policy names the roles
directly and delegates nothing but administration to the account's IAM policies), and our evaluator
must agree on every request.
"""

from __future__ import annotations

import pytest
from access_harness import ACCOUNT, Role, Simulator, Stacks, roles

from preview.access_matrix import KeyInfo, NamedPolicy, Principal, Request, evaluate, kms_request


def _via(region: str) -> str:
    return f"secretsmanager.{region}.amazonaws.com"


def _decide(simulator: Simulator, batch: list[Request]) -> list[str]:
    decided = simulator.decide(batch)
    ours = [evaluate(r) for r in batch]
    assert ours == decided, [(r.principal, r.action, r.resource, dict(r.context), o, d)
                             for r, o, d in zip(batch, ours, decided, strict=True) if o != d]
    return decided


def _keys(stacks: Stacks) -> list[KeyInfo]:
    keys = list(stacks.model.keys)
    # staging's key, production's key and production's replica key
    assert sorted((k.environment, k.region) for k in keys) == sorted(
        {(s.environment, s.region) for s in stacks.model.secrets}
        | {("production", "ap-southeast-1")})
    return keys


def test_runtime_decrypts_only_through_secrets_manager(stacks: Stacks, simulator: Simulator) -> None:
    for env in ("staging", "production"):
        runtime = stacks.model.principal(Role(env, "runtime").arn)
        for key in _keys(stacks):
            own = key.environment == env
            cases = [
                (_via(key.region), "Allowed" if own else "ImplicitlyDenied"),
                (None, "ImplicitlyDenied"),  # a direct kms:Decrypt of a secret's blob
                (f"ssm.{key.region}.amazonaws.com", "ImplicitlyDenied"),  # another service
                (_via("us-east-1"), "ImplicitlyDenied"),  # Secrets Manager of another region
            ]
            batch = [kms_request(runtime, key, "kms:Decrypt", via_service=via) for via, _ in cases]
            assert _decide(simulator, batch) == [want for _, want in cases], (env, key.arn)


@pytest.mark.parametrize("role", roles(), ids=str)
def test_every_role_uses_only_its_own_environments_keys(role: Role, stacks: Stacks, simulator: Simulator) -> None:
    principal = stacks.model.principal(role.arn)
    for key in _keys(stacks):
        batch = [kms_request(principal, key, "kms:Decrypt", via_service=_via(key.region)),
                 kms_request(principal, key, "kms:Decrypt", via_service=None)]
        want = ["Allowed" if key.environment == role.environment else "ImplicitlyDenied", "ImplicitlyDenied"]
        assert _decide(simulator, batch) == want, key.arn


def test_key_administration_stays_with_the_account(stacks: Stacks, simulator: Simulator) -> None:
    """No configured role may administer a key; an account administrator (IAM delegation) may."""
    admin = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/key-admin", name="key-admin", policies=(NamedPolicy(
        "kms-admin", f"arn:aws:iam::{ACCOUNT}:policy/kms-admin",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ScheduleKeyDeletion",
                                                 "Resource": "*"}]}),))
    for key in _keys(stacks):
        batch = [kms_request(stacks.model.principal(r.arn), key, "kms:ScheduleKeyDeletion", via_service=None)
                 for r in roles()]
        assert set(_decide(simulator, batch)) == {"ImplicitlyDenied"}
        assert _decide(simulator, [kms_request(admin, key, "kms:ScheduleKeyDeletion", via_service=None)]) == [
            "Allowed"]
        # Administration never includes using the key for data.
        admin_decrypt = replace_policies(admin, "kms:Decrypt")
        assert _decide(simulator, [kms_request(admin_decrypt, key, "kms:Decrypt", via_service=_via(key.region))]) \
            == ["ImplicitlyDenied"]


def replace_policies(principal: Principal, action: str) -> Principal:
    return Principal(arn=principal.arn, name=principal.name, policies=(NamedPolicy(
        "p", f"arn:aws:iam::{ACCOUNT}:policy/p",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}),))


def test_readers_only_decrypt(stacks: Stacks, simulator: Simulator) -> None:
    readers = [r for r in roles() if r.kind in ("runtime", "service")]
    batch = [kms_request(stacks.model.principal(r.arn), key, action, via_service=_via(key.region))
             for r in readers for key in _keys(stacks) if key.environment == r.environment
             for action in ("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom")]
    assert set(_decide(simulator, batch)) == {"ImplicitlyDenied"}


def test_administrators_cannot_grant_use(stacks: Stacks, simulator: Simulator) -> None:
    admin = replace_policies(Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/key-admin", name="key-admin", policies=()),
                             "kms:CreateGrant")
    batch = [kms_request(admin, key, "kms:CreateGrant", via_service=None) for key in _keys(stacks)]
    assert set(_decide(simulator, batch)) == {"ImplicitlyDenied"}
