"""A rotation role may read an RDS-managed master secret (`rds!...`, named in full) outside the environment's
prefix: the admin credential of `master: {managed: rds}` (components/managed.py). Nothing else may."""

from __future__ import annotations

import policy_fixtures as f
import pytest
from test_policy_pack import run

RULE = "iam-environment-isolation"
MANAGED = (f"arn:aws:secretsmanager:{f.REGION}:{f.ACCOUNT}:secret:"
           "rds!db-5b0f2c1e-8d34-4a7b-9e21-3c4d5e6f7a80-Xy12Ab")
READ = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]


def _with_policy(access: str, actions: list[str], resource: str) -> list:
    statement = {"Sid": "ReadManagedAdminCredentials", "Effect": "Allow", "Action": actions, "Resource": resource}
    tags = {"app": f.APP, "environment": f.ENV, "access": access}
    return [*f.base_stack(), f.res("aws:iam/policy:Policy", f"{f.APP}-{f.ENV}-rotate-x-policy",
                                   {"policy": f.doc(statement), "tags": tags})]


def test_a_rotation_role_reading_a_managed_master_passes() -> None:
    assert [v for v in run(_with_policy("rotation", READ, MANAGED)) if v.policy == RULE] == []


@pytest.mark.parametrize(("access", "actions", "resource"), [
    ("rotation", [*READ, "secretsmanager:PutSecretValue"], MANAGED),   # writing it: RDS's, not ours
    ("read", READ, MANAGED),                                           # an application role
    ("rotation", READ, MANAGED.rsplit("-", 1)[0] + "-*"),              # not named in full
    ("rotation", READ, f"arn:aws:secretsmanager:{f.REGION}:{f.ACCOUNT}:secret:rds!*"),
])
def test_anything_else_outside_the_prefix_is_found(access: str, actions: list[str], resource: str) -> None:
    found = [v.message for v in run(_with_policy(access, actions, resource)) if v.policy == RULE]
    assert found == [f"Policy {f.APP}-{f.ENV}-rotate-x-policy statement 'ReadManagedAdminCredentials' allows "
                     f"secret {resource!r} outside this stack's '{f.APP}/{f.ENV}/' prefix; grant only this "
                     "environment's secrets."]
