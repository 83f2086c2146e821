"""The rotation deployment in both stacks: functions, rights, permissions and schedules."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from components.catalog import Rotation, load_catalog
from preview.cli import Report
from preview.model import CollectedResource
from tests.conftest import REPO, run_stack

CATALOG = load_catalog(REPO / "catalog.yaml")
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SECRET = "aws:secretsmanager/secret:Secret"
POLICY = "aws:iam/policy:Policy"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture(scope="module", params=["staging", "production"])
def report(request: pytest.FixtureRequest) -> Report:
    return run_stack(request.param)


def of_type(report: Report, token: str) -> list[CollectedResource]:
    return [r for r in report.run.resources if r.type == token]


def rotated(env: str) -> dict[str, Rotation]:
    return {n: e.rotation for n, e in CATALOG.for_environment(env).items() if isinstance(e.rotation, Rotation)}


def test_one_function_per_strategy_with_exactly_its_secrets(report: Report) -> None:
    env = report.run.stack.stack
    expected: dict[str, set[str]] = defaultdict(set)
    for name, rotation in rotated(env).items():
        expected[rotation.strategy].add(f"filot/{env}/{name}")
    functions = of_type(report, FUNCTION)
    assert len(functions) == len(expected)
    for fn in functions:
        variables = fn.inputs["environment"]["variables"]
        strategy = variables["ROTATION_STRATEGY"]
        assert set(json.loads(variables["ROTATION_TARGETS"])) == expected[strategy], fn.urn
        assert fn.inputs["runtime"] == "python3.12"
        assert fn.inputs["handler"] == "rotation.handler.lambda_handler"


def test_every_rotated_secret_has_the_catalogs_schedule(report: Report) -> None:
    env = report.run.stack.stack
    by_urn = {r.urn: r for r in report.run.resources}
    schedules = {}
    for rotation in of_type(report, ROTATION):
        (secret_urn,) = rotation.property_dependencies["secretId"]
        schedules[by_urn[secret_urn].inputs["name"]] = rotation.inputs["rotationRules"]
    expected = rotated(env)
    assert set(schedules) == {f"filot/{env}/{n}" for n in expected}
    for name, rule in expected.items():
        assert schedules[f"filot/{env}/{name}"]["automaticallyAfterDays"] == rule.every_days


def test_invoke_permissions_are_restricted_to_the_account_and_one_secret(report: Report) -> None:
    by_urn = {r.urn: r for r in report.run.resources}
    permissions = of_type(report, PERMISSION)
    assert len(permissions) == len(of_type(report, ROTATION))
    for permission in permissions:
        assert permission.inputs["principal"] == "secretsmanager.amazonaws.com"
        assert permission.inputs["sourceAccount"] == "123456789012"
        (source,) = permission.property_dependencies["sourceArn"]
        assert by_urn[source].type == SECRET, permission.urn
        assert permission.inputs["sourceArn"].startswith("arn:aws:secretsmanager:")


def test_rotation_roles_may_touch_only_their_secrets(report: Report) -> None:
    env = report.run.stack.stack
    by_strategy: dict[str, set[str]] = defaultdict(set)
    masters: dict[str, set[str]] = defaultdict(set)
    for name, rotation in rotated(env).items():
        by_strategy[rotation.strategy].add(name)
        if rotation.master:
            masters[rotation.strategy].add(rotation.master)
    policies = [p for p in of_type(report, POLICY) if p.inputs["tags"]["access"] == "rotation"]
    assert len(policies) == len(by_strategy)
    for policy in policies:
        strategy = policy.inputs["name"].removeprefix(f"filot-{env}-rotate-").removesuffix("-policy")
        statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        own = statements["RotateOwnSecrets"]
        resources = own["Resource"] if isinstance(own["Resource"], list) else [own["Resource"]]
        named = {r.split(":secret:")[1].removesuffix("-??????").split("/")[-1] for r in resources}
        assert named == by_strategy[strategy], policy.urn
        assert sorted(own["Action"]) == sorted([
            "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
        ])
        if masters[strategy]:
            read = statements["ReadAdminCredentials"]
            admin = read["Resource"] if isinstance(read["Resource"], list) else [read["Resource"]]
            assert {r.split("/")[-1].removesuffix("-??????") for r in admin} == masters[strategy]
        else:
            assert "ReadAdminCredentials" not in statements
        deny = statements["DenyOutsideScope"]
        assert deny["Effect"] == "Deny" and "NotResource" in deny


def test_each_role_has_its_policy_and_the_key_policy_names_the_role(report: Report) -> None:
    roles = {r.inputs["name"]: r for r in of_type(report, ROLE)}
    attached: dict[str, set[str]] = defaultdict(set)
    for attachment in of_type(report, ATTACHMENT):
        attached[attachment.inputs["role"]].add(attachment.inputs["policyArn"])
    for name in roles:
        assert any(arn.endswith(f"{name}-policy") for arn in attached[name]), name
    key = next(k for k in of_type(report, "aws:kms/key:Key") if "region" not in k.inputs)
    statements = json.loads(key.inputs["policy"])["Statement"]
    use = next(s for s in statements if s["Sid"] == "StoreOnlyThroughSecretsManager")
    principals = use["Principal"]["AWS"]
    principals = principals if isinstance(principals, list) else [principals]
    for name in roles:
        assert f"arn:aws:iam::123456789012:role/{name}" in principals


def test_functions_log_with_retention(report: Report) -> None:
    groups = {g.inputs["name"]: g for g in of_type(report, LOG_GROUP)}
    for fn in of_type(report, FUNCTION):
        group = groups[f"/aws/lambda/{fn.inputs['name']}"]
        assert group.inputs["retentionInDays"] >= 30
