"""Every AWS name the program gives a resource, built in one place, within AWS's limit, never colliding.

A name longer than its limit keeps its readable start and ends in `-` plus eight hex characters of
a SHA-256 of the whole name, so two long names that share their first characters still differ and
the same input always gives the same name (a changing name would replace the resource).
"""

from __future__ import annotations

import hashlib

# The `max` of each name's shape in botocore's service models (tests/test_names.py reads them back):
# iam CreateRole.RoleName (roleNameType), CreatePolicy.PolicyName (policyNameType), lambda
# CreateFunction.FunctionName, logs CreateLogGroup.logGroupName, events PutRule.Name (RuleName),
# sns CreateTopic.Name (AWS documents 256; the model has no max), kms CreateAlias.AliasName.
ROLE = 64
POLICY = 128
FUNCTION = 64
LOG_GROUP = 512
EVENT_RULE = 64
TOPIC = 256
ALIAS = 256

_DIGEST = 8


def fit(name: str, limit: int) -> str:
    """`name` if it fits in `limit` characters; otherwise its start plus a stable hash of all of it."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST]
    return f"{name[:limit - _DIGEST - 1].rstrip('-')}-{digest}"


def rotation_function(app: str, environment: str, group: str) -> str:
    """A rotation group's Lambda function; its execution role has the same name (fixed in advance so
    that the key policy can name the role before it exists)."""
    return fit(f"{app}-{environment}-rotate-{group}", min(ROLE, FUNCTION))


def rotation_log_group(function: str) -> str:
    """Where Lambda writes a function's logs by default (the function's logging config names it)."""
    return fit(f"/aws/lambda/{function}", LOG_GROUP)


def rotation_policy(function: str) -> str:
    return fit(f"{function}-policy", POLICY)


def access_policy(app: str, environment: str, purpose: str) -> str:
    """A managed access policy: `<app>-<env>-secrets-read`, `<app>-<env>-<consumer>-secrets-read`..."""
    return fit(f"{app}-{environment}-{purpose}", POLICY)


def alerts(app: str, environment: str) -> tuple[str, str]:
    """(SNS topic, EventBridge rule) that report an environment's failed rotations."""
    base = f"{app}-{environment}-rotation-failures"
    return fit(base, TOPIC), fit(base, EVENT_RULE)


def key_alias(app: str, environment: str) -> str:
    """The alias of an environment's key (the catalog refuses the app name `aws`: KMS reserves
    `alias/aws/` for AWS managed keys)."""
    return fit(f"alias/{app}/{environment}/secrets", ALIAS)


# Pulumi's own names: the components' type tokens and the URNs `pulumi up --replace` takes.
ENVIRONMENT_TYPE = "secrets-platform:index:SecretsEnvironment"
CATALOG_COMPONENT_TYPE = "secrets-platform:index:CatalogSecret"
RANDOM_TYPES = {
    "bytes": "random:index/randomBytes:RandomBytes",
    "password": "random:index/randomPassword:RandomPassword",
    "uuid": "random:index/randomUuid:RandomUuid",
}
"""The pulumi-random resource that makes each kind of generated value (components/secret.py)."""


def environment_component(app: str, environment: str) -> str:
    """The logical name of the stack's SecretsEnvironment (`__main__.py`)."""
    return f"{app}-{environment}"


def generated_value_urn(stack: str, project: str, app: str, environment: str, secret: str, key: str,
                        kind: str) -> str:
    """The URN of the random resource behind one generated value: `pulumi up --replace` on it makes a
    new value (and, for a secret no function rotates, a new version). The engine's URN type is the
    parents' type chain (SecretsEnvironment, CatalogSecret) and the resource's own."""
    component = f"{environment_component(app, environment)}-{secret}"
    chain = f"{ENVIRONMENT_TYPE}${CATALOG_COMPONENT_TYPE}${RANDOM_TYPES[kind]}"
    return f"urn:pulumi:{stack}::{project}::{chain}::{component}-{key or 'value'}"


QUEUE = 80
"""SQS queue names: "up to 80 characters" (SQS API reference, CreateQueue.QueueName; no max in botocore)."""
ALARM = 255
"""CloudWatch PutMetricAlarm.AlarmName (botocore's model: 255)."""


def consumer_restarts(app: str, environment: str) -> str:
    """The stem of an environment's consumer restarts (rule, queue, function, role, alarms); every name
    made from it is fitted to its own limit, and each alarm's ARN starts with it (the alerts topic lets
    CloudWatch publish for alarms under it)."""
    return f"{app}-{environment}-restart-consumers"


PROGRAM_VALUE_LABEL = "platform-program-value"
"""The staging label of every secret version the program writes (components/secret.py). Secrets Manager deletes
only unlabelled versions, and a label sits on one version of a secret at a time: this one stays on the
program's version through every rotation, which moves only AWSCURRENT, AWSPENDING and AWSPREVIOUS."""


PUBLIC_KEY_SUFFIX = "-public-key"
"""The suffix of a jwt-rs256 key's public secret (components/public_key.py). Not `-public`: six characters
after a hyphen look like the random suffix AWS adds to every secret's ARN."""


def public_name(name: str) -> str:
    """The catalog name of the public secret of signing secret `name`."""
    return f"{name}{PUBLIC_KEY_SUFFIX}"
