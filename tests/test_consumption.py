"""`secrets-platform:consumption`: how each service reads its secrets, checked against the catalog and AWS's
name rules; consumers that may keep a credential their strategy has revoked (refused in production, a
warning elsewhere); and what the program declares to restart ECS and Lambda consumers after a rotation,
through the offline preview, the policy pack and the access matrix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import consumers
from preview.access_matrix import matrix
from preview.cli import Report, preview
from preview.model import plain
from tests.conftest import current_build
from tests.test_day_one import DB_KEYS
from tests.test_errors import expect_error, run_cli

ACCOUNT = "210987654321"
REGION = "eu-west-1"

CATALOG = f"""\
app: shop
owner: platform
secrets:
  signing-key:
    description: Signs the API's tokens
    class: critical
    rotation: {{strategy: jwt-hs256, every_days: 30}}
    consumers: [api, hook]
    keys:
      key: {{env: JWT_KEY, generate: {{kind: bytes, bytes: 32, encoding: base64url}}}}
  internal-token:
    description: Between the worker and the API
    class: critical
    rotation: {{strategy: token, every_days: 30}}
    consumers: [worker]
    value: {{env: INTERNAL_TOKEN, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}
  db-admin:
    description: admin
    class: critical
    rotation: manual
    rotation_reason: held by the database team
{DB_KEYS.rstrip()}
  database:
    description: the database
    class: critical
    rotation: {{strategy: postgres-single-user, every_days: 30, master: db-admin}}
    consumers: [reports]
{DB_KEYS.rstrip()}
"""

STACK = f"""\
config:
  aws:region: {REGION}
  secrets-platform:accountId: "{ACCOUNT}"
  secrets-platform:recoveryWindowDays: 7
  secrets-platform:allowMissingValues: true
  secrets-platform:rotationSubnetIds: [subnet-0123456789abcdef0]
  secrets-platform:rotationSecurityGroupIds: [sg-0123456789abcdef0]
"""

GOOD = {
    "api": {"kind": "ecs", "cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop", "service": "api"},
    "hook": {"kind": "lambda-cold-start", "function": "shop-hook"},
    "worker": {"kind": "runtime", "cacheTtlSeconds": 300, "tolerateSeconds": 300},
    "reports": {"kind": "runtime", "cacheTtlSeconds": 0},
}


def stack(consumption: Any = None, extra: str = "") -> str:
    text = STACK + extra
    if consumption is not None:
        text += f"  secrets-platform:consumption: {json.dumps(consumption)}\n"
    return text


def with_entry(service: str, entry: Any) -> dict[str, Any]:
    return {**GOOD, service: entry}


# Config errors: one line naming the stack file and the key --------------------------------------------

@pytest.mark.parametrize(("consumption", "key", "fragment"), [
    (with_entry("apii", {"kind": "runtime", "cacheTtlSeconds": 60}), "consumption.apii",
     "is not a consumer of any secret"),
    (with_entry("api", {"kind": "sidecar"}), "consumption.api.kind", "kind 'sidecar' is not one of"),
    (with_entry("api", {"cluster": "shop", "service": "api"}), "consumption.api.kind", "kind missing"),
    (with_entry("api", {"kind": "ecs", "cluster": f"arn:aws:ecs:{REGION}:123456789012:cluster/shop",
                        "service": "api"}), "consumption.api.cluster", "in account 123456789012, not this stack's"),
    (with_entry("api", {"kind": "ecs", "cluster": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/shop",
                        "service": "api"}), "consumption.api.cluster", "not this stack's region eu-west-1"),
    (with_entry("api", {"kind": "ecs", "cluster": "shop", "service": "a" * 256}), "consumption.api.service",
     "1-255 letters"),
    (with_entry("api", {"kind": "ecs", "cluster": "shop/prod", "service": "api"}), "consumption.api.cluster",
     "is not an ECS cluster name"),
    (with_entry("api", {"kind": "ecs", "cluster": "shop"}), "consumption.api.service", "kind ecs needs service"),
    (with_entry("api", {"kind": "ecs", "cluster": "shop", "service": "api", "restart": True}),
     "consumption.api", "unknown key(s) restart"),
    (with_entry("hook", {"kind": "lambda-cold-start", "function": "f" * 65}), "consumption.hook.function",
     "1-64 letters"),
    (with_entry("hook", {"kind": "lambda-cold-start",
                         "function": f"arn:aws:lambda:{REGION}:123456789012:function:shop-hook"}),
     "consumption.hook.function", "in account 123456789012"),
    (with_entry("hook", {"kind": "lambda-cold-start",
                         "function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shop-hook:live"}),
     "consumption.hook.function", "names a version or alias"),
    (with_entry("worker", {"kind": "runtime", "cacheTtlSeconds": "300"}), "consumption.worker.cacheTtlSeconds",
     "not a whole number of seconds"),
    (with_entry("worker", {"kind": "runtime", "cacheTtlSeconds": True}), "consumption.worker.cacheTtlSeconds",
     "not a whole number of seconds"),
    (with_entry("worker", {"kind": "runtime", "cacheTtlSeconds": -1}), "consumption.worker.cacheTtlSeconds",
     "not a whole number of seconds"),
    (with_entry("worker", {"kind": "runtime", "cacheTtlSeconds": 0, "tolerateSeconds": 3601}),
     "consumption.worker.tolerateSeconds", "from 0 to 3600"),
    (with_entry("worker", {"kind": "runtime", "cacheTtlSeconds": 0, "tolerateSeconds": "300"}),
     "consumption.worker.tolerateSeconds", "not a whole number of seconds"),
    (with_entry("api", {"kind": "ecs", "cluster": "shop", "service": "api", "tolerateSeconds": False}),
     "consumption.api.tolerateSeconds", "not a whole number of seconds"),
    (with_entry("hook", {"kind": "lambda-cold-start", "function": "shop-hook", "tolerateSeconds": 1e9}),
     "consumption.hook.tolerateSeconds", "not a whole number of seconds"),
    (["api"], "consumption", "must be a mapping"),
    (with_entry("api", "ecs"), "consumption.api", "must be a mapping with a `kind`"),
])
def test_a_bad_consumption_entry_is_one_line_naming_the_file_and_key(
        make_project: Callable[..., Path], consumption: Any, key: str, fragment: str) -> None:
    line = expect_error(make_project(CATALOG, stack(consumption)), "Pulumi.staging.yaml",
                        f"field 'secrets-platform:{key}'", fragment)
    assert "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" not in line


def test_a_huge_or_binary_name_is_refused_without_being_printed_whole(make_project: Callable[..., Path]) -> None:
    line = expect_error(make_project(CATALOG, stack(with_entry("api", {
        "kind": "ecs", "cluster": "shop", "service": "\x00\x1b[31m" + "x" * 100_000}))),
        "field 'secrets-platform:consumption.api.service'")
    assert len(line) < 400 and "\x1b" not in line


def test_the_name_limits_are_aws_s() -> None:
    """Lambda: the name alone is limited to 64 (the API reference; botocore's 140 is for the ARN form)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    shape = model.operation_model("UpdateFunctionConfiguration").input_shape.members["FunctionName"]
    assert shape.metadata["max"] == 140  # name or ARN
    assert consumers.FUNCTION_NAME.fullmatch("f" * 64) and not consumers.FUNCTION_NAME.fullmatch("f" * 65)
    assert consumers.ECS_NAME.fullmatch("s" * 255) and not consumers.ECS_NAME.fullmatch("s" * 256)


# The old credential lives until consumers have the new one --------------------------------------------

def test_a_single_user_database_read_at_start_is_refused_in_production(make_project: Callable[..., Path]) -> None:
    without_reports = {k: v for k, v in GOOD.items() if k != "reports"}
    line = expect_error(make_project(CATALOG, stack(without_reports), stack="production"),
                        "Pulumi.production.yaml", "field 'secrets-platform:consumption.reports'",
                        "'database'", "until it restarts (no consumption entry)", "at setSecret",
                        "use postgres-alternating-users, or read it per use", stack="production")
    assert line.count("\n") == 0


@pytest.mark.parametrize(("service", "entry"), [
    # A five-minute cache: within a rotation period for the kept-previous strategies, not for the others.
    ("reports", {"kind": "runtime", "cacheTtlSeconds": 300}),
    ("reports", {"kind": "runtime", "cacheTtlSeconds": 1}),
    ("worker", {"kind": "runtime", "cacheTtlSeconds": 1}),
    ("worker", {"kind": "runtime", "cacheTtlSeconds": 300, "tolerateSeconds": 299}),
    ("reports", {"kind": "ecs", "cluster": "shop", "service": "reports", "tolerateSeconds": 1499}),
])
def test_production_accepts_no_failed_login_it_was_not_told_to(
        make_project: Callable[..., Path], service: str, entry: dict[str, Any]) -> None:
    """The tolerance is 0 s unless the consumer's `tolerateSeconds` covers how long it may hold the old value."""
    expect_error(make_project(CATALOG, stack(with_entry(service, entry)), stack="production"),
                 f"field 'secrets-platform:consumption.{service}'", "or accept failed logins for that long: "
                 "tolerateSeconds", stack="production")


@pytest.mark.parametrize(("service", "entry", "seconds"), [
    ("reports", {"kind": "runtime", "cacheTtlSeconds": 300, "tolerateSeconds": 300}, 300),
    ("reports", {"kind": "ecs", "cluster": "shop", "service": "reports", "tolerateSeconds": 1500}, 1500),
])
def test_a_stated_tolerance_is_accepted_in_production_and_named_on_every_preview(
        make_project: Callable[..., Path], service: str, entry: dict[str, Any], seconds: int) -> None:
    code, out, err = run_cli(make_project(CATALOG, stack(with_entry(service, entry)), stack="production"),
                             "production")
    assert code == 0, err
    warnings = out.split("\nWarnings (", 1)[1]
    assert (f"'{service}' may fail to log in with 'database' for up to {seconds} s after each rotation "
            f"(postgres-single-user revokes the old value at setSecret); accepted by its tolerateSeconds") in warnings
    assert "'worker' may fail to log in with 'internal-token' for up to 300 s" in warnings


def test_the_hazard_bound_is_how_long_the_consumer_outlives_the_old_value() -> None:
    """Kept-previous strategies (alternating users, Redis, JWT) let a consumer hold the old value for one rotation
    period; a one-second-longer cache is a hazard, and the failing time is what exceeds the period."""
    from components.catalog import Rotation

    period = 30 * 86400
    for strategy in ("postgres-alternating-users", "redis-acl", "jwt-hs256"):
        rotation = Rotation(strategy=strategy, every_days=30)
        assert consumers.old_value_lives(rotation) == period
    for strategy in ("postgres-single-user", "token"):
        assert consumers.old_value_lives(Rotation(strategy=strategy, every_days=30)) == 0
    hazard = consumers.Hazard("s", "c", "redis-acl", period + 1, period, tolerated=1)
    assert hazard.failing_seconds == 1 and hazard.accepted
    assert not consumers.Hazard("s", "c", "redis-acl", period + 2, period, tolerated=1).accepted
    assert not consumers.Hazard("s", "c", "token", None, 0, tolerated=3600).accepted


@pytest.mark.parametrize(("service", "entry", "fragment"), [
    ("reports", {"kind": "runtime", "cacheTtlSeconds": 3600}, "for up to 3600 s"),
    ("reports", {"kind": "ecs", "cluster": "shop", "service": "reports"}, "for up to 1500 s"),
    ("worker", {"kind": "ecs", "cluster": "shop", "service": "worker"}, "token revokes it at once"),
    ("api", {"kind": "runtime", "cacheTtlSeconds": 31 * 86400}, "jwt-hs256 revokes it at the next rotation"),
])
def test_a_consumer_slower_than_its_strategy_is_refused_in_production(
        make_project: Callable[..., Path], service: str, entry: dict[str, Any], fragment: str) -> None:
    expect_error(make_project(CATALOG, stack(with_entry(service, entry)), stack="production"),
                 f"field 'secrets-platform:consumption.{service}'", fragment, stack="production")


def test_elsewhere_the_same_combination_is_a_warning(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, stack({k: v for k, v in GOOD.items() if k != "reports"}))
    code, out, err = run_cli(project)
    assert code == 0, err
    warnings = out.split("\nWarnings (", 1)[1]
    assert "'reports' may keep the old value of 'database' until it restarts" in warnings
    assert "'api'" not in warnings
    assert "'worker' may fail to log in with 'internal-token' for up to 300 s" in warnings  # its own tolerance


def test_restarted_and_short_cached_consumers_pass_in_production(make_project: Callable[..., Path]) -> None:
    code, _, err = run_cli(make_project(CATALOG, stack(GOOD), stack="production"), "production")
    assert code == 0, err


# What the program declares -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    project = tmp_path_factory.mktemp("restarts")
    shutil_copy = __import__("shutil").copy
    from tests.conftest import REPO

    shutil_copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "catalog.yaml").write_text(CATALOG)
    (project / "Pulumi.staging.yaml").write_text(stack(GOOD))
    current_build(project)
    return preview("staging", project, policies=True)


def of(report: Report, token: str) -> list[Any]:
    return [r for r in report.run.resources if r.type == token and "restart-consumers" in r.name]


def test_the_restart_policy_names_exactly_the_consumers(report: Report) -> None:
    (policy,) = of(report, "aws:iam/policy:Policy")
    statements = {s["Sid"]: s for s in json.loads(plain(policy.inputs)["policy"])["Statement"]}
    assert statements["RedeployConsumerServices"]["Action"] == ["ecs:DescribeServices", "ecs:UpdateService"]
    assert statements["RedeployConsumerServices"]["Resource"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shop/api"
    assert statements["RestartConsumerFunctions"]["Resource"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shop-hook"
    assert statements["ReceiveRotationEvents"]["Resource"].startswith(f"arn:aws:sqs:{REGION}:{ACCOUNT}:")
    actions = [a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.startswith(("secretsmanager:", "kms:"))]
    (function,) = of(report, "aws:lambda/function:Function")
    targets = json.loads(plain(function.inputs)["environment"]["variables"]["CONSUMER_TARGETS"])
    # The runtime readers (worker, reports) are not restarted; the token and the database restart nobody.
    assert targets == {"targets": {"api": {"kind": "ecs", "cluster": "shop", "service": "api"},
                                   "hook": {"kind": "lambda", "function": "shop-hook"}},
                       "secrets": {"shop/staging/signing-key": ["api", "hook"]}}


def test_the_queue_delays_by_the_window_and_only_the_rule_sends(report: Report) -> None:
    queues = {r.name.rsplit("-", 1)[-1]: plain(r.inputs) for r in of(report, "aws:sqs/queue:Queue")}
    assert queues["queue"]["delaySeconds"] == consumers.RESTART_WINDOW_SECONDS <= consumers.SQS_MAX_DELAY_SECONDS
    redrive = json.loads(queues["queue"]["redrivePolicy"])
    assert redrive["maxReceiveCount"] == 5 and redrive["deadLetterTargetArn"].endswith(queues["dlq"]["name"])
    (policy,) = of(report, "aws:sqs/queuePolicy:QueuePolicy")
    (statement,) = json.loads(plain(policy.inputs)["policy"])["Statement"]
    (rule,) = of(report, "aws:cloudwatch/eventRule:EventRule")
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:"
                                                                      f"rule/{rule.inputs['name']}"}}


def test_failures_reach_the_rotation_alerts_topic(report: Report) -> None:
    alarms = of(report, "aws:cloudwatch/metricAlarm:MetricAlarm")
    assert {a.inputs["metricName"] for a in alarms} == {"ApproximateNumberOfMessagesVisible", "Errors"}
    topic = next(r for r in report.run.resources if r.type == "aws:sns/topic:Topic")
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic.inputs['name']}"
    assert all(plain(a.inputs)["alarmActions"] == [topic_arn] for a in alarms)
    topic_policy = next(r for r in report.run.resources if r.type == "aws:sns/topicPolicy:TopicPolicy")
    statements = {s["Sid"]: s for s in json.loads(plain(topic_policy.inputs)["policy"])["Statement"]}
    pattern = statements["AlarmsOfThisEnvironmentPublish"]["Condition"]["ArnLike"]["aws:SourceArn"]
    from preview.access_matrix import wildcard_match

    for alarm in alarms:
        assert wildcard_match(pattern, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm.inputs['name']}")
    assert not wildcard_match(pattern, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shop-production-restart-x")


def test_the_policy_pack_has_no_finding_on_the_restarts(report: Report) -> None:
    assert of(report, "aws:lambda/function:Function"), "the restarts must be declared"
    mine = [v for v in report.violations if "restart-consumers" in (v.urn or "")]
    assert mine == []


def test_the_access_matrix_shows_the_restart_role_reading_nothing(report: Report) -> None:
    decisions = matrix(report.run.resources, account_id=ACCOUNT, region=REGION)
    mine = [d for d in decisions if "restart-consumers" in d.principal]
    assert mine, "the restart role is a principal of the matrix"
    assert {d.decision for d in mine} == {"ImplicitlyDenied"}


def test_without_restarted_consumers_nothing_is_declared(make_project: Callable[..., Path]) -> None:
    only_runtime = {k: v for k, v in GOOD.items() if v["kind"] == "runtime"}
    project = make_project(CATALOG, stack(only_runtime))
    code, out, err = run_cli(project)
    assert code == 0, err
    assert "restart-consumers" not in out


def test_the_cost_counts_the_queue_the_function_and_the_alarms(report: Report,
                                                               make_project: Callable[..., Path]) -> None:
    from preview.cost import estimate

    only_runtime = {k: v for k, v in GOOD.items() if v["kind"] == "runtime"}
    project = make_project(CATALOG, stack(only_runtime))
    current_build(project)
    without = estimate(preview("staging", project, policies=False).run.resources, region=REGION)
    with_restarts = estimate(report.run.resources, region=REGION)
    days = 730 / 24
    # By hand: three secrets rotate every 30 days; each success is one message and one 1-s invocation at
    # 128 MB. Lambda long-polls the queue with 5 connections of 20 s all month. Two alarms at USD 0.10.
    messages = 3 * days / 30
    sqs = (5 * 730 * 3600 / 20 + 3 * messages) / 1_000_000 * 0.40
    function = messages / 1_000_000 * 0.20 + messages * 1 * 128 / 1024 * 0.0000166667
    alarms = 2 * 0.10
    assert "restartQueueRequests" not in without["lines"]
    lines = with_restarts["lines"]
    assert lines["restartQueueRequests"]["monthlyUsd"] == pytest.approx(sqs, abs=1e-4)
    assert lines["restartFunction"]["quantity"] == pytest.approx(messages, abs=1e-4)
    assert lines["alarms"]["monthlyUsd"] == pytest.approx(alarms)
    assert with_restarts["monthlyUsd"] - without["monthlyUsd"] == pytest.approx(sqs + function + alarms, abs=0.011)
    # The restart function is not a rotation function: the rotations' Lambda lines are unchanged.
    assert lines["lambdaRequests"] == without["lines"]["lambdaRequests"]


def test_parliament_finds_nothing_in_the_restart_and_queue_policies(report: Report) -> None:
    """The same linter the access tests run on every other document (tests/access/test_access_lint.py)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parliament

        for token in ("aws:iam/policy:Policy", "aws:sqs/queuePolicy:QueuePolicy"):
            (resource,) = of(report, token)
            found = parliament.analyze_policy_string(plain(resource.inputs)["policy"], include_community_auditors=True)
            assert [f"{f.issue} {f.location}" for f in found.findings] == [], token
    assert report.policy_config is not None, "the policy pack ran"


def test_the_consumption_key_is_plain_config(make_project: Callable[..., Path]) -> None:
    """It names clusters, services and functions, which appear in ARNs: refused when set with --secret."""
    secured = STACK + "  secrets-platform:consumption:\n    secure: v1:" + "A" * 44 + "\n"
    line = expect_error(make_project(CATALOG, secured),
                        "field 'secrets-platform:consumption'", "is set with --secret")
    assert "AAAA" not in line


def test_a_nested_kind_is_refused_in_one_line_and_a_deep_one_by_the_loader(make_project: Callable[..., Path]) -> None:
    nested: Any = {"kind": "runtime", "cacheTtlSeconds": 60}
    for _ in range(4):
        nested = {"kind": nested}
    line = expect_error(make_project(CATALOG, stack(with_entry("worker", nested))),
                        "field 'secrets-platform:consumption.worker.kind'", "is not one of")
    assert len(line) < 300
    deep: Any = nested
    for _ in range(50):
        deep = {"kind": deep}
    expect_error(make_project(CATALOG, stack(with_entry("worker", deep))), "Pulumi.staging.yaml",
                 "nests deeper than 32 levels")


def test_two_consumers_on_one_service_grant_it_once() -> None:
    from components import grants

    service = consumers.EcsService(cluster="shop", service="api").arn(REGION, ACCOUNT)
    (redeploy, *_) = grants.consumer_restart_statements([service, service], [], "arn:aws:sqs:q", "arn:aws:logs:l")
    assert redeploy.resources == (service,)
    assert redeploy.actions == ("ecs:DescribeServices", "ecs:UpdateService")


def test_a_token_whose_checkers_accept_the_previous_value_keeps_it_for_a_period(
        make_project: Callable[..., Path]) -> None:
    """`previous_accepted: true`: the old token works until the next rotation, so a restarted ECS consumer (1,500 s)
    is accepted in production with no tolerance; without it the same consumer is refused."""
    ecs = with_entry("worker", {"kind": "ecs", "cluster": "shop", "service": "worker"})
    refused = expect_error(make_project(CATALOG, stack(ecs), stack="production"),
                           "field 'secrets-platform:consumption.worker'", "token revokes it at once",
                           "rotation.previous_accepted: true", stack="production")
    assert "tolerateSeconds" in refused
    accepting = CATALOG.replace("rotation: {strategy: token, every_days: 30}",
                                "rotation: {strategy: token, every_days: 30, previous_accepted: true}")
    assert accepting != CATALOG
    code, out, err = run_cli(make_project(accepting, stack(ecs), stack="production"), "production")
    assert code == 0, err
    warnings = out.split("\nWarnings (", 1)[1] if "\nWarnings (" in out else ""
    assert "'worker'" not in warnings


@pytest.mark.parametrize("strategy", ["postgres-single-user", "jwt-hs256"])
def test_previous_accepted_is_for_tokens_only(make_project: Callable[..., Path], strategy: str) -> None:
    catalog = CATALOG.replace("rotation: {strategy: postgres-single-user, every_days: 30, master: db-admin}",
                              "rotation: {strategy: postgres-single-user, every_days: 30, master: db-admin, "
                              "previous_accepted: true}") if strategy == "postgres-single-user" else CATALOG.replace(
        "rotation: {strategy: jwt-hs256, every_days: 30}", "rotation: {strategy: jwt-hs256, every_days: 30, "
        "previous_accepted: true}")
    assert catalog != CATALOG
    secret = "database" if strategy == "postgres-single-user" else "signing-key"
    expect_error(make_project(catalog, stack(GOOD)), "catalog.yaml", secret, "rotation",
                 "'previous_accepted' is for token secrets only")
