"""Access alerts: the program's rule, evaluated by an EventBridge implementation this project did not write
(moto 5.2.5's events backend, which implements `prefix`, `anything-but` with a list, and `$or` at any depth:
the only operators the rule uses), against CloudTrail records shaped as AWS documents them.

Where the record shapes come from (values generated here; accounts in the 123456789012 style):
- the event envelope (`detail-type` "AWS API Call via CloudTrail", `source` aws.secretsmanager, the record in
  `detail`): EventBridge User Guide, "AWS service events delivered via AWS CloudTrail",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
- `userIdentity` of an assumed role (the role's ARN in `sessionContext.sessionIssuer.arn`, the session's sts ARN
  in `arn`), of an IAM user and of the root user: CloudTrail User Guide, "CloudTrail userIdentity element",
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
- the record's fields (eventSource, eventName, requestParameters as sent with the first letter lower-cased,
  readOnly, errorCode, managementEvent): CloudTrail User Guide, "CloudTrail record contents",
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
- GetSecretValue's `SecretId` (a name or an ARN, full or partial) and BatchGetSecretValue's `SecretIdList` /
  `Filters`, and that a batch writes one GetSecretValue record per secret it returns: Secrets Manager API
  reference, GetSecretValue and BatchGetSecretValue,
  https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_BatchGetSecretValue.html
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from preview.cli import Report, main
from preview.model import plain
from tests.conftest import REPO, run_stack

RULE = "aws:cloudwatch/eventRule:EventRule"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "ap-southeast-2"  # the root stacks' aws:region


def role_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assumed_role(role: str, account: str = ACCOUNT) -> dict[str, Any]:
    """An assumed role's userIdentity, as the CloudTrail userIdentity page shows it."""
    name = role.rsplit("/", 1)[1]
    principal = "AROA" + uuid.uuid4().hex[:17].upper()
    return {
        "type": "AssumedRole", "principalId": f"{principal}:session-{uuid.uuid4().hex[:8]}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/session-{uuid.uuid4().hex[:8]}",
        "accountId": account, "accessKeyId": "ASIA" + uuid.uuid4().hex[:16].upper(),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": principal, "arn": role, "accountId": account,
                              "userName": name},
            "attributes": {"mfaAuthenticated": "false", "creationDate": "2026-12-01T02:00:00Z"},
        },
    }


def iam_user(name: str) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": "AIDA" + uuid.uuid4().hex[:17].upper(),
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT,
            "accessKeyId": "AKIA" + uuid.uuid4().hex[:16].upper(), "userName": name}


def root_user() -> dict[str, Any]:
    return {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT,
            "accessKeyId": "ASIA" + uuid.uuid4().hex[:16].upper()}


def record(identity: dict[str, Any], event: str, request: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    """A CloudTrail record of a Secrets Manager read, as EventBridge puts it in `detail`."""
    detail: dict[str, Any] = {
        "eventVersion": "1.10", "userIdentity": identity, "eventTime": "2026-12-01T02:17:48Z",
        "eventSource": "secretsmanager.amazonaws.com", "eventName": event, "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.23", "userAgent": "aws-cli/2.22.0",
        "requestParameters": request, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": True,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        detail.update(errorCode=error, errorMessage="User is not authorized to perform: secretsmanager:GetSecretValue")
    return detail


def get(identity: dict[str, Any], secret_id: str, error: str | None = None) -> dict[str, Any]:
    return record(identity, "GetSecretValue", {"secretId": secret_id}, error)


def batch(identity: dict[str, Any], ids: list[str] | None = None,
          filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return record(identity, "BatchGetSecretValue", {"secretIdList": ids} if ids is not None else {"filters": filters})


def name_of(secret: str, env: str = "production", app: str = "filot") -> str:
    return f"{app}/{env}/{secret}"


def arn_of(secret: str, env: str = "production", account: str = ACCOUNT, suffix: str = "-AbCdEf") -> str:
    return f"arn:aws:secretsmanager:{REGION}:{account}:secret:filot/{env}/{secret}{suffix}"


def access_rules(report: Report) -> list[Any]:
    return [r for r in report.run.resources if r.type == RULE and "access-alerts" in r.name]


@pytest.fixture(scope="module")
def production() -> Report:
    return run_stack("production")


@pytest.fixture()
def eventbridge(production: Report, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    """moto's default bus with the stack's access rule (its exact pattern and state), sending to a queue."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    (rule,) = access_rules(production)
    with on_call(plain(rule.inputs), REGION) as bus:
        yield bus


@contextmanager
def on_call(rule: dict[str, Any], region: str) -> Iterator[tuple[Any, Any, str]]:
    """moto's default bus in `region` with the rule as declared (name, pattern, state), sending to a queue."""
    with mock_aws():
        events = boto3.client("events", region_name=region)
        sqs = boto3.client("sqs", region_name=region)
        queue = sqs.create_queue(QueueName="on-call")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule["name"], EventPattern=rule["eventPattern"], State=rule["state"])
        events.put_targets(Rule=rule["name"], Targets=[{"Id": "on-call", "Arn": queue_arn}])
        yield events, sqs, queue


def deliver(eventbridge: tuple[Any, Any, str], details: list[dict[str, Any]]) -> set[str]:
    """Put the records on the default bus as CloudTrail does; the eventIDs that reached on-call."""
    events, sqs, queue = eventbridge
    for start in range(0, len(details), 10):
        answer = events.put_events(Entries=[
            {"Source": "aws.secretsmanager", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(d),
             "Resources": []} for d in details[start:start + 10]])
        assert answer["FailedEntryCount"] == 0, answer
    received: set[str] = set()
    while batch_ := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received |= {json.loads(m["Body"])["detail"]["eventID"] for m in batch_}
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch_)])
    return received


def rotation_roles(report: Report) -> list[str]:
    return sorted(role_arn(r.inputs["name"]) for r in report.run.resources
                  if r.type == "aws:iam/role:Role" and plain(r.inputs).get("tags", {}).get("access") == "rotation")


def test_the_stacks_own_roles_do_not_alert(production: Report, eventbridge: tuple[Any, Any, str]) -> None:
    """The consumers (runtime, api, worker), CI (the deploy role) and every rotation role, as Pulumi.production.yaml
    and the rotation functions name them, read by name and by ARN without an alert."""
    rotation = rotation_roles(production)
    assert len(rotation) == 3, rotation
    own = [role_arn(f"filot-production-{n}") for n in ("app", "api", "worker", "deploy")] + rotation
    reads = [get(assumed_role(r), s) for r in own for s in (name_of("redis"), arn_of("jwt-secret"))]
    reads += [batch(assumed_role(r), [name_of("redis"), arn_of("openai-api-key")]) for r in own]
    assert deliver(eventbridge, reads) == set()


def test_a_stranger_s_read_alerts(eventbridge: tuple[Any, Any, str]) -> None:
    strangers = [
        get(assumed_role(role_arn("filot-production-debug")), name_of("redis")),
        get(assumed_role(role_arn("filot-production-api-admin")), arn_of("redis")),  # a known role's name + more
        get(assumed_role(role_arn("filot-staging-api")), name_of("redis")),           # another environment's role
        get(assumed_role(role_arn("filot-production-api", OTHER_ACCOUNT), OTHER_ACCOUNT), arn_of("redis")),
        get(iam_user("alice"), arn_of("redis", suffix="")),                          # a partial ARN
        get(root_user(), name_of("jwt-secret")),
        get(assumed_role(role_arn("filot-production-debug")), name_of("redis"), error="AccessDenied"),
    ]
    assert deliver(eventbridge, strangers) == {d["eventID"] for d in strangers}


def test_only_this_environments_secrets_alert(eventbridge: tuple[Any, Any, str]) -> None:
    stranger = assumed_role(role_arn("filot-production-debug"))
    elsewhere = [
        get(stranger, name_of("redis", env="staging")),
        get(stranger, arn_of("redis", env="staging")),
        get(stranger, name_of("redis", app="filot-legacy")),
        get(stranger, arn_of("redis", account=OTHER_ACCOUNT)),
        get(stranger, f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:filot/production/redis-AbCdEf"),
        get(stranger, "filot/production"),  # no secret of ours is named so
    ]
    assert deliver(eventbridge, elsewhere) == set()


def test_a_batch_alerts_when_its_list_names_one_of_ours(eventbridge: tuple[Any, Any, str]) -> None:
    stranger = assumed_role(role_arn("filot-production-debug"))
    mixed = batch(stranger, [name_of("redis", env="staging"), arn_of("redis")])
    others = batch(stranger, [name_of("redis", env="staging"), name_of("x", app="filot-legacy")])
    assert deliver(eventbridge, [mixed, others]) == {mixed["eventID"]}


def test_a_batch_by_filters_alerts_through_the_per_secret_records(eventbridge: tuple[Any, Any, str]) -> None:
    """A batch selected by filters names no secret in its own record; AWS writes one GetSecretValue record per
    secret it returns (API reference, BatchGetSecretValue), and those alert."""
    stranger = assumed_role(role_arn("filot-production-debug"))
    by_filter = batch(stranger, filters=[{"key": "tag-value", "values": ["production"]}])
    per_secret = [get(stranger, arn_of(s)) for s in ("redis", "jwt-secret")]
    assert deliver(eventbridge, [by_filter, *per_secret]) == {d["eventID"] for d in per_secret}


def test_writes_and_other_services_do_not_alert(eventbridge: tuple[Any, Any, str]) -> None:
    stranger = assumed_role(role_arn("filot-production-debug"))
    other = [record(stranger, "DescribeSecret", {"secretId": name_of("redis")}),
             record(stranger, "PutSecretValue", {"secretId": name_of("redis")})]
    assert deliver(eventbridge, other) == set()


def test_the_rule_receives_read_only_management_events_on_the_default_bus(production: Report) -> None:
    """EventBridge matches read-only management events (GetSecretValue) only on a rule in state
    ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS (EventBridge User Guide, "Receiving read-only management events
    from AWS services"); CloudTrail delivers to the default bus (User Guide, "AWS service events delivered via AWS
    CloudTrail")."""
    (rule,) = access_rules(production)
    inputs = plain(rule.inputs)
    assert inputs["state"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    assert inputs.get("eventBusName", "default") == "default"
    assert "isEnabled" not in inputs  # the provider refuses is_enabled together with state


def test_the_rotation_alerts_topic_lets_exactly_the_two_rules_publish(production: Report) -> None:
    (rule,) = access_rules(production)
    target = next(r for r in production.run.resources if r.type == "aws:cloudwatch/eventTarget:EventTarget"
                  and "access-alerts" in r.name)
    (policy,) = [r for r in production.run.resources if r.type == TOPIC_POLICY]
    assert plain(target.inputs)["arn"] == plain(policy.inputs)["arn"]  # the rotation alerts topic
    (statement,) = [s for s in json.loads(plain(policy.inputs)["policy"])["Statement"]
                    if s["Principal"] == {"Service": "events.amazonaws.com"}]
    rules = {r.inputs["name"] for r in production.run.resources if r.type == RULE}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": sorted(
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{n}" for n in rules)}}
    assert f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.inputs['name']}" in statement["Condition"]["ArnEquals"][
        "aws:SourceArn"]


def test_the_output_names_the_topic_on_call_subscribes_to(production: Report) -> None:
    outputs = production.run.outputs
    assert outputs["accessAlertsTopicArn"] == outputs["rotationAlertsTopicArn"]


def staging(tmp_path: Path, text: str) -> tuple[int, str, str]:
    """The offline preview of staging with `text` as its stack file."""
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(REPO), "--no-policies", "--config-file", str(config)], out=out,
                err=err)
    return code, out.getvalue(), err.getvalue()


def test_staging_has_none_unless_its_stack_file_says(tmp_path: Path) -> None:
    assert access_rules(run_stack("staging")) == []
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text((REPO / "Pulumi.staging.yaml").read_text() + "  secrets-platform:accessAlerts: own-topic\n")
    report = run_stack("staging", config_file=config)
    (rule,) = access_rules(report)
    topics = {r.inputs["name"]: r for r in report.run.resources if r.type == "aws:sns/topic:Topic"}
    assert set(topics) == {"filot-staging-rotation-failures", "filot-staging-secret-reads"}
    policies = [plain(r.inputs) for r in report.run.resources if r.type == TOPIC_POLICY]
    own = next(p for p in policies if p["arn"].endswith(":filot-staging-secret-reads"))
    (statement,) = json.loads(own["policy"])["Statement"]
    assert statement["Action"] == "sns:Publish" and statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {
        "aws:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.inputs['name']}"}}
    rotation = next(p for p in policies if p["arn"].endswith(":filot-staging-rotation-failures"))
    assert rule.inputs["name"] not in rotation["policy"]  # its own topic: the rotation topic is not opened to it
    assert report.run.outputs["accessAlertsTopicArn"].endswith(":filot-staging-secret-reads")


def test_production_off_is_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "Pulumi.production.yaml"
    config.write_text((REPO / "Pulumi.production.yaml").read_text() + "  secrets-platform:accessAlerts: 'off'\n")
    report = run_stack("production", config_file=config)
    assert access_rules(report) == []
    assert any("accessAlerts is off" in w for w in report.run.warnings), report.run.warnings


@pytest.mark.parametrize("value", ["sometimes", "'" + "x" * 5000 + "'", '"on\\0"', "[on]", "{topic: own}"])
def test_a_bad_setting_is_one_line_naming_the_key(tmp_path: Path, value: str) -> None:
    code, out, err = staging(tmp_path, (REPO / "Pulumi.staging.yaml").read_text()
                             + f"  secrets-platform:accessAlerts: {value}\n")
    assert code == 2, err
    assert out == ""
    (line,) = err.strip().splitlines()
    assert "Pulumi.staging.yaml" in line and "secrets-platform:accessAlerts" in line, line
    assert "Traceback" not in err and len(line) < 400, line


def test_a_pattern_over_eventbridge_s_limit_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    """PutRule's EventPattern takes at most 4,096 characters (botocore's `events` model): 80 runtime roles do not
    fit, and the stack stops with one line instead of failing at `pulumi up`."""
    roles = "".join(f"\n      - filot-staging-reader-{i:03d}" for i in range(80))
    text = (REPO / "Pulumi.staging.yaml").read_text().replace(
        "    runtime:\n      - arn:aws:iam::123456789012:role/filot-staging-app",
        "    runtime:\n      - arn:aws:iam::123456789012:role/filot-staging-app" + roles)
    assert text.count("filot-staging-reader-") == 80
    code, out, err = staging(tmp_path, text + "  secrets-platform:accessAlerts: 'on'\n")
    assert code == 2, err
    assert out == ""
    (line,) = err.strip().splitlines()
    assert "secrets-platform:accessAlerts" in line and "4,096" in line, line


def test_a_role_of_another_account_the_catalog_shares_with_does_not_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    """ledgerly shares renderer-token with a role of its batch account (`shared_with`): CloudTrail delivers the
    call to the resource owner too (EventBridge User Guide, "AWS service events delivered via AWS CloudTrail"),
    with that role as the session issuer; the same account's other roles still alert."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    report = run_stack("production", REPO, REPO / "examples" / "ledgerly" / "Pulumi.production.yaml")
    (rule,) = access_rules(report)
    inputs = plain(rule.inputs)
    region = report.run.stack.values["aws:region"]
    secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:ledgerly/production/renderer-token-AbCdEf"
    shared = get(assumed_role(role_arn("ledgerly-batch-renderer", "345678901234"), "345678901234"), secret)
    neighbour = get(assumed_role(role_arn("ledgerly-batch-other", "345678901234"), "345678901234"), secret)
    for detail in (shared, neighbour):
        detail["awsRegion"] = region
    with on_call(inputs, region) as bus:
        assert deliver(bus, [shared, neighbour]) == {neighbour["eventID"]}


def test_without_rotation_functions_it_has_its_own_topic_and_knows_the_managed_external_role(
        make_project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack whose only rotation is Secrets Manager's own (a managed external secret) has no rotation alerts
    topic: the alerts get a topic of their own, and the role Secrets Manager rotates as is a known role."""
    from tests.test_managed_external import STACK, VALUES, catalog

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    report = run_stack("staging", make_project(catalog(), STACK + VALUES + "  secrets-platform:accessAlerts: 'on'\n"))
    (rule,) = access_rules(report)
    topics = [r.inputs["name"] for r in report.run.resources if r.type == "aws:sns/topic:Topic"]
    assert topics == ["shop-staging-secret-reads"]
    # The roles: Secrets Manager's for the managed external secret, and the first-value function's (which
    # never reads a value, so it is not a known reader).
    (role,) = [r.inputs["name"] for r in report.run.resources
               if r.type == "aws:iam/role:Role" and "first-value" not in r.inputs["name"]]
    region, account = "eu-west-1", "210987654321"  # MINIMAL_STACK's
    secret = f"arn:aws:secretsmanager:{region}:{account}:secret:shop/staging/crm-AbCdEf"
    rotating = get(assumed_role(role_arn(role, account), account), secret)
    stranger = get(assumed_role(role_arn("shop-staging-debug", account), account), secret)
    inputs = plain(rule.inputs)
    with on_call(inputs, region) as bus:
        assert deliver(bus, [rotating, stranger]) == {stranger["eventID"]}
