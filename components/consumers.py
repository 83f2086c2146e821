"""How each service consumes its secrets, how long it may hold an old value, and the restarts that
follow a successful rotation (ECS services, Lambda functions that read at cold start).

Stack config `secrets-platform:consumption` (a mapping, one entry per catalog consumer):

    api:    {kind: ecs, cluster: <name or ARN>, service: <name>}
    hook:   {kind: lambda-cold-start, function: <name or ARN>}
    worker: {kind: runtime, cacheTtlSeconds: 0}
    batch:  {kind: runtime, cacheTtlSeconds: 300, tolerateSeconds: 300}

A consumer without an entry reads its secrets once, at start, and is never restarted by the platform.
`tolerateSeconds` (any kind, default 0): how long after a rotation the consumer may fail to log in with a
credential its strategy has revoked (it retries, or its failures are harmless); said per consumer, so that
a stack accepts failed logins only where somebody wrote it down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components import grants, iam, names
from components.alerts import SECRET_ARN_FIELDS, SERVICE_EVENT
from components.catalog import Rotation, Secret
from components.errors import ConfigurationError
from components.settings import PROJECT

KEY = f"{PROJECT}:consumption"
KINDS = ("ecs", "lambda-cold-start", "runtime")

RESTART_WINDOW_SECONDS = 600
"""Rotations of one consumer's secrets within this window restart it once: the queue delays every event
this long (SQS DeliveryDelay, at most 900 s: SQS developer guide, "Amazon SQS delay queues")."""
SQS_MAX_DELAY_SECONDS = 900
ECS_DEPLOYMENT_SECONDS = 900
"""An allowance for a forced deployment to replace every task (new tasks start and pass health checks,
old ones drain: the load balancer's default deregistration delay alone is 300 s). A service that takes
longer holds the old value longer."""
LAMBDA_MAX_TIMEOUT_SECONDS = 900
"""An invocation already running in an old execution environment finishes with the old value (Lambda's
longest timeout is 900 s)."""
TOLERATED_SECONDS = 0
"""How long a consumer without `tolerateSeconds` may hold a credential the strategy has already revoked:
none, so that every combination production accepts has no failed login (a five-minute cache of a password
changed in place fails new logins for up to five minutes, measured over a simulated year: bench/README.md)."""
MAX_TOLERATE_SECONDS = 3600
MIN_ROTATION_INTERVAL_SECONDS = 4 * 3600
"""Secrets Manager rotates at most every four hours (the catalog refuses shorter schedules)."""
MAX_TTL_SECONDS = 366 * 86400

# Name limits. ECS: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are
# allowed" for cluster and service names (ECS API reference, CreateCluster.clusterName and
# CreateService.serviceName; botocore's ecs model carries no max). Lambda: botocore's
# UpdateFunctionConfiguration.FunctionName allows 140 characters because it also takes an ARN; "If you
# specify only the function name, it is limited to 64 characters in length" (Lambda API reference).
ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ECS_CLUSTER_ARN = re.compile(
    r"^arn:aws:ecs:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):cluster/(?P<name>[^/]+)$")
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FUNCTION_ARN = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):function:(?P<name>[^:]+)(?P<qualifier>:.*)?$")


@dataclass(frozen=True)
class EcsService:
    """An ECS service that receives its secrets at task start (container `secrets`)."""

    cluster: str
    """The cluster's name (an ARN in config is reduced to it after its account and region are checked)."""
    service: str

    kind: Literal["ecs"] = "ecs"
    tolerate_seconds: int = TOLERATED_SECONDS

    def arn(self, region: str, account_id: str) -> str:
        # The long ARN format (ECS developer guide, "Amazon Resource Names (ARNs) and IDs"): the cluster is
        # part of a service's ARN.
        return f"arn:aws:ecs:{region}:{account_id}:service/{self.cluster}/{self.service}"


@dataclass(frozen=True)
class LambdaColdStart:
    """A Lambda function that reads its secrets once per execution environment (at cold start)."""

    function: str
    kind: Literal["lambda-cold-start"] = "lambda-cold-start"
    tolerate_seconds: int = TOLERATED_SECONDS

    def arn(self, region: str, account_id: str) -> str:
        return f"arn:aws:lambda:{region}:{account_id}:function:{self.function}"


@dataclass(frozen=True)
class RuntimeRead:
    """A service that reads the secret while it runs, through a cache of `cache_ttl_seconds`."""

    cache_ttl_seconds: int
    kind: Literal["runtime"] = "runtime"
    tolerate_seconds: int = TOLERATED_SECONDS


Consumption = EcsService | LambdaColdStart | RuntimeRead


def parse_consumption(raw: object, file: str, account_id: str, region: str,
                      consumers: Sequence[str]) -> dict[str, Consumption]:
    """`secrets-platform:consumption` as typed entries; one ConfigurationError per mistake."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(file, "must be a mapping: <service> -> {kind: ecs | lambda-cold-start | runtime, "
                                 "...}", field=KEY)
    known = sorted(consumers)
    parsed: dict[str, Consumption] = {}
    for service, entry in raw.items():
        where = f"{KEY}.{str(service)[:80]}"
        if service not in known:
            raise ConfigurationError(file, "is not a consumer of any secret of this environment (catalog "
                                     f"`consumers`: {', '.join(known) or 'none'})", field=where)
        if not isinstance(entry, dict):
            raise ConfigurationError(file, "must be a mapping with a `kind`", field=where)
        kind = entry.get("kind")
        if kind not in KINDS:
            shown = repr(kind)[:40] if kind is not None else "missing"
            raise ConfigurationError(file, f"kind {shown} is not one of {', '.join(KINDS)}", field=f"{where}.kind")
        needed = {"ecs": {"kind", "cluster", "service"}, "lambda-cold-start": {"kind", "function"},
                  "runtime": {"kind", "cacheTtlSeconds"}}[kind]
        allowed = needed | {"tolerateSeconds"}
        extra = sorted(str(k)[:40] for k in entry if k not in allowed)
        if extra:
            raise ConfigurationError(file, f"unknown key(s) {', '.join(extra)} for kind {kind} (allowed: "
                                     f"{', '.join(sorted(allowed))})", field=where)
        missing = sorted(k for k in needed if k not in entry)
        if missing:
            raise ConfigurationError(file, f"kind {kind} needs {', '.join(missing)}", field=f"{where}.{missing[0]}")
        tolerate = _seconds(entry.get("tolerateSeconds", TOLERATED_SECONDS), MAX_TOLERATE_SECONDS, file,
                            f"{where}.tolerateSeconds")
        if kind == "ecs":
            parsed[service] = EcsService(
                cluster=_ecs_cluster(entry["cluster"], file, f"{where}.cluster", account_id, region),
                service=_ecs_name(entry["service"], file, f"{where}.service", "service"),
                tolerate_seconds=tolerate,
            )
        elif kind == "lambda-cold-start":
            parsed[service] = LambdaColdStart(
                function=_function(entry["function"], file, f"{where}.function", account_id, region),
                tolerate_seconds=tolerate)
        else:
            ttl = _seconds(entry["cacheTtlSeconds"], MAX_TTL_SECONDS, file, f"{where}.cacheTtlSeconds")
            parsed[service] = RuntimeRead(cache_ttl_seconds=ttl, tolerate_seconds=tolerate)
    return parsed


def _seconds(value: object, high: int, file: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ConfigurationError(file, f"{str(value)[:40]!r} is not a whole number of seconds from 0 to {high}",
                                 field=where)
    return value


def _in_stack(match: re.Match[str], value: str, file: str, where: str, account_id: str, region: str) -> None:
    if match.group("account") != account_id:
        raise ConfigurationError(file, f"'{value}' is in account {match.group('account')}, not this stack's "
                                 f"{account_id}", field=where)
    if match.group("region") != region:
        raise ConfigurationError(file, f"'{value}' is in {match.group('region')}, not this stack's region "
                                 f"{region}", field=where)


def _ecs_name(value: object, file: str, where: str, what: str) -> str:
    if not isinstance(value, str) or not ECS_NAME.fullmatch(value):
        shown = str(value)[:60] + ("..." if len(str(value)) > 60 else "")
        raise ConfigurationError(file, f"'{shown}' is not an ECS {what} name (1-255 letters, digits, _ and -)",
                                 field=where)
    return value


def _ecs_cluster(value: object, file: str, where: str, account_id: str, region: str) -> str:
    if isinstance(value, str) and value.startswith("arn:"):
        match = ECS_CLUSTER_ARN.fullmatch(value)
        if match is None:
            raise ConfigurationError(file, f"'{value[:120]}' is not an ECS cluster ARN "
                                     "(arn:aws:ecs:<region>:<account>:cluster/<name>)", field=where)
        _in_stack(match, value, file, where, account_id, region)
        return _ecs_name(match.group("name"), file, where, "cluster")
    return _ecs_name(value, file, where, "cluster")


def _function(value: object, file: str, where: str, account_id: str, region: str) -> str:
    if isinstance(value, str) and value.startswith("arn:"):
        match = FUNCTION_ARN.fullmatch(value)
        if match is None:
            raise ConfigurationError(file, f"'{value[:120]}' is not a Lambda function ARN "
                                     "(arn:aws:lambda:<region>:<account>:function:<name>)", field=where)
        _in_stack(match, value, file, where, account_id, region)
        if match.group("qualifier"):
            # A published version never changes: a restart updates $LATEST, which a caller pinned to a
            # version or an alias does not run.
            raise ConfigurationError(file, f"'{value[:120]}' names a version or alias; give the unqualified "
                                     "function (what a restart updates is $LATEST)", field=where)
        value = match.group("name")
    if not isinstance(value, str) or not FUNCTION_NAME.fullmatch(value):
        shown = str(value)[:70] + ("..." if len(str(value)) > 70 else "")
        raise ConfigurationError(file, f"'{shown}' is not a Lambda function name (1-64 letters, digits, _ and -)",
                                 field=where)
    return value


# How long the old value lives -------------------------------------------------------------------------

REVOKED_AT = {
    "postgres-single-user": "at setSecret",
    "postgres-alternating-users": "at the next rotation",
    "redis-acl": "at the next rotation (the previous password is kept until then)",
    "token": "at once",
    "jwt-hs256": "at the next rotation (the previous key is kept until then)",
    "jwt-rs256": "at the next rotation (the previous key is kept until then)",
}
"""When the credential a consumer holds stops working, per strategy (rotation/README.md, Protocol)."""

KEPT_UNTIL_NEXT_ROTATION = frozenset({"postgres-alternating-users", "redis-acl", "jwt-hs256", "jwt-rs256"})


def revoked_at(rotation: Rotation) -> str:
    """When the previous credential stops working, in words."""
    if rotation.previous_accepted:
        return "at the next rotation (its checkers accept the previous value until then: previous_accepted)"
    return REVOKED_AT[rotation.strategy]


def old_value_lives(rotation: Rotation) -> int:
    """Seconds the previous credential keeps working after a rotation ends."""
    if rotation.strategy in KEPT_UNTIL_NEXT_ROTATION or rotation.previous_accepted:
        return rotation.every_days * 86400 if rotation.every_days else MIN_ROTATION_INTERVAL_SECONDS
    return 0


def held_for(consumption: Consumption | None) -> int | None:
    """The longest a consumer of this kind may use the old value after a rotation; None: until it restarts
    for another reason."""
    if consumption is None:
        return None
    if isinstance(consumption, EcsService):
        return RESTART_WINDOW_SECONDS + ECS_DEPLOYMENT_SECONDS
    if isinstance(consumption, LambdaColdStart):
        return RESTART_WINDOW_SECONDS + LAMBDA_MAX_TIMEOUT_SECONDS
    return consumption.cache_ttl_seconds


@dataclass(frozen=True)
class Hazard:
    """A consumer that can still hold a credential after its strategy has revoked it."""

    secret: str
    service: str
    strategy: str
    held: int | None
    lives: int
    tolerated: int = TOLERATED_SECONDS
    """The consumer's `tolerateSeconds`."""
    revoked: str = ""
    """When the strategy revokes the old value, in words (`revoked_at`); REVOKED_AT's when empty."""

    @property
    def revoked_when(self) -> str:
        return self.revoked or REVOKED_AT[self.strategy]

    @property
    def failing_seconds(self) -> int | None:
        """How long after a rotation the consumer may fail to log in; None: until it restarts."""
        return None if self.held is None else self.held - self.lives

    @property
    def accepted(self) -> bool:
        """Whether the consumer's `tolerateSeconds` covers the failures."""
        return self.failing_seconds is not None and self.failing_seconds <= self.tolerated

    def message(self) -> str:
        held = "until it restarts (no consumption entry)" if self.held is None else f"for up to {self.held} s"
        if self.accepted:
            return (f"'{self.service}' may fail to log in with '{self.secret}' for up to {self.failing_seconds} s "
                    f"after each rotation ({self.strategy} revokes the old value {self.revoked_when}); "
                    f"accepted by its tolerateSeconds {self.tolerated}")
        if self.strategy == "postgres-single-user":
            fix = "use postgres-alternating-users, or read it per use: kind runtime, cacheTtlSeconds: 0"
        elif self.lives == 0:
            fix = "read it per use: kind runtime, cacheTtlSeconds: 0"
            if self.strategy == "token":
                fix += ", or check it against the previous value too: rotation.previous_accepted: true"
        else:
            fix = f"restart: kind ecs or lambda-cold-start, or reload: kind runtime, cacheTtlSeconds <= {self.lives}"
        fix += f", or accept failed logins for that long: tolerateSeconds (at most {MAX_TOLERATE_SECONDS})"
        return (f"'{self.service}' may keep the old value of '{self.secret}' {held} after a rotation, and "
                f"{self.strategy} revokes it {self.revoked_when}; fix: {fix}")


def hazards(secrets: Mapping[str, Secret], consumption: Mapping[str, Consumption]) -> list[Hazard]:
    """Every (rotated secret, consumer) pair whose consumer may outlive the old credential, including those
    the consumer's `tolerateSeconds` accepts (`Hazard.accepted`)."""
    found = []
    for name, entry in secrets.items():
        if not isinstance(entry.rotation, Rotation):
            continue
        lives = old_value_lives(entry.rotation)
        for service in entry.consumers:
            declared = consumption.get(service)
            held = held_for(declared)
            if held is None or held > lives:
                tolerated = declared.tolerate_seconds if declared is not None else TOLERATED_SECONDS
                found.append(Hazard(name, service, entry.rotation.strategy, held, lives, tolerated,
                                    revoked_at(entry.rotation)))
    return found


def check(secrets: Mapping[str, Secret], consumption: Mapping[str, Consumption], file: str,
          production: bool) -> list[str]:
    """Refuse the first hazard no `tolerateSeconds` accepts in production (one line naming the fix); return
    the others, and elsewhere all, as warnings."""
    found = hazards(secrets, consumption)
    refused = [h for h in found if not h.accepted]
    if refused and production:
        first = refused[0]
        raise ConfigurationError(file, first.message(), field=f"{KEY}.{first.service}")
    return [h.message() for h in found]


# Restarts -----------------------------------------------------------------------------------------------

ROTATION_SUCCEEDED = "RotationSucceeded"
"""Secrets Manager's CloudTrail entry for a completed rotation (Secrets Manager user guide, "AWS CloudTrail
entries for Secrets Manager"), delivered on the default bus as an AWS service event."""


def event_pattern(secret_arn_prefix: str) -> dict[str, object]:
    """Every successful rotation of a secret whose ARN starts with the prefix; the secret's ARN in either
    field AWS uses (components/alerts.py, SECRET_ARN_FIELDS)."""
    return {
        "source": ["aws.secretsmanager"],
        "detail-type": [SERVICE_EVENT],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": [ROTATION_SUCCEEDED],
            "$or": [{outer: {inner: [{"prefix": secret_arn_prefix}]}} for outer, inner in SECRET_ARN_FIELDS],
        },
    }


def restart_targets(secrets: Mapping[str, Secret], consumption: Mapping[str, Consumption], app: str,
                    environment: str) -> dict[str, dict[str, Any]]:
    """The restart function's `CONSUMER_TARGETS`: each consumer it restarts, and the secret names (as in
    their ARNs) whose rotations restart each."""
    restarted = {s: c for s, c in sorted(consumption.items()) if not isinstance(c, RuntimeRead)}
    targets = {s: ({"kind": "ecs", "cluster": c.cluster, "service": c.service} if isinstance(c, EcsService)
                   else {"kind": "lambda", "function": c.function})
               for s, c in restarted.items() if isinstance(c, EcsService | LambdaColdStart)}
    # A signing key's verifiers read its public secret, which no rotation event names: they restart with the
    # key's own rotation, or a verifier that reads once would never get the new key (nor, with `pem_env`, the PEM).
    by_secret = {f"{app}/{environment}/{n}": sorted(s for s in {*e.consumers, *(e.public_key.verifiers if
                                                                               e.public_key is not None else ())}
                                                    if s in targets)
                 for n, e in secrets.items() if isinstance(e.rotation, Rotation)}
    return {"targets": targets, "secrets": {n: s for n, s in sorted(by_secret.items()) if s}}


ENVIRONMENT_LIMIT = 4096
"""Lambda's limit on a function's environment variables, all together."""


@dataclass(frozen=True)
class ConsumerRestartsArgs:
    """Inputs of an environment's consumer restarts."""

    app: str
    environment: str
    account_id: str
    region: str
    targets: Mapping[str, Mapping[str, Any]]
    """`restart_targets(...)`: consumers and the secrets that restart them."""
    ecs_services: tuple[EcsService, ...]
    functions: tuple[LambdaColdStart, ...]
    alerts_topic_arn: pulumi.Input[str]
    """Where the function's errors and dead letters are reported (the rotation alerts topic)."""
    code: pulumi.Archive
    """The rotation package (the handler is `rotation.consumers.lambda_handler`)."""
    runtime: str
    tags: Mapping[str, str] = field(default_factory=dict)


HANDLER = "rotation.consumers.lambda_handler"
FUNCTION_TIMEOUT_SECONDS = 60
VISIBILITY_TIMEOUT_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
"""Lambda developer guide ("Using Lambda with Amazon SQS"): set the queue's visibility timeout to at least
six times the function's timeout."""
MAX_RECEIVES = 5
"""Deliveries before a message goes to the dead-letter queue (and pages)."""
DLQ_RETENTION_SECONDS = 14 * 86400
LOG_RETENTION_DAYS = 90


class ConsumerRestarts(pulumi.ComponentResource):
    """RotationSucceeded -> EventBridge rule -> delayed SQS queue -> function that forces one new deployment of
    each ECS service and one new set of execution environments of each Lambda consumer per burst."""

    queue: aws.sqs.Queue
    dead_letters: aws.sqs.Queue
    rule: aws.cloudwatch.EventRule
    function: aws.lambda_.Function
    policy: aws.iam.Policy

    def __init__(self, name: str, args: ConsumerRestartsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:ConsumerRestarts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = names.consumer_restarts(args.app, args.environment)
        fn_name = names.fit(base, min(names.FUNCTION, names.ROLE))
        tags = {**args.tags, "app": args.app, "environment": args.environment}
        targets = json.dumps(args.targets, sort_keys=True, separators=(",", ":"))
        prefix = f"arn:aws:secretsmanager:{args.region}:{args.account_id}:secret:{args.app}/{args.environment}/"

        self.dead_letters = aws.sqs.Queue(
            f"{name}-dlq", name=names.fit(f"{base}-dlq", names.QUEUE), message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True, tags=tags, opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue", name=names.fit(base, names.QUEUE),
            # Every event waits out the window: the first one of a burst is handled after the last rotation.
            delay_seconds=RESTART_WINDOW_SECONDS, visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            # EventBridge can send to a queue under SSE-SQS without a key policy (a KMS key would need one).
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES})),
            tags=tags, opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule", name=names.fit(base, names.EVENT_RULE),
            description=f"Successful rotations of {args.app}/{args.environment} secrets: restart their consumers",
            event_pattern=json.dumps(event_pattern(prefix), separators=(",", ":")), tags=tags, opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy", queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self.rule.arn).apply(lambda arns: iam.document(
                grants.restart_queue_statements(arns[0], arns[1]), where=f"queue policy of {name}")),
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-target", rule=self.rule.name, arn=self.queue.arn, opts=child)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=names.rotation_log_group(fn_name), retention_in_days=LOG_RETENTION_DAYS, tags=tags,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role", name=fn_name,
            description=f"Restarts the consumers of {args.app}/{args.environment} secrets after rotations",
            assume_role_policy=iam.trust_policy("lambda.amazonaws.com", args.account_id),
            tags={**tags, "access": "restart"}, opts=child,
        )
        services = tuple(s.arn(args.region, args.account_id) for s in args.ecs_services)
        functions = tuple(f.arn(args.region, args.account_id) for f in args.functions)
        self.policy = aws.iam.Policy(
            f"{name}-policy", name=names.fit(f"{base}-policy", names.POLICY),
            description=f"Restart the consumers of {args.app}/{args.environment} secrets",
            policy=pulumi.Output.all(self.queue.arn, log_group.arn).apply(lambda arns: iam.document(
                grants.consumer_restart_statements(services, functions, arns[0], arns[1]),
                where=f"restart policy {name}")),
            tags={**tags, "access": "restart"}, opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(f"{name}-policy-attachment", role=role.name,
                                                  policy_arn=self.policy.arn, opts=child)
        self.function = aws.lambda_.Function(
            f"{name}-function", name=fn_name,
            description=f"Restarts the consumers of {args.app}/{args.environment} secrets after rotations",
            runtime=args.runtime, handler=HANDLER, code=args.code, role=role.arn,
            timeout=FUNCTION_TIMEOUT_SECONDS, memory_size=128,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={"CONSUMER_TARGETS": targets}),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, attachment]),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-events", event_source_arn=self.queue.arn, function_name=self.function.arn, batch_size=10,
            # A failed record is retried alone; the others of its batch are done (rotation/consumers.py).
            function_response_types=["ReportBatchItemFailures"], opts=child,
        )
        # Failures page like failed rotations: a record that failed MAX_RECEIVES times, or any error.
        aws.cloudwatch.MetricAlarm(
            f"{name}-dead-letters", name=names.fit(f"{base}-dead-letters", names.ALARM), namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letters.name}, statistic="Maximum", period=300, evaluation_periods=1,
            threshold=0, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_description="A consumer restart failed 5 times: its consumers may still hold the old value",
            alarm_actions=[args.alerts_topic_arn], tags=tags, opts=child,
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-errors", name=names.fit(f"{base}-errors", names.ALARM), namespace="AWS/Lambda",
            metric_name="Errors", dimensions={"FunctionName": self.function.name}, statistic="Sum", period=300,
            evaluation_periods=1, threshold=0, comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching", alarm_description="The consumer restart function failed",
            alarm_actions=[args.alerts_topic_arn], tags=tags, opts=child,
        )
        self.register_outputs({"functionArn": self.function.arn, "queueArn": self.queue.arn})


def targets_fit(targets: Mapping[str, Mapping[str, Any]], file: str) -> None:
    """The targets fit in the function's environment (Lambda: 4 KB for all variables)."""
    size = len(json.dumps(targets, sort_keys=True, separators=(",", ":"))) + len("CONSUMER_TARGETS")
    if size > ENVIRONMENT_LIMIT:
        raise ConfigurationError(file, f"the consumers to restart and their secrets take {size} bytes, over Lambda's "
                                 f"{ENVIRONMENT_LIMIT}-byte environment", field=KEY)


def load(file: str, account_id: str, region: str, secrets: Mapping[str, Secret]) -> dict[str, Consumption]:
    """The stack's `consumption`, read through pulumi.Config and checked against the catalog's consumers."""
    raw = pulumi.Config(PROJECT).get("consumption")
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigurationError(file, "is not a YAML mapping", field=KEY) from None
    consumers = sorted({c for e in secrets.values() for c in e.consumers})
    return parse_consumption(value, file, account_id, region, consumers)


def alarms_prefix(app: str, environment: str) -> str:
    """What the names of the restarts' alarms start with (the alerts topic lets them publish)."""
    return names.consumer_restarts(app, environment)
