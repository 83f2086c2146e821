"""Where failed rotations of an environment are reported: one EventBridge rule and one SNS topic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, names


@dataclass(frozen=True)
class RotationAlertsArgs:
    """Inputs of an environment's rotation alerts."""

    app: str
    environment: str
    account_id: str
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the topic and the rule."""


class RotationAlerts(pulumi.ComponentResource):
    """Secrets Manager's RotationFailed / RotationAbandoned events for this environment, sent to a topic
    that on-call subscribes to (`rotationAlertsTopicArn` output)."""

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
            description=f"Failed or abandoned rotations of {args.app}/{args.environment} secrets",
            event_pattern=json.dumps({
                "source": ["aws.secretsmanager"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {
                    "eventName": ["RotationFailed", "RotationAbandoned"],
                    "additionalEventData": {"SecretId": [{"prefix": prefix}]},
                },
            }, separators=(",", ":")),
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
                    resources=(arns[0],), conditions={"ArnEquals": {"aws:SourceArn": (arns[1],)}},
                ),
            ], where=f"topic policy of {name}")),
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-target", rule=self.rule.name, arn=self.topic.arn, opts=child)
        self.register_outputs({"topicArn": self.topic.arn})
