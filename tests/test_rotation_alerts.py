"""The rotation alerts rule, evaluated by an EventBridge implementation this project did not write (moto's
events backend): the pattern the program declares is put on a rule with an SQS target, and sample
Secrets Manager events go through `PutEvents`. Every failure kind of this environment's secrets reaches
the queue; success events and other environments' failures do not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from preview.cli import Report
from tests.conftest import run_stack

RULE = "aws:cloudwatch/eventRule:EventRule"
ACCOUNT = "123456789012"  # the stacks' accountId under the preview's mocks

# The rotation log entries of AWS's "AWS CloudTrail entries for Secrets Manager" page, written out here
# (not imported from the component) so that the test checks the component against the page.
FAILURES = ("RotationFailed", "RotationAbandoned", "TestRotationFailed")
SUCCESSES = ("RotationStarted", "RotationSucceeded", "TestRotationStarted", "TestRotationSucceeded")


@pytest.fixture(scope="module", params=["staging", "production"])
def report(request: pytest.FixtureRequest) -> Report:
    return run_stack(request.param)


@pytest.fixture()
def eventbridge(report: Report, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    """moto's EventBridge with the stack's rule (its exact pattern) sending to an SQS queue."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    region = report.run.stack.values["aws:region"]
    (rule,) = [r for r in report.run.resources if r.type == RULE and "rotation-alerts" in r.name]
    assert rule.inputs.get("eventBusName", "default") == "default", "AWS service events arrive on the default bus"
    with mock_aws():
        events = boto3.client("events", region_name=region)
        sqs = boto3.client("sqs", region_name=region)
        queue = sqs.create_queue(QueueName="on-call")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule.inputs["name"], EventPattern=rule.inputs["eventPattern"])
        events.put_targets(Rule=rule.inputs["name"], Targets=[{"Id": "on-call", "Arn": queue_arn}])
        yield events, sqs, queue


def cloudtrail_event(name: str, secret_arn: str, region: str, shape: str = "additionalEventData") -> dict[str, Any]:
    """A Secrets Manager rotation log entry as AWS's example shows it (RotationFailed), with the secret
    named where `shape` says."""
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": ACCOUNT, "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": "2026-11-30T02:17:48Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"Rotation-{secret_arn}-{uuid.uuid4()}",
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if shape == "additionalEventData":
        detail["additionalEventData"] = {"SecretId": secret_arn}
    else:
        detail["serviceEventDetails"] = {"secretId": secret_arn}
    if name.endswith("Failed"):
        detail["errorMessage"] = "Error when executing lambda during setSecret step"
    return detail


def deliver(eventbridge: tuple[Any, Any, str], details: list[dict[str, Any]],
            detail_type: str = "AWS Service Event via CloudTrail") -> set[str]:
    """Put the events on the default bus; the eventIDs that reached the on-call queue."""
    events, sqs, queue = eventbridge
    for start in range(0, len(details), 10):  # PutEvents takes at most 10 entries
        answer = events.put_events(Entries=[
            {"Source": "aws.secretsmanager", "DetailType": detail_type, "Detail": json.dumps(d), "Resources": []}
            for d in details[start:start + 10]
        ])
        assert answer["FailedEntryCount"] == 0, answer
    received: set[str] = set()
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return received
        received |= {json.loads(m["Body"])["detail"]["eventID"] for m in batch}
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def secret_arn(report: Report, name: str, environment: str | None = None, account: str = ACCOUNT,
               app: str = "filot") -> str:
    region = report.run.stack.values["aws:region"]
    env = environment or report.run.stack.stack
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{app}/{env}/{name}-AbCdEf"


@pytest.mark.parametrize("shape", ["additionalEventData", "serviceEventDetails"])
def test_every_failure_kind_of_this_environment_reaches_on_call(
        report: Report, eventbridge: tuple[Any, Any, str], shape: str) -> None:
    region = report.run.stack.values["aws:region"]
    failures = [cloudtrail_event(n, secret_arn(report, "redis"), region, shape) for n in FAILURES]
    assert deliver(eventbridge, failures) == {d["eventID"] for d in failures}


def test_success_events_do_not_page(report: Report, eventbridge: tuple[Any, Any, str]) -> None:
    region = report.run.stack.values["aws:region"]
    successes = [cloudtrail_event(n, secret_arn(report, "redis"), region, shape)
                 for n in SUCCESSES for shape in ("additionalEventData", "serviceEventDetails")]
    assert deliver(eventbridge, successes) == set()


def test_only_this_environments_secrets_page(report: Report, eventbridge: tuple[Any, Any, str]) -> None:
    region = report.run.stack.values["aws:region"]
    other_env = "production" if report.run.stack.stack == "staging" else "staging"
    elsewhere = [
        secret_arn(report, "redis", environment=other_env),
        secret_arn(report, "redis", account="210987654321"),
        secret_arn(report, "redis", app="filot-legacy"),
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:filot/{report.run.stack.stack}/redis-AbCdEf",
    ]
    others = [cloudtrail_event(n, arn, region) for n in FAILURES for arn in elsewhere]
    mine = cloudtrail_event("RotationFailed", secret_arn(report, "jwt-secret"), region)
    assert deliver(eventbridge, [*others, mine]) == {mine["eventID"]}


def test_an_api_call_with_a_failure_name_is_not_a_rotation_outcome(
        report: Report, eventbridge: tuple[Any, Any, str]) -> None:
    """Only Secrets Manager's service events are outcomes; an API call record never pages."""
    region = report.run.stack.values["aws:region"]
    call = cloudtrail_event("RotationFailed", secret_arn(report, "redis"), region)
    assert deliver(eventbridge, [call], detail_type="AWS API Call via CloudTrail") == set()
