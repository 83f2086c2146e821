"""What a production pipeline's credentials could do to a secret beyond the matrix, and what its IAM
policy refuses: a resource policy that does not block public access, deleting a resource policy,
retagging a secret into another environment, removing a platform tag. Every cell is decided by the
independent simulator and by `preview.access_matrix`'s evaluator, which must agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from access_harness import ACCOUNT, APP, REPO, STACKS, Role, Simulator, Stacks
from test_access_ci_guards import key_of, own
from test_access_matrix import _both as both

from components.grants import RESERVED_TAGS_EVERYWHERE
from components.settings import PLATFORM_TAGS
from preview.access_matrix import Principal, Request, SecretInfo, secret_request

PUT_POLICY = "secretsmanager:PutResourcePolicy"
DELETE_POLICY = "secretsmanager:DeleteResourcePolicy"
TAG = "secretsmanager:TagResource"
UNTAG = "secretsmanager:UntagResource"


def _ci(stacks: Stacks, env: str) -> Principal:
    return stacks.model.principal(Role(env, "ci").arn)


@pytest.mark.parametrize("env", STACKS)
def test_a_resource_policy_must_block_public_access(stacks: Stacks, simulator: Simulator, env: str) -> None:
    """terraform-provider-aws `secret_policy.go` sends BlockPublicPolicy as the SecretPolicy says (the
    program says true): that passes; false, or a call without it, is denied (secretsmanager:BlockPublicPolicy,
    Service Authorization Reference)."""
    ci = _ci(stacks, env)
    secrets = own(stacks, env)

    def ask(context: dict[str, str]) -> set[str]:
        return set(both(simulator, [secret_request(ci, s, PUT_POLICY, context) for s in secrets]))

    assert ask({"secretsmanager:BlockPublicPolicy": "true"}) == {"Allowed"}
    assert ask({"secretsmanager:BlockPublicPolicy": "false"}) == {"ExplicitlyDenied"}
    assert ask({}) == {"ExplicitlyDenied"}


def test_deleting_a_resource_policy(stacks: Stacks, simulator: Simulator) -> None:
    """Production: denied outright (the provider deletes a SecretPolicy only before deleting its secret,
    which no pipeline may do there). Elsewhere allowed, so that a secret dropped from the catalog can be
    deleted; a secret without a resource policy is open to no other account (a cross-account request
    needs an Allow in the resource policy), only the fence statement goes."""
    production = [secret_request(_ci(stacks, "production"), s, DELETE_POLICY) for s in own(stacks, "production")]
    assert set(both(simulator, production)) == {"ExplicitlyDenied"}
    staging = [secret_request(_ci(stacks, "staging"), s, DELETE_POLICY) for s in own(stacks, "staging")]
    assert set(both(simulator, staging)) == {"Allowed"}


def test_every_secret_carries_the_tags_nobody_may_remove(stacks: Stacks) -> None:
    """The untag deny names only platform tags the program sets on every secret, so the stack's own
    updates never remove one."""
    assert set(RESERVED_TAGS_EVERYWHERE) <= PLATFORM_TAGS
    for secret in stacks.model.secrets:
        assert set(RESERVED_TAGS_EVERYWHERE) <= set(secret.tags), secret.name


def provider_tag_requests(principal: Principal, secret: SecretInfo, new: Mapping[str, str]) -> list[Request]:
    """The requests the provider makes to move a secret's tags from `secret.tags` to `new`:
    terraform-provider-aws `internal/service/secretsmanager/tags_gen.go` UpdateTags calls UntagResource
    with the removed keys (`internal/tags` KeyValueTags.Removed), then TagResource with the added and
    changed ones only (KeyValueTags.Updated); each carries aws:TagKeys, TagResource aws:RequestTag/<key>."""
    old = dict(secret.tags)
    removed = tuple(sorted(k for k in old if k not in new))
    updated = {k: v for k, v in sorted(new.items()) if old.get(k) != v}
    found = []
    if removed:
        found.append(secret_request(principal, secret, UNTAG, {"aws:TagKeys": removed}))
    if updated:
        found.append(secret_request(principal, secret, TAG, {
            "aws:TagKeys": tuple(updated), **{f"aws:RequestTag/{k}": v for k, v in updated.items()}}))
    return found


@pytest.mark.parametrize("env", STACKS)
def test_tag_changes_as_the_provider_sends_them(stacks: Stacks, simulator: Simulator, env: str) -> None:
    ci = _ci(stacks, env)
    other = next(e for e in STACKS if e != env)
    for secret in own(stacks, env):
        tags = dict(secret.tags)
        allowed = {
            "a stack tag changes": {**tags, "cost-centre": "payments"},
            "a stack tag goes": {k: v for k, v in tags.items() if k != "cost-centre"},
            "a new tag": {**tags, "team": "identity"},
            "a catalog change": {**tags, "class": "configuration", "owner": "payments-team"},
            "nothing changes": tags,
        }
        denied = {
            "moved to another environment": {**tags, "environment": other},
            "moved to another app": {**tags, "app": "other-app"},
            **{f"{key} removed": {k: v for k, v in tags.items() if k != key} for key in RESERVED_TAGS_EVERYWHERE},
        }
        for what, new in allowed.items():
            batch = provider_tag_requests(ci, secret, new)
            assert set(both(simulator, batch)) <= {"Allowed"}, (env, secret.name, what)
        for what, new in denied.items():
            batch = provider_tag_requests(ci, secret, new)
            assert "ExplicitlyDenied" in both(simulator, batch), (env, secret.name, what)


@pytest.mark.parametrize("env", STACKS)
def test_a_new_secret_carries_only_its_own_environment(stacks: Stacks, simulator: Simulator, env: str) -> None:
    """CreateSecret carries its tags (aws:RequestTag/<key>, aws:TagKeys) and needs TagResource too
    (botocore's CreateSecret documentation)."""
    ci = _ci(stacks, env)
    other = next(e for e in STACKS if e != env)
    secrets = [s for s in own(stacks, env) if s.region == stacks.model.region]

    def create(tags: Mapping[str, str]) -> list[Request]:
        return [secret_request(ci, s, "secretsmanager:CreateSecret", {
            "secretsmanager:KmsKeyArn": key_of(stacks, s), "aws:TagKeys": tuple(sorted(tags)),
            **{f"aws:RequestTag/{k}": v for k, v in tags.items()}}) for s in secrets]

    mine = dict(secrets[0].tags)
    assert set(both(simulator, create(mine))) == {"Allowed"}
    assert set(both(simulator, create({**mine, "environment": other}))) == {"ExplicitlyDenied"}


# What the account must hold: the organisation policies docs/access.md recommends ----------------------

ORG = "o-exampleorgid"
OUTSIDER = "arn:aws:iam::999999999999:role/attacker"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _readme_policies() -> tuple[dict[str, Any], dict[str, Any]]:
    """The RCP and the SCP exactly as docs/access.md gives them (`<app>` filled in)."""
    text = (REPO / "docs" / "access.md").read_text()
    section = text[text.index("**What IAM on the CI role cannot hold"):]
    blocks = re.findall(r"```json\n(.*?)```", section, re.DOTALL)[:2]
    rcp, scp = (json.loads(b.replace("<app>", APP)) for b in blocks)
    return rcp, scp


def _simulation(principal: str, action: str, resource: str, *, context: dict[str, Any],
                identity: dict[str, Any], resource_policy: dict[str, Any] | None = None,
                scp: dict[str, Any] | None = None, rcp: dict[str, Any] | None = None) -> dict[str, Any]:
    simulation: dict[str, Any] = {
        "request": {"principal": principal, "action": action,
                    "resource": {"resource": resource, "accountId": resource.split(":")[4] or ACCOUNT},
                    "contextVariables": context},
        "identityPolicies": [{"name": "identity", "policy": identity}],
        # Every level of the organisation allows everything unless docs/access.md's SCP says otherwise.
        "serviceControlPolicies": [{"orgIdentifier": "r-root", "policies": [
            {"name": "FullAWSAccess", "policy": ALLOW_ALL}, *([{"name": "readme", "policy": scp}] if scp else [])]}],
        "resourceControlPolicies": [{"orgIdentifier": "r-root", "policies": (
            [{"name": "readme", "policy": rcp}] if rcp else [])}],
    }
    if resource_policy is not None:
        simulation["resourcePolicy"] = resource_policy
    return simulation


def test_the_readmes_resource_control_policy_keeps_secrets_in_the_organisation(
        stacks: Stacks, simulator: Simulator) -> None:
    """A resource policy naming one foreign account passes BlockPublicPolicy (it is not "broad"), so a CI
    credential could still write it; the RCP denies the foreign reader whatever the secret's policy says,
    and leaves the organisation's own principals alone. Simulator only: the project's evaluator models one
    account without an organisation."""
    rcp, _ = _readme_policies()
    secret = own(stacks, "production")[0]
    opened = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": OUTSIDER},
                                                      "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    read = "secretsmanager:GetSecretValue"
    outsider = {"aws:PrincipalAccount": "999999999999", "aws:PrincipalIsAWSService": "false"}
    insider = {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalOrgID": ORG, "aws:PrincipalIsAWSService": "false"}
    reader = Role("production", "runtime").arn
    batch = [
        _simulation(OUTSIDER, read, secret.arn, context=outsider, identity=ALLOW_ALL, resource_policy=opened),
        _simulation(OUTSIDER, read, secret.arn, context=outsider, identity=ALLOW_ALL, resource_policy=opened, rcp=rcp),
        _simulation(reader, read, secret.arn, context=insider, identity=ALLOW_ALL, rcp=rcp),
    ]
    assert simulator.raw(batch) == ["Allowed", "ExplicitlyDenied", "Allowed"]


def test_the_readmes_service_control_policy_keeps_the_pipelines_guardrails(simulator: Simulator) -> None:
    """With IAM rights (which `pulumi up` needs to manage the stack's policies) a pipeline could rewrite
    its own CI policy; the SCP refuses that to the pipeline roles, not to a deployer."""
    _, scp = _readme_policies()
    ci_policy = f"arn:aws:iam::{ACCOUNT}:policy/{APP}-production-secrets-ci"
    pipeline = Role("production", "ci").arn
    deployer = f"arn:aws:iam::{ACCOUNT}:role/platform-admin"
    batch = [
        _simulation(who, action, ci_policy, context={"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": who},
                    identity=ALLOW_ALL, scp=with_scp)
        for who, action, with_scp in (
            (pipeline, "iam:CreatePolicyVersion", None),
            (pipeline, "iam:CreatePolicyVersion", scp),
            (pipeline, "iam:SetDefaultPolicyVersion", scp),
            (deployer, "iam:CreatePolicyVersion", scp),
        )
    ]
    assert simulator.raw(batch) == ["Allowed", "ExplicitlyDenied", "ExplicitlyDenied", "Allowed"]
