"""A monthly cost estimate of a stack from the resources the offline preview collected.

Every price is a dated constant in `PRICES` below (the one place to update); every volume that
is not in the program (how often the application reads a secret, how long a rotation step runs)
is a documented, overridable assumption. The estimate reads resource inputs only (counts, names,
memory sizes, schedules) and never a value.

What is counted
- Secrets Manager: each secret, and each replica (AWS bills a replica as a secret of its own),
  per month; API calls: application reads (`reads_per_secret_per_day`) and the calls each rotation
  makes.
- KMS: each customer-managed key (`aws:kms/key:Key`, `aws:kms/replicaKey:ReplicaKey`) per month;
  automatic key rotation adds USD 1/month after the first and another after the second rotation of
  the key material, later rotations are free (KMS pricing since May 2024). `monthlyUsd` is a key's
  first rotation period (no rotated material yet); `monthlyUsdSteadyState` every rotating key after
  its second rotation. KMS requests: one Decrypt per GetSecretValue, one GenerateDataKey per new
  version in each region (Secrets Manager encrypts every version under the secret's key).
- Lambda: rotation invocations (4 steps per rotation) and their GB-seconds.
- Consumer restarts, when the stack declares them (components/consumers.py): the queue's SQS requests
  (Lambda's pollers long-poll it all month, plus send, receive and delete per rotation event), the
  restart function's invocations and GB-seconds (one per successful rotation of the environment), and
  its CloudWatch alarms.

- Access alerts, when the stack declares them (components/access_alerts.py): EventBridge ingests AWS
  management events on the default bus for free, so matching every GetSecretValue is USD 0; each alert is one
  SNS publish and one email delivery (`access_alerts_per_month`). The CloudTrail trail the rule depends on is
  the account's, not the stack's: its first copy of management events is free, and a warning says so.

What is not: a NAT gateway or VPC endpoint that rotation functions in a VPC need (a warning says so),
free tiers (KMS 20,000 requests/month, Lambda 1M requests and 400,000 GB-s/month;
they are per account, not per stack), CloudWatch Logs, the rotation alerts' rule and SNS, data transfer, the
API calls `pulumi up` itself makes, and taxes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from components import schedule
from preview.model import CollectedResource, plain

PRICES_AS_OF = "2026-11-23"
"""When the prices below were last checked against AWS's published pricing pages."""
PRICE_SOURCES = (
    "https://aws.amazon.com/secrets-manager/pricing/",
    "https://aws.amazon.com/kms/pricing/",
    "https://aws.amazon.com/lambda/pricing/",
    "https://aws.amazon.com/sqs/pricing/",
    "https://aws.amazon.com/cloudwatch/pricing/",
    "https://aws.amazon.com/eventbridge/pricing/",
    "https://aws.amazon.com/sns/pricing/",
)
PRICE_REGION = "us-east-1"
"""The region the list prices are taken from."""
SAME_PRICE_REGIONS = frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1",
                                "ap-southeast-1", "ap-southeast-2"})
"""Regions where these services list the same prices as us-east-1 at PRICES_AS_OF (this project's
stacks are in ap-southeast-2 with replicas in ap-southeast-1). Other regions get a warning."""

PRICES: dict[str, float] = {
    "secretsmanager.secret_month": 0.40,        # per secret per month, each replica counted as a secret
    "secretsmanager.per_10k_api_calls": 0.05,   # per 10,000 API calls
    "kms.key_month": 1.00,                      # per customer-managed key per month (replica keys too)
    "kms.rotated_material_month": 1.00,         # per rotation of key material, for the first two only
    "kms.per_10k_requests": 0.03,               # symmetric key requests (Decrypt, GenerateDataKey)
    "lambda.per_1m_requests": 0.20,
    "lambda.gb_second.x86_64": 0.0000166667,
    "lambda.gb_second.arm64": 0.0000133334,
    "sqs.per_1m_requests": 0.40,                # standard queue requests (each 64 KB chunk is one)
    "cloudwatch.alarm_month": 0.10,             # standard-resolution metric alarm
    "eventbridge.aws_management_event": 0.0,    # "AWS management events are ingested by the event bus for free"
    "sns.per_1m_publishes": 0.50,               # standard topic requests (Publish)
    "sns.email_per_100k": 2.00,                 # email / email-json deliveries
}
VPC_ENDPOINT_AZ_HOUR = 0.01
"""An interface VPC endpoint per availability zone per hour (not counted: the program creates none)."""
VPC_ENDPOINT_SOURCE = "https://aws.amazon.com/privatelink/pricing/"
KMS_BILLED_ROTATIONS = 2
"""Rotations of a key's material that add to its monthly price; later ones are not billed."""

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
"""AWS's pricing month: 730 hours."""

# The volume model: what the program does not say, assumed here (override through `estimate`).
READS_PER_SECRET_PER_DAY = 240.0
"""GetSecretValue calls per secret per day by the application: ten tasks, each re-reading every
secret once an hour through a caching client (AWS's caching clients refresh hourly by default)."""
LAMBDA_SECONDS_PER_INVOCATION = 2.0
"""Average billed duration of one rotation step (network round trips to Secrets Manager and to the
database or Redis the strategy changes)."""
STEPS_PER_ROTATION = 4
"""createSecret, setSecret, testSecret, finishSecret: one Lambda invocation each."""
SM_CALLS_PER_ROTATION = 12
"""Secrets Manager calls the rotation function makes per rotation, the most any strategy makes (Redis;
token 7, JWT 8, PostgreSQL 10-11: bench/results/rotation.json), so the estimate errs high."""
KMS_DECRYPTS_PER_ROTATION = 5
"""One Decrypt per GetSecretValue the rotation function makes."""
DEFAULT_LAMBDA_MEMORY_MB = 128
RESTART_HANDLER = "rotation.consumers.lambda_handler"
"""The consumer restart function's handler (components/consumers.py): not a rotation function."""
SQS_POLLERS = 5
"""Lambda polls an SQS event source with five long-polling connections at first (Lambda developer guide,
"Using Lambda with Amazon SQS", scaling); each waits up to 20 s, so an idle queue costs about
5 x 3 x 60 x 730 = 657,000 requests a month."""
SQS_LONG_POLL_SECONDS = 20
SQS_REQUESTS_PER_MESSAGE = 3
"""SendMessage (EventBridge), the ReceiveMessage that returns it, DeleteMessage (Lambda)."""
RESTART_SECONDS_PER_INVOCATION = 1.0
"""DescribeServices / GetFunctionConfiguration and at most one update per consumer."""
ACCESS_ALERTS_PER_MONTH = 30.0
"""Reads by principals the stack does not name, per month: an assumption (an operator's console read a day);
each is one SNS publish and one email to on-call."""
ACCESS_RULE_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
"""The state only the access alert rule has (components/access_alerts.py): how the estimate finds it."""
CLOUDTRAIL_PRICING = "https://aws.amazon.com/cloudtrail/pricing/"
RULE = "aws:cloudwatch/eventRule:EventRule"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a resource type token
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
FUNCTION = "aws:lambda/function:Function"
KMS_KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")
_RATE = re.compile(r"^rate\((?P<n>[0-9]+) (?P<unit>hours?|days?)\)$")


def _line(quantity: float, unit: str, price: float, per: float = 1.0) -> dict[str, Any]:
    return {"quantity": round(quantity, 4), "unit": unit, "unitPriceUsd": price,
            "monthlyUsd": round(quantity / per * price, 4)}


def _secret_name(secret_id: Any) -> str | None:
    if not isinstance(secret_id, str):
        return None
    match = _SECRET_ARN.match(secret_id)
    return match.group("name") if match else secret_id


def _rotations_from_rules(rules: Mapping[str, Any]) -> float:
    """Rotations per month from a SecretRotation's rules: a rate by its interval, a cron by its firings
    in a year (components/schedule.py); an expression that does not rotate counts as none."""
    days = rules.get("automaticallyAfterDays")
    if days and float(days) > 0:
        return DAYS_PER_MONTH / float(days)
    expression = str(rules.get("scheduleExpression") or "")
    match = _RATE.match(expression)
    if match:
        hours = float(match.group("n")) * (24.0 if match.group("unit").startswith("day") else 1.0)
        return HOURS_PER_MONTH / hours if hours > 0 else 0.0
    per_year = schedule.rotations_per_year(expression) if expression else None
    return per_year * DAYS_PER_MONTH / 365.0 if per_year else 0.0


def _lookup(rotations: Mapping[str, float], name: str) -> float | None:
    """An override by full name (`filot/production/redis`) or catalog name (`redis`)."""
    if name in rotations:
        return float(rotations[name])
    short = name.rsplit("/", 1)[-1]
    return float(rotations[short]) if short in rotations else None


def estimate(
    resources: list[CollectedResource],
    *,
    region: str,
    rotations_per_month: dict[str, float] | None = None,
    reads_per_secret_per_day: float = READS_PER_SECRET_PER_DAY,
    lambda_seconds_per_invocation: float = LAMBDA_SECONDS_PER_INVOCATION,
    access_alerts_per_month: float = ACCESS_ALERTS_PER_MONTH,
) -> dict[str, Any]:
    """The monthly cost of a stack in USD, by line item, with the prices and assumptions used.

    `rotations_per_month` maps a secret (full or catalog name) to rotations per month, overriding
    its schedule; for a secret no rotation function serves, each is a value replaced by hand (one
    PutSecretValue, no Lambda).
    """
    overrides = rotations_per_month or {}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource.type, []).append(plain(resource.inputs))

    secrets = {str(i.get("name")): len(i.get("replicas") or []) for i in by_type.get(SECRET, [])}
    replicas = sum(secrets.values())
    keys = [i for t in KMS_KEYS for i in by_type.get(t, [])]
    rotating_keys = [k for k in keys if k.get("enableKeyRotation")]
    restarters = [i for i in by_type.get(FUNCTION, []) if i.get("handler") == RESTART_HANDLER]
    functions = {str(i.get("name")): i for i in by_type.get(FUNCTION, []) if i.get("handler") != RESTART_HANDLER}

    # Rotations per secret: the deployed schedules, then the caller's overrides.
    schedules: dict[str, tuple[float, dict[str, Any] | None]] = {}
    for rotation in by_type.get(ROTATION, []):
        name = _secret_name(rotation.get("secretId"))
        if name is None:
            continue
        arn = str(rotation.get("rotationLambdaArn") or "")
        function = functions.get(arn.rsplit(":", 1)[-1]) if arn else None
        if function is None and functions:
            # An unknown ARN (a preview without outputs): the largest function, to err on the high side.
            function = max(functions.values(), key=lambda f: float(f.get("memorySize") or DEFAULT_LAMBDA_MEMORY_MB))
        schedules[name] = (_rotations_from_rules(rotation.get("rotationRules") or {}), function)
    for name in secrets:
        override = _lookup(overrides, name)
        if override is not None:
            function = schedules.get(name, (0.0, None))[1]
            schedules[name] = (override, function)

    rotation_detail: list[dict[str, Any]] = []
    total_rotations = 0.0
    invocations = gb_seconds_x86 = gb_seconds_arm = 0.0
    rotation_calls = rotation_kms = 0.0
    for name, (per_month, function) in sorted(schedules.items()):
        if per_month <= 0:
            continue
        total_rotations += per_month
        if function is None:
            # Replaced by hand (`pulumi config set --secret` + `pulumi up`): one PutSecretValue, no function.
            rotation_calls += per_month
            rotation_kms += per_month * (1 + secrets.get(name, 0))
            rotation_detail.append({"secret": name, "rotationsPerMonth": round(per_month, 4), "by": "hand"})
            continue
        memory = float(function.get("memorySize") or DEFAULT_LAMBDA_MEMORY_MB)
        arm = "arm64" in (function.get("architectures") or [])
        calls = per_month * STEPS_PER_ROTATION
        gb_seconds = calls * lambda_seconds_per_invocation * memory / 1024.0
        invocations += calls
        if arm:
            gb_seconds_arm += gb_seconds
        else:
            gb_seconds_x86 += gb_seconds
        rotation_calls += per_month * SM_CALLS_PER_ROTATION
        rotation_kms += per_month * (KMS_DECRYPTS_PER_ROTATION + 1 + secrets.get(name, 0))
        rotation_detail.append({"secret": name, "rotationsPerMonth": round(per_month, 4), "by": "function",
                                "lambdaMemoryMb": memory, "architecture": "arm64" if arm else "x86_64"})

    reads = len(secrets) * reads_per_secret_per_day * DAYS_PER_MONTH
    lines = {
        "secrets": _line(len(secrets), "secret-month", PRICES["secretsmanager.secret_month"]),
        "replicas": _line(replicas, "replica-month", PRICES["secretsmanager.secret_month"]),
        "secretsManagerApiCalls": _line(reads + rotation_calls, "API call",
                                        PRICES["secretsmanager.per_10k_api_calls"], 10_000),
        "kmsKeys": _line(len(keys), "key-month", PRICES["kms.key_month"]),
        "kmsRequests": _line(reads + rotation_kms, "request", PRICES["kms.per_10k_requests"], 10_000),
        "lambdaRequests": _line(invocations, "invocation", PRICES["lambda.per_1m_requests"], 1_000_000),
        "lambdaCompute": {
            **_line(gb_seconds_x86, "GB-second", PRICES["lambda.gb_second.x86_64"]),
            "monthlyUsd": round(gb_seconds_x86 * PRICES["lambda.gb_second.x86_64"]
                                + gb_seconds_arm * PRICES["lambda.gb_second.arm64"], 4),
            "quantity": round(gb_seconds_x86 + gb_seconds_arm, 4),
        },
    }
    unrounded = (
        (len(secrets) + replicas) * PRICES["secretsmanager.secret_month"]
        + (reads + rotation_calls) / 10_000 * PRICES["secretsmanager.per_10k_api_calls"]
        + len(keys) * PRICES["kms.key_month"]
        + (reads + rotation_kms) / 10_000 * PRICES["kms.per_10k_requests"]
        + invocations / 1_000_000 * PRICES["lambda.per_1m_requests"]
        + gb_seconds_x86 * PRICES["lambda.gb_second.x86_64"]
        + gb_seconds_arm * PRICES["lambda.gb_second.arm64"]
    )
    if restarters:
        # Every successful rotation of the environment reaches the restart queue and the function.
        polled = len(restarters) * SQS_POLLERS * HOURS_PER_MONTH * 3600 / SQS_LONG_POLL_SECONDS
        messages = sum(r["rotationsPerMonth"] for r in rotation_detail if r["by"] == "function")
        sqs_requests = polled + messages * SQS_REQUESTS_PER_MESSAGE
        memory = max(float(f.get("memorySize") or DEFAULT_LAMBDA_MEMORY_MB) for f in restarters)
        restart_gb_seconds = messages * RESTART_SECONDS_PER_INVOCATION * memory / 1024.0
        alarms = len(by_type.get(ALARM, []))
        lines["restartQueueRequests"] = _line(sqs_requests, "request", PRICES["sqs.per_1m_requests"], 1_000_000)
        lines["restartFunction"] = {
            **_line(messages, "invocation", PRICES["lambda.per_1m_requests"], 1_000_000),
            "monthlyUsd": round(messages / 1_000_000 * PRICES["lambda.per_1m_requests"]
                                + restart_gb_seconds * PRICES["lambda.gb_second.x86_64"], 4),
        }
        lines["alarms"] = _line(alarms, "alarm-month", PRICES["cloudwatch.alarm_month"])
        unrounded += (sqs_requests / 1_000_000 * PRICES["sqs.per_1m_requests"]
                      + messages / 1_000_000 * PRICES["lambda.per_1m_requests"]
                      + restart_gb_seconds * PRICES["lambda.gb_second.x86_64"]
                      + alarms * PRICES["cloudwatch.alarm_month"])
    access_rules = [r for r in by_type.get(RULE, []) if r.get("state") == ACCESS_RULE_STATE]
    if access_rules:
        # Every GetSecretValue of the environment (the application's and the rotations') is matched against
        # the rule, free; only the alerts cost anything.
        evaluated = reads + rotation_calls
        lines["accessAlertRule"] = _line(evaluated, "management event", PRICES["eventbridge.aws_management_event"])
        alert_usd = (access_alerts_per_month / 1_000_000 * PRICES["sns.per_1m_publishes"]
                     + access_alerts_per_month / 100_000 * PRICES["sns.email_per_100k"])
        lines["accessAlerts"] = {**_line(access_alerts_per_month, "alert", PRICES["sns.per_1m_publishes"], 1_000_000),
                                 "monthlyUsd": round(alert_usd, 4)}
        unrounded += alert_usd
    key_rotation_extra = len(rotating_keys) * KMS_BILLED_ROTATIONS * PRICES["kms.rotated_material_month"]
    warnings = []
    in_vpc = sum(1 for f in functions.values() if ((f.get("vpcConfig") or {}).get("subnetIds")))
    if in_vpc:
        warnings.append(
            f"{in_vpc} rotation function(s) run in a VPC and reach Secrets Manager through a NAT gateway or an "
            f"interface VPC endpoint (com.amazonaws.{region}.secretsmanager), which the program does not create "
            f"and this estimate does not count: an endpoint is about USD {VPC_ENDPOINT_AZ_HOUR:.2f} per "
            f"availability zone-hour (USD {VPC_ENDPOINT_AZ_HOUR * HOURS_PER_MONTH:.2f} a month per zone) plus data "
            f"({VPC_ENDPOINT_SOURCE})")
    if access_rules:
        warnings.append(
            f"access alerts see reads only while a CloudTrail trail logs read management events in {region}; the "
            f"account's first copy of management events is free, a further trail's are not ({CLOUDTRAIL_PRICING})")
    if region not in SAME_PRICE_REGIONS:
        warnings.append(f"prices are {PRICE_REGION} list prices; not checked for {region}")
    return {
        "currency": "USD",
        "region": region,
        "pricesAsOf": PRICES_AS_OF,
        "priceRegion": PRICE_REGION,
        "priceSources": list(PRICE_SOURCES),
        "prices": dict(PRICES),
        "assumptions": {
            "hoursPerMonth": HOURS_PER_MONTH,
            "readsPerSecretPerDay": reads_per_secret_per_day,
            "lambdaSecondsPerInvocation": lambda_seconds_per_invocation,
            "lambdaInvocationsPerRotation": STEPS_PER_ROTATION,
            "secretsManagerCallsPerRotation": SM_CALLS_PER_ROTATION,
            "kmsDecryptsPerRotation": KMS_DECRYPTS_PER_ROTATION,
            "accessAlertsPerMonth": access_alerts_per_month,
            "freeTiersIgnored": True,
        },
        "counts": {
            "secrets": len(secrets),
            "replicas": replicas,
            "kmsKeys": len(keys),
            "kmsKeysRotating": len(rotating_keys),
            "rotationsPerMonth": round(total_rotations, 4),
            "lambdaInvocations": round(invocations, 4),
            "secretsManagerApiCalls": round(reads + rotation_calls, 4),
            "kmsRequests": round(reads + rotation_kms, 4),
        },
        "rotations": rotation_detail,
        "lines": lines,
        "kmsKeyRotationSteadyState": _line(len(rotating_keys) * KMS_BILLED_ROTATIONS, "rotated key material-month",
                                           PRICES["kms.rotated_material_month"]),
        "monthlyUsd": round(unrounded, 2),
        "monthlyUsdSteadyState": round(unrounded + key_rotation_extra, 2),
        "warnings": warnings,
    }


def summary_lines(cost: Mapping[str, Any]) -> Iterable[str]:
    """A few lines for the text preview."""
    yield (f"Estimated monthly cost: USD {cost['monthlyUsd']:.2f} (USD {cost['monthlyUsdSteadyState']:.2f} once "
           f"every KMS key has rotated twice); {cost['priceRegion']} list prices of {cost['pricesAsOf']}")
    for name, line in cost["lines"].items():
        yield f"  {name:<24} {line['quantity']:>14,.1f} {line['unit']:<14} USD {line['monthlyUsd']:>9.4f}"
    for warning in cost["warnings"]:
        yield f"  warning: {warning}"
