"""Where failed rotations of an environment are reported: one EventBridge rule and one SNS topic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, names

# Secrets Manager's rotation outcomes, as CloudTrail records them and EventBridge delivers them on the
# default bus (detail-type "AWS Service Event via CloudTrail"; Secrets Manager User Guide, "AWS
# CloudTrail entries for Secrets Manager", log entries for rotation). Its native EventBridge events
# ("Secret Label Updated") report label moves only, no failure.
ROTATION_FAILURE_EVENTS = (
    "RotationFailed",       # a rotation failed
    "RotationAbandoned",    # a rotation was abandoned (a new version was written during it; AWSPENDING removed)
    "TestRotationFailed",   # the test Secrets Manager runs when a schedule is set without rotating at once failed
)
ROTATION_SUCCESS_EVENTS = ("RotationStarted", "RotationSucceeded", "TestRotationStarted", "TestRotationSucceeded")
"""The other rotation outcomes the same page lists: not alerts."""
SERVICE_EVENT = "AWS Service Event via CloudTrail"
SECRET_ARN_FIELDS = (("additionalEventData", "SecretId"), ("serviceEventDetails", "secretId"))
"""Where an event names its secret. AWS's documented example (RotationFailed) carries it in
additionalEventData.SecretId; users report serviceEventDetails.secretId for some rotation events. AWS
documents no other shape, so the rule matches either (`$or`, EventBridge User Guide "Or matching") and no
event is lost to the field name."""


def event_pattern(secret_arn_prefix: str) -> dict[str, object]:
    """The rule's pattern: every rotation failure of a secret whose ARN starts with the prefix."""
    return {
        "source": ["aws.secretsmanager"],
        "detail-type": [SERVICE_EVENT],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": list(ROTATION_FAILURE_EVENTS),
            "$or": [{outer: {inner: [{"prefix": secret_arn_prefix}]}} for outer, inner in SECRET_ARN_FIELDS],
        },
    }


@dataclass(frozen=True)
class RotationAlertsArgs:
    """Inputs of an environment's rotation alerts."""

    app: str
    environment: str
    account_id: str
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the topic and the rule."""
    alarms: str | None = None
    """Name prefix of CloudWatch alarms that may publish too (the consumer restarts' failures)."""
    other_rules: tuple[str, ...] = ()
    """ARNs of other EventBridge rules of this environment that publish here too (the access alerts)."""


class RotationAlerts(pulumi.ComponentResource):
    """Secrets Manager's rotation failure events (ROTATION_FAILURE_EVENTS) for this environment, sent to a
    topic that on-call subscribes to (`rotationAlertsTopicArn` output)."""

    topic: aws.sns.Topic
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, args: RotationAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:RotationAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"arn:aws:secretsmanager:{args.region}:{args.account_id}:secret:{args.app}/{args.environment}/"
        # Not encrypted with a KMS key: EventBridge cannot publish to a topic under the AWS-managed
        # alias/aws/sns key, and the events carry secret ARNs and error text, never values.
        topic_name, rule_name = names.alerts(args.app, args.environment)
        self.topic = aws.sns.Topic(
            f"{name}-topic", name=topic_name, tags=dict(args.tags),
            opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=rule_name,
            description=f"Failed, abandoned or failed-test rotations of {args.app}/{args.environment} secrets",
            event_pattern=json.dumps(event_pattern(prefix), separators=(",", ":")),
            tags=dict(args.tags),
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, self.rule.arn).apply(lambda arns: iam.document([
                iam.Statement(
                    sid="RuleOfThisEnvironmentPublishes", effect="Allow",
                    principals={"Service": ("events.amazonaws.com",)}, actions=("sns:Publish",),
                    resources=(arns[0],), conditions={"ArnEquals": {"aws:SourceArn": (arns[1], *args.other_rules)}},
                ),
                # CloudWatch publishes an alarm's actions as cloudwatch.amazonaws.com (SNS developer guide,
                # "Amazon SNS security best practices", aws:SourceArn of the alarm).
                *([iam.Statement(
                    sid="AlarmsOfThisEnvironmentPublish", effect="Allow",
                    principals={"Service": ("cloudwatch.amazonaws.com",)}, actions=("sns:Publish",),
                    resources=(arns[0],), conditions={"ArnLike": {"aws:SourceArn": (
                        f"arn:aws:cloudwatch:{args.region}:{args.account_id}:alarm:{args.alarms}-*",)}},
                )] if args.alarms else []),
            ], where=f"topic policy of {name}")),
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-target", rule=self.rule.name, arn=self.topic.arn, opts=child)
        self.register_outputs({"topicArn": self.topic.arn})
