"""Rules on Lambda functions, permissions, function URLs and log groups (one resource at a time)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from . import types as t
from .core import Settings, resource_rule

SUPPORTED_RUNTIMES_AS_OF = "2026-11-01"
SUPPORTED_RUNTIMES: tuple[str, ...] = (
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "nodejs22.x",
    "nodejs24.x",
)
"""Python / Node.js Lambda runtimes not yet deprecated on SUPPORTED_RUNTIMES_AS_OF (AWS Lambda
runtime deprecation schedule; python3.10 and nodejs20.x reach end of support in 2026).
Review this list when the date is more than six months old; override with policy config."""

SECRET_LIKE_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
REFERENCE_VALUE = re.compile(
    r"^(arn:[^\s]+|[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+){2,}|https?://[^\s]+|\$\{[^}]+\}|)$"
)
"""An ARN, a `<app>/<env>/<name>` secret name, a URL or a placeholder: a reference, not a value."""
TEMPLATE_KEY = re.compile(r"\{[A-Za-z][A-Za-z0-9_]*\}")
"""A `{key}` of a catalog template (a rotation function's `templates` parameter): a name, not a value. It is
removed before the entropy test, so the template's literal text is still tested (a secret written into one is
not hidden by a placeholder beside it)."""
ENTROPY_MIN_LENGTH = 20
ENTROPY_BITS_PER_CHAR = 4.0


def shannon(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def check_permission(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    props = args.props
    principal = str(props.get("principal") or "")
    if principal in ("", "*"):
        yield f"Lambda permission {args.name} grants invoke to principal '*'; name the service principal."
    if not props.get("sourceAccount"):
        yield (
            f"Lambda permission {args.name} has no sourceAccount; set source_account to this account "
            "so another account's resource cannot invoke the function."
        )
    if not props.get("sourceArn"):
        yield (
            f"Lambda permission {args.name} has no sourceArn; set source_arn to the resource allowed to "
            "invoke the function (e.g. the secret's ARN)."
        )


def check_function_url(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    yield (
        f"Lambda function URL {args.name} exposes a function over HTTPS; remove it and invoke the function "
        "through Secrets Manager or an authenticated API."
    )


def check_invocation(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    """A deploy invokes a function only to make a first value: `{"FirstValue": "<app>/<env>/<name>"}`, once
    (lifecycleScope CREATE_ONLY, the default). Anything else in the input (a `Replace`, which makes a new value
    over a live one) belongs to `ops rotate --leaked`, never to a deploy; CRUD scope re-invokes the function on
    every update and delete with the lifecycle added to the input (pulumi-aws lambda.Invocation,
    `lifecycleScope`)."""
    props = args.props
    raw = props.get("input")
    try:
        event = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        event = None
    if not (isinstance(event, dict) and set(event) == {"FirstValue"} and isinstance(event["FirstValue"], str)):
        keys = ", ".join(sorted(str(k)[:40] for k in event)[:5]) if isinstance(event, dict) else "not a JSON object"
        yield (f"Lambda invocation {args.name} sends {keys[:200]}; a deploy may only send "
               '{"FirstValue": "<app>/<env>/<name>"} (a replacement after a leak is `python -m ops rotate --leaked`).')
    scope = props.get("lifecycleScope")
    if scope not in (None, "", "CREATE_ONLY"):
        yield (f"Lambda invocation {args.name} has lifecycleScope {str(scope)[:40]}; use CREATE_ONLY so the "
               "function runs once, when the secret is created.")


def _leaves(value: str) -> list[str]:
    """The strings to test for entropy: a JSON document's keys and string leaves one by one (a JSON
    list of names and settings is varied text as a whole, not a key), otherwise the value itself;
    each split at whitespace. A key or token has none inside it (a PEM's lines are words of their own),
    while rule lists and sentences do: a Redis ACL such as `~app:* +@all -@dangerous` reaches 4 bits
    per character as a whole and none of its words does."""
    return [TEMPLATE_KEY.sub("", word) for leaf in _json_leaves(value) for word in leaf.split()]


def _json_leaves(value: str) -> list[str]:
    try:
        document = json.loads(value)
    except ValueError:
        return [value]
    if not isinstance(document, dict | list):
        return [value]
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                found.append(str(k))
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            found.append(node)

    walk(document)
    return found


def check_environment(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    env = args.props.get("environment")
    variables = env.get("variables") if isinstance(env, Mapping) else None
    if not isinstance(variables, Mapping):
        return
    for key in sorted(variables):
        value = str(variables[key])
        if REFERENCE_VALUE.match(value):
            continue
        if SECRET_LIKE_NAME.search(key):
            yield (
                f"Lambda function {args.name} environment variable {key} holds a literal secret-looking "
                "value; store it in Secrets Manager and pass the secret's ARN instead."
            )
        elif any(len(v) >= ENTROPY_MIN_LENGTH and shannon(v) >= ENTROPY_BITS_PER_CHAR
                 and not REFERENCE_VALUE.match(v) for v in _leaves(value)):
            yield (
                f"Lambda function {args.name} environment variable {key} holds a high-entropy value that "
                "looks like a key or token; store it in Secrets Manager and pass the secret's ARN instead."
            )


def check_runtime(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if args.props.get("packageType") == "Image":
        return
    runtime = args.props.get("runtime")
    allowed = list(settings.get("supportedRuntimes", list(SUPPORTED_RUNTIMES)))
    if runtime not in allowed:
        yield (
            f"Lambda function {args.name} uses runtime {runtime!r}, not a supported Python/Node.js runtime "
            f"(as of {SUPPORTED_RUNTIMES_AS_OF}: {', '.join(allowed)}); upgrade the runtime."
        )


def check_log_retention(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if not args.props.get("retentionInDays"):
        yield (
            f"log group {args.name} keeps logs forever (no retentionInDays); set retention_in_days "
            "(e.g. 90 or 365)."
        )


POLICIES = [
    resource_rule(
        "lambda-permission-restricted",
        "Lambda invoke permissions name a principal and restrict sourceAccount and sourceArn.",
        EnforcementLevel.MANDATORY,
        [t.LAMBDA_PERMISSION],
        check_permission,
    ),
    resource_rule(
        "lambda-no-function-url",
        "Lambda function URLs are not used.",
        EnforcementLevel.MANDATORY,
        [t.LAMBDA_FUNCTION_URL],
        check_function_url,
    ),
    resource_rule(
        "lambda-invocation-first-value-only",
        "A deploy invokes a function only to make a first value, once; never to replace a value.",
        EnforcementLevel.MANDATORY,
        [t.LAMBDA_INVOCATION],
        check_invocation,
    ),
    resource_rule(
        "lambda-env-no-secrets",
        "Lambda environment variables hold no secret values (secret-looking names or high-entropy values).",
        EnforcementLevel.MANDATORY,
        [t.LAMBDA_FUNCTION],
        check_environment,
    ),
    resource_rule(
        "lambda-supported-runtime",
        "Lambda functions use a supported Python or Node.js runtime.",
        EnforcementLevel.MANDATORY,
        [t.LAMBDA_FUNCTION],
        check_runtime,
        {
            "supportedRuntimes": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(SUPPORTED_RUNTIMES),
            }
        },
    ),
    resource_rule(
        "log-group-retention",
        "CloudWatch log groups set a retention period.",
        EnforcementLevel.MANDATORY,
        [t.LOG_GROUP],
        check_log_retention,
    ),
]
