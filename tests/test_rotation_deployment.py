"""The rotation deployment in both stacks: functions, rights, permissions and schedules."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from components.catalog import Rotation, load_catalog
from components.rotation import GROUP_SIZE
from preview.cli import Report, main
from preview.model import CollectedResource
from tests.conftest import MINIMAL_STACK, REPO, run_stack

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
    # A credential the first rotation installs with its master waits for the master's value.
    waiting = {i["secret"] for i in report.run.outputs["firstInstalls"] if i["status"] == "waits-for-master"}
    expected = {n: r for n, r in rotated(env).items() if n not in waiting}
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
            "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
        ])
        if masters[strategy]:
            read = statements["ReadAdminCredentials"]
            admin = read["Resource"] if isinstance(read["Resource"], list) else [read["Resource"]]
            assert {r.split("/")[-1].removesuffix("-??????") for r in admin} == masters[strategy]
        else:
            assert "ReadAdminCredentials" not in statements
        deny = statements["DenyOtherEnvironments"]
        other = "staging" if env == "production" else "production"
        assert deny["Effect"] == "Deny"
        assert deny["Resource"] == f"arn:aws:secretsmanager:*:123456789012:secret:filot/{other}/*"


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


def test_a_large_catalog_is_split_into_functions_and_policies_that_fit_aws_limits(
    make_project: Callable[..., Path],
) -> None:
    rotated, plain = 60, 240
    lines = ["app: big", "owner: platform", "secrets:"]
    for i in range(rotated):
        lines += [f"  token-{i}:", "    description: a rotated token", "    class: critical",
                  "    rotation: {strategy: token, every_days: 30}", f"    consumers: [svc-{i % 4}]",
                  f"    value: {{env: TOKEN_{i}, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}"]
    for i in range(plain):
        lines += [f"  setting-{i}:", "    description: a plain setting", "    class: configuration",
                  f"    value: {{env: SETTING_{i}, config: {{default: value-{i}}}}}"]
    project = make_project("\n".join(lines) + "\n", MINIMAL_STACK)
    report = run_stack("staging", project)
    functions = of_type(report, FUNCTION)
    expected_groups = -(-rotated // GROUP_SIZE)
    assert len(functions) == expected_groups
    targets = [json.loads(f.inputs["environment"]["variables"]["ROTATION_TARGETS"]) for f in functions]
    assert sorted(n for t in targets for n in t) == sorted(f"big/staging/token-{i}" for i in range(rotated))
    for fn in functions:
        size = sum(len(k) + len(v) for k, v in fn.inputs["environment"]["variables"].items())
        assert size <= 4096, fn.urn
    for policy in of_type(report, POLICY):
        assert len(policy.inputs["policy"]) <= 6144, policy.urn


def test_a_service_reading_too_many_secrets_for_one_policy_is_a_clear_error(
    make_project: Callable[..., Path],
) -> None:
    lines = ["app: big", "owner: platform", "secrets:"]
    for i in range(80):
        lines += [f"  setting-{i}:", "    description: a plain setting", "    class: configuration",
                  "    consumers: [api]", f"    value: {{env: SETTING_{i}, config: {{default: value-{i}}}}}"]
    project = make_project("\n".join(lines) + "\n", MINIMAL_STACK)
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(project), "--no-policies"], out=out, err=err)
    assert code == 2
    assert "policy big-staging-api-secrets-read" in err.getvalue() and "limit of 6144" in err.getvalue()


WAITING = """\
app: shop
owner: platform
secrets:
  partner:
    description: Partner API access with a rotated signing token
    class: critical
    rotation: {strategy: token, every_days: 30}
    keys:
      token: {env: PARTNER_TOKEN, generate: {kind: bytes, bytes: 32, encoding: hex}}
      partnerKey: {env: PARTNER_KEY, external: {}}
"""


def test_a_rotated_secret_without_its_value_gets_its_schedule_with_the_value(
    make_project: Callable[..., Path],
) -> None:
    """Secrets Manager tests the function asynchronously when a waiting schedule is set (RotateSecret is
    asynchronous: the deploy succeeds); on an empty secret the test fails (TestRotationFailed, an alert)
    and so would every scheduled rotation. So the schedule waits for the value."""
    project = make_project(WAITING, MINIMAL_STACK)
    out = io.StringIO()
    assert main(["staging", "--project-dir", str(project), "--format", "json"], out=out, err=io.StringIO()) == 0
    preview = json.loads(out.getvalue())
    assert [(g["secret"], g["key"]) for g in preview["actionRequired"]] == [("partner", "partnerKey")]
    types = [r["type"] for r in preview["resources"]]
    assert ROTATION not in types and PERMISSION not in types
    assert FUNCTION in types, "the function and its role are ready for the value"
    assert not [v for v in preview["violations"] if v["policy"] in (
        "rotation-has-first-value", "secret-rotation-required")], preview["violations"]

    # The preview never decrypts: a `secure:` value of the right shape stands for `pulumi config set --secret`.
    with_value = MINIMAL_STACK + "  secrets-platform:partnerPartnerKey:\n    secure: v1:" + "A" * 44 + "\n"
    report = run_stack("staging", make_project(WAITING, with_value))
    (schedule,) = of_type(report, ROTATION)
    assert schedule.inputs["rotateImmediately"] is False
    by_urn = {r.urn: r for r in report.run.resources}
    assert "aws:secretsmanager/secretVersion:SecretVersion" in {by_urn[d].type for d in schedule.dependencies}


SCHEDULES = """\
app: shop
owner: platform
secrets:
""" + "".join(f"""\
  {name}:
    description: a token on the {name} schedule
    class: critical
    rotation: {{strategy: token, {rotation}}}
    value: {{env: {name.upper().replace('-', '_')}, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}
""" for name, rotation in [
    ("days", "every_days: 30"),
    ("days-in-a-window", "every_days: 30, window: 2h"),
    ("one-day-in-a-window", "every_days: 1, window: 2h"),
    ("hours", "schedule: 'rate(6 hours)', window: 6h"),
    ("weekly", "schedule: 'cron(0 18 ? * SAT *)', window: 4h"),
])


def test_a_window_always_comes_with_a_schedule_expression(make_project: Callable[..., Path]) -> None:
    """AWS documents Duration as starting from a ScheduleExpression, and takes AutomaticallyAfterDays or a
    ScheduleExpression, never both (RotationRulesType): with a window, `every_days` goes as rate(N days)."""
    report = run_stack("staging", make_project(SCHEDULES, MINIMAL_STACK))
    by_urn = {r.urn: r for r in report.run.resources}
    rules = {}
    for rotation in of_type(report, ROTATION):
        (secret_urn,) = rotation.property_dependencies["secretId"]
        rules[by_urn[secret_urn].inputs["name"].rsplit("/", 1)[1]] = rotation.inputs["rotationRules"]
    assert rules == {
        "days": {"automaticallyAfterDays": 30},
        "days-in-a-window": {"scheduleExpression": "rate(30 days)", "duration": "2h"},
        "one-day-in-a-window": {"scheduleExpression": "rate(1 day)", "duration": "2h"},
        "hours": {"scheduleExpression": "rate(6 hours)", "duration": "6h"},
        "weekly": {"scheduleExpression": "cron(0 18 ? * SAT *)", "duration": "4h"},
    }
