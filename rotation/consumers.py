"""Restart the consumers of rotated secrets: one new ECS deployment, or one new set of Lambda execution
environments, per consumer and per burst of rotations.

Secrets Manager's `RotationSucceeded` events reach this function through an SQS queue that delays each of
them by the restart window (components/consumers.py). For each consumer of the rotated secret:

- ECS (`kind: ecs`): DescribeServices; if the PRIMARY deployment was created after the rotation, its tasks
  started after the new value was current and read it: nothing to do. Otherwise UpdateService with
  forceNewDeployment (ECS API reference, UpdateService: "forceNewDeployment ... a new deployment ... with
  the same task definition"; a new deployment becomes PRIMARY, DescribeServices `deployments`).
- Lambda (`kind: lambda`): GetFunctionConfiguration; if its configuration changed after the rotation,
  every execution environment started since reads the new value. Otherwise UpdateFunctionConfiguration
  with one variable changed (`SECRETS_ROTATED_AT`): Lambda provisions the function anew, and invocations
  after the update runs use the new configuration (Lambda API reference, UpdateFunctionConfiguration).

So the first delayed event of a burst restarts after the whole burst, and the later events of the burst,
and any retry, find a deployment newer than their rotation. A record that fails is reported back
(`batchItemFailures`) and retried; after 5 receipts it goes to the dead-letter queue, which pages.

Environment: CONSUMER_TARGETS = {"targets": {consumer: {"kind": "ecs", "cluster", "service"} |
{"kind": "lambda", "function"}}, "secrets": {"<app>/<env>/<name>": [consumer, ...]}}. No secret value is
ever read: the function has no right to any secret.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("consumers")
logger.setLevel(logging.INFO)

ROTATED_AT = "SECRETS_ROTATED_AT"
"""The variable a Lambda consumer's restart changes (a value of its own: nothing else reads it)."""
ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:(?P<name>.+)$")


class TargetsError(ValueError):
    """CONSUMER_TARGETS is not what the program writes."""


@dataclass(frozen=True)
class Rotation:
    """One RotationSucceeded event: which secret, when."""

    secret: str
    """The secret's name (its ARN without the six-character suffix)."""
    at: dt.datetime


def parse_event(body: str) -> Rotation:
    """The EventBridge event an SQS record carries (CloudTrail service event). The secret's ARN is in
    `additionalEventData.SecretId` or `serviceEventDetails.secretId` (the rule matches either)."""
    event = json.loads(body)
    detail = event.get("detail") or {}
    arn = (detail.get("additionalEventData") or {}).get("SecretId") or (
        detail.get("serviceEventDetails") or {}).get("secretId")
    match = SECRET_ARN.fullmatch(arn or "")
    if match is None:
        raise ValueError("the event names no secret ARN")
    when = detail.get("eventTime") or event.get("time")
    return Rotation(secret=ARN_SUFFIX.sub("", match.group("name")), at=_time(str(when)))


def _time(value: str) -> dt.datetime:
    """An ISO 8601 time (`2026-11-30T02:17:48Z`, Lambda's `2026-11-30T02:17:48.000+0000`) in UTC."""
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = dt.datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def load_targets(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    try:
        raw = json.loads(environ.get("CONSUMER_TARGETS", ""))
        targets, secrets = raw["targets"], raw["secrets"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TargetsError("CONSUMER_TARGETS must be {\"targets\": {...}, \"secrets\": {...}}") from exc
    for consumers in secrets.values():
        for consumer in consumers:
            if targets.get(consumer, {}).get("kind") not in ("ecs", "lambda"):
                raise TargetsError(f"CONSUMER_TARGETS names consumer {consumer!r} without an ecs or lambda target")
    return targets, secrets


class Restarter:
    """Restarts one consumer unless it already started after a rotation, through injected clients."""

    def __init__(self, ecs: Any, lambda_: Any, now: Callable[[], dt.datetime] | None = None) -> None:
        self.ecs = ecs
        self.lambda_ = lambda_
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def ecs_service(self, cluster: str, service: str, rotated_at: dt.datetime) -> bool:
        """True if a deployment was forced; False if the PRIMARY one is newer than the rotation."""
        answer = self.ecs.describe_services(cluster=cluster, services=[service])
        if answer.get("failures") or not answer.get("services"):
            raise LookupError(f"ECS service {cluster}/{service}: {answer.get('failures')}")
        primary = next((d for d in answer["services"][0].get("deployments", []) if d.get("status") == "PRIMARY"),
                       None)
        if primary is not None and _aware(primary["createdAt"]) > rotated_at:
            logger.info("ECS service %s/%s: deployment %s started after the rotation", cluster, service,
                        primary.get("id"))
            return False
        self.ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        logger.info("ECS service %s/%s: new deployment forced", cluster, service)
        return True

    def function(self, name: str, rotated_at: dt.datetime) -> bool:
        """True if the function's configuration was changed; False if it changed after the rotation."""
        config = self.lambda_.get_function_configuration(FunctionName=name)
        if _time(config["LastModified"]) > rotated_at:
            logger.info("Lambda function %s: configuration changed after the rotation", name)
            return False
        # UpdateFunctionConfiguration replaces every variable: keep the function's own. Variables under a
        # customer managed key this role may not decrypt come back as `Environment.Error` (Lambda API
        # reference, EnvironmentResponse) and must never be replaced by ours alone: fail, and page.
        environment = config.get("Environment") or {}
        if environment.get("Error"):
            raise PermissionError(f"Lambda function {name}: its variables cannot be read "
                                  f"({environment['Error'].get('ErrorCode', '?')}); not restarted")
        variables = dict(environment.get("Variables") or {})
        variables[ROTATED_AT] = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        logger.info("Lambda function %s: new execution environments", name)
        return True


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return _time(str(value))


Batch = dict[str, list[dict[str, str]]]
"""The SQS event source's partial batch response: `{"batchItemFailures": [{"itemIdentifier": id}]}`."""


def handle(event: Mapping[str, Any], environ: Mapping[str, str], restarter: Restarter) -> Batch:
    """One SQS batch. Per consumer, the latest rotation of the batch decides; a consumer restarted by an
    earlier record of the batch is not restarted again. Failed records are reported for retry."""
    targets, secrets = load_targets(environ)
    latest: dict[str, tuple[dt.datetime, list[str]]] = {}
    failed: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = record["messageId"]
        try:
            rotation = parse_event(record["body"])
        except (ValueError, TypeError, AttributeError) as exc:
            # Not a rotation event: retrying cannot help; it is logged and dropped.
            logger.warning("record %s is not a RotationSucceeded event: %s", message_id, exc)
            continue
        for consumer in secrets.get(rotation.secret, []):
            at, ids = latest.get(consumer, (rotation.at, []))
            latest[consumer] = (max(at, rotation.at), [*ids, message_id])
    for consumer, (at, ids) in sorted(latest.items()):
        target = targets[consumer]
        try:
            if target["kind"] == "ecs":
                restarter.ecs_service(target["cluster"], target["service"], at)
            else:
                restarter.function(target["function"], at)
        except Exception as exc:  # noqa: BLE001 (any failure: the records are retried, then dead-lettered)
            logger.error("restarting %s failed: %s: %s", consumer, type(exc).__name__, exc)
            failed.extend({"itemIdentifier": i} for i in ids)
    unique = {f["itemIdentifier"]: f for f in failed}
    return {"batchItemFailures": list(unique.values())}


@functools.cache
def _clients(region: str | None) -> tuple[Any, Any]:
    import boto3  # in the Lambda runtime

    return boto3.client("ecs", region_name=region), boto3.client("lambda", region_name=region)


def lambda_handler(event: Mapping[str, Any], context: object) -> Batch:
    """AWS Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    ecs, lambda_ = _clients(os.environ.get("AWS_REGION"))
    return handle(event, os.environ, Restarter(ecs, lambda_))
