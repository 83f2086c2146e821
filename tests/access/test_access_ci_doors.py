"""What a production pipeline's credentials could do to a secret beyond the matrix, and what its IAM
policy refuses: a resource policy that does not block public access, deleting a resource policy,
retagging a secret into another environment, removing a platform tag. Every cell is decided by the
independent simulator and by `preview.access_matrix`'s evaluator, which must agree.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from access_harness import STACKS, Role, Simulator, Stacks
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
