"""Who reads an environment's secrets besides its own roles: one EventBridge rule on CloudTrail's records of
GetSecretValue and BatchGetSecretValue, sent to the rotation alerts topic (or a topic of its own).

What AWS delivers, and so what this can see (docs/access.md, "Access alerts"):
- CloudTrail API records reach EventBridge's default bus only while a CloudTrail trail with logging is on
  (EventBridge User Guide, "AWS service events delivered via AWS CloudTrail"), and only in the region of the
  call (a rule and the events it sees are in one region).
- GetSecretValue is a read-only management event: EventBridge matches those only on a rule whose state is
  ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS (EventBridge User Guide, "Receiving read-only management
  events from AWS services"), and the trail must log read events (ReadWriteType All or ReadOnly).
- BatchGetSecretValue also writes a GetSecretValue record for each secret it returns (Secrets Manager API
  reference, BatchGetSecretValue), so a batch selected by filters is still seen, secret by secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, names
from components.alerts import RotationAlerts
from components.catalog import Secret
from components.errors import ConfigurationError
from components.managed import managed_external
from components.settings import PROJECT, StackSettings

KEY = f"{PROJECT}:accessAlerts"
SETTINGS = ("on", "off", "own-topic")
"""`on`: to the rotation alerts topic (a topic of its own where the stack has none); `own-topic`: always a topic
of its own; `off`: no rule. YAML's true/false mean on/off."""
DEFAULT_ON = frozenset({"production"})
"""Environments where it is on unless the stack file says otherwise."""

API_CALL = "AWS API Call via CloudTrail"
READ_EVENTS = ("GetSecretValue", "BatchGetSecretValue")
RULE_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
"""Without it EventBridge never matches a read-only management event such as GetSecretValue."""
PATTERN_MAX = 4096
"""PutRule EventPattern: at most 4,096 characters (botocore's `events` model, `max` of EventPattern)."""
ASSUMED_ROLE = "AssumedRole"


def secret_id_prefixes(app: str, environment: str, region: str, account_id: str) -> tuple[str, str]:
    """How a caller may name one of this environment's secrets: its name, or its ARN (full or partial)."""
    name = f"{app}/{environment}/"
    return name, f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}"


def event_pattern(app: str, environment: str, region: str, account_id: str,
                  known_roles: Iterable[str]) -> dict[str, object]:
    """Reads of this environment's secrets by any principal but `known_roles` (role ARNs, path included).

    CloudTrail records the request as sent: GetSecretValue's `secretId` (name or ARN), BatchGetSecretValue's
    `secretIdList` (a list matches when any element does). An assumed role is recorded with the role's ARN in
    `userIdentity.sessionContext.sessionIssuer.arn` (`userIdentity.arn` is the session's sts ARN, which changes
    with every session name); any other identity type (IAM user, root, AWSAccount for some cross-account calls)
    has no session issuer, so it is matched by its type, whatever `anything-but` does with a missing field.
    Operators: `prefix`, `anything-but` with a list of strings, and `$or` inside a field, all supported on event
    buses (EventBridge User Guide, "Comparison operators for use in event patterns")."""
    ours = [{"prefix": p} for p in secret_id_prefixes(app, environment, region, account_id)]
    detail: dict[str, object] = {
        "eventSource": ["secretsmanager.amazonaws.com"],
        "eventName": list(READ_EVENTS),
        "requestParameters": {"$or": [{"secretId": ours}, {"secretIdList": ours}]},
    }
    known = sorted(set(known_roles))
    if known:
        detail["userIdentity"] = {"$or": [
            {"type": [{"anything-but": [ASSUMED_ROLE]}]},
            {"type": [ASSUMED_ROLE], "sessionContext": {"sessionIssuer": {"arn": [{"anything-but": known}]}}},
        ]}
    return {"source": ["aws.secretsmanager"], "detail-type": [API_CALL], "detail": detail}


def rule_name(app: str, environment: str) -> str:
    return names.fit(f"{app}-{environment}-secret-reads", names.EVENT_RULE)


def rule_arn(region: str, account_id: str, app: str, environment: str) -> str:
    """A default-bus rule's ARN, known before it exists (the rotation alerts topic's policy names it)."""
    return f"arn:aws:events:{region}:{account_id}:rule/{rule_name(app, environment)}"


@dataclass(frozen=True)
class AccessAlertsPlan:
    """The rule, decided and checked before anything is registered."""

    rule_name: str
    rule_arn: str
    pattern: str
    """The event pattern, as sent to PutRule."""
    own_topic: bool
    """A topic of its own (`own-topic`, or a stack without rotation alerts) rather than the rotation alerts topic."""
    known_roles: tuple[str, ...]


def setting(settings: StackSettings) -> str:
    """`on`, `off` or `own-topic`, from the stack file or the environment's default."""
    raw = pulumi.Config(PROJECT).get("accessAlerts")
    if raw is None:
        return "on" if settings.environment in DEFAULT_ON else "off"
    value = {"true": "on", "false": "off"}.get(raw.strip().lower(), raw.strip().lower())
    if value not in SETTINGS:
        shown = raw if len(raw) <= 40 and raw.isprintable() else raw[:40].encode("unicode_escape").decode() + "..."
        raise ConfigurationError(settings.file, f"'{shown}' is not one of {', '.join(SETTINGS)}", field=KEY)
    return value


def plan(settings: StackSettings, app: str, secrets: Mapping[str, Secret], role_arns: Mapping[str, str],
         rotation_groups: Iterable[str], shared_roles: Iterable[str]) -> AccessAlertsPlan | None:
    """The stack's access alert rule, or None when off. Known roles: every role the stack config names
    (runtime, services, CI, deployers: their ARNs as IAM reported them), the rotation roles, the role Secrets
    Manager rotates managed external secrets as, and other accounts' roles the catalog shares secrets with."""
    chosen = setting(settings)
    env = settings.environment
    if chosen == "off":
        if env in DEFAULT_ON:
            pulumi.log.warn(f"{KEY} is off in {settings.file}: nobody is told when a principal other than this "
                            f"stack's roles reads a {env} secret")
        return None
    groups = list(rotation_groups)
    own = [*groups, *(["managed-external"] if managed_external(secrets) else [])]
    known = tuple(sorted({*role_arns.values(), *shared_roles, *(
        f"arn:aws:iam::{settings.account_id}:role/{names.rotation_function(app, env, g)}" for g in own)}))
    pattern = json.dumps(event_pattern(app, env, settings.region, settings.account_id, known), separators=(",", ":"))
    if len(pattern) > PATTERN_MAX:
        raise ConfigurationError(
            settings.file, f"the access alert rule would list {len(known)} known roles in a pattern of "
            f"{len(pattern):,} characters; EventBridge takes at most {PATTERN_MAX:,}: set it off and watch reads "
            "in the trail itself, or name fewer roles", field=KEY)
    return AccessAlertsPlan(rule_name=rule_name(app, env), rule_arn=rule_arn(settings.region, settings.account_id,
                                                                              app, env),
                            pattern=pattern, own_topic=chosen == "own-topic" or not groups, known_roles=known)


@dataclass(frozen=True)
class AccessAlertsArgs:
    """Inputs of an environment's access alerts."""

    app: str
    environment: str
    plan: AccessAlertsPlan
    rotation_alerts: RotationAlerts | None = None
    """The environment's rotation alerts, whose topic receives the alerts unless the plan wants its own (its
    topic policy must already let this rule publish: RotationAlertsArgs.other_rules)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class AccessAlerts(pulumi.ComponentResource):
    """Reads of the environment's secrets by any principal the stack does not know (`accessAlertsTopicArn`)."""

    rule: aws.cloudwatch.EventRule
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AccessAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:AccessAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan_ = args.plan
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule", name=plan_.rule_name, state=RULE_STATE,
            description=f"Reads of {args.app}/{args.environment} secrets by a principal the stack does not name",
            event_pattern=plan_.pattern, tags=dict(args.tags), opts=child,
        )
        if plan_.own_topic or args.rotation_alerts is None:
            # Not encrypted with a KMS key, as the rotation alerts topic: EventBridge cannot publish under the
            # AWS-managed alias/aws/sns key, and an event carries who read which secret, never a value
            # (CloudTrail records no response for GetSecretValue).
            topic = aws.sns.Topic(f"{name}-topic", name=names.fit(f"{args.app}-{args.environment}-secret-reads",
                                                                    names.TOPIC),
                                  tags=dict(args.tags), opts=child)
            aws.sns.TopicPolicy(
                f"{name}-topic-policy", arn=topic.arn,
                policy=pulumi.Output.all(topic.arn, self.rule.arn).apply(lambda arns: iam.document([iam.Statement(
                    sid="AccessRuleOfThisEnvironmentPublishes", effect="Allow",
                    principals={"Service": ("events.amazonaws.com",)}, actions=("sns:Publish",),
                    resources=(arns[0],), conditions={"ArnEquals": {"aws:SourceArn": (arns[1],)}},
                )], where=f"topic policy of {name}")),
                opts=child,
            )
            self.topic_arn = topic.arn
        else:
            self.topic_arn = args.rotation_alerts.topic.arn
        aws.cloudwatch.EventTarget(f"{name}-target", rule=self.rule.name, arn=self.topic_arn, opts=child)
        self.register_outputs({"topicArn": self.topic_arn})
