"""One compliant production stack, as the offline preview collects it, and ways to change one field."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pulumi.runtime.rpc import wrap_rpc_secret

from preview.model import CollectedResource

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"
if str(PACK_DIR) not in sys.path:
    # The engine puts the pack directory on sys.path; so do the tests (never `policies.guardrails`).
    sys.path.insert(0, str(PACK_DIR))

with warnings.catch_warnings():
    # parliament opens its data files without closing them (ResourceWarning at import).
    warnings.simplefilter("ignore")
    import parliament  # noqa: F401

PROJECT = "secrets-platform"
STACK = "production"
ACCOUNT = "123456789012"
REGION = "us-east-1"
APP = "payments"
ENV = "production"
CONFIG_API_TOKEN = "tok-from-config-4f9a1c2e8b7d6a5f"
STACK_CONFIG = {f"{PROJECT}:apiToken": CONFIG_API_TOKEN}

STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack${type_}::{name}"


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"


KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROTATOR_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{APP}-{ENV}-rotator"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{APP}-{ENV}-reader"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def res(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    *,
    protect: bool = False,
    prop_deps: dict[str, tuple[str, ...]] | None = None,
    ignore_changes: tuple[str, ...] = (),
) -> CollectedResource:
    deps = prop_deps or {}
    return CollectedResource(
        urn=urn(type_, name),
        type=type_,
        name=name,
        parent=STACK_URN,
        protect=protect,
        custom=True,
        inputs=inputs,
        dependencies=tuple(sorted({u for us in deps.values() for u in us})),
        property_dependencies=deps,
        ignore_changes=ignore_changes,
    )


KEY = urn("aws:kms/key:Key", "key")
DB_SECRET = urn("aws:secretsmanager/secret:Secret", "db-password")
API_SECRET = urn("aws:secretsmanager/secret:Secret", "api-token")
DB_RANDOM = urn("random:index/randomPassword:RandomPassword", "db-password-value")
ROTATOR = urn("aws:lambda/function:Function", "rotator")

TAGS = {"app": APP, "environment": ENV, "owner": "team-payments", "rotation": "scheduled"}


def base_stack() -> list[CollectedResource]:
    """A production stack every rule accepts."""
    stack = CollectedResource(
        urn=STACK_URN, type="pulumi:pulumi:Stack", name=f"{PROJECT}-{STACK}", parent=None,
        protect=False, custom=False, inputs={},
    )
    key_policy = doc(
        {
            "Sid": "AccountRoot",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    return [
        stack,
        res("aws:kms/key:Key", "key", {
            "description": "payments production secrets key",
            "enableKeyRotation": True,
            "deletionWindowInDays": 30,
            "policy": key_policy,
            "tags": {"app": APP, "environment": ENV},
        }),
        res("aws:kms/alias:Alias", "key-alias", {"name": f"alias/{APP}-{ENV}", "targetKeyId": KEY_ARN},
            prop_deps={"targetKeyId": (KEY,)}),
        res("random:index/randomPassword:RandomPassword", "db-password-value", {"length": 32, "special": True}),
        res("aws:secretsmanager/secret:Secret", "db-password", {
            "name": f"{APP}/{ENV}/db-password",
            "description": "PostgreSQL password of the payments service",
            "kmsKeyId": KEY_ARN,
            "recoveryWindowInDays": 30,
            "tags": {**TAGS, "class": "critical"},
        }, protect=True, prop_deps={"kmsKeyId": (KEY,)}),
        res("aws:secretsmanager/secretVersion:SecretVersion", "db-password-version", {
            "secretId": secret_arn(f"{APP}/{ENV}/db-password"),
            "secretString": wrap_rpc_secret(json.dumps({"username": "payments", "password": "x" * 32})),
        }, prop_deps={"secretId": (DB_SECRET,), "secretString": (DB_RANDOM,)}, ignore_changes=("secretString",)),
        res("aws:secretsmanager/secret:Secret", "api-token", {
            "name": f"{APP}/{ENV}/api-token",
            "description": "Token for the card network API",
            "kmsKeyId": KEY_ARN,
            "recoveryWindowInDays": 30,
            "tags": {**TAGS, "class": "configuration", "rotation": "on-compromise"},
        }, protect=True, prop_deps={"kmsKeyId": (KEY,)}),
        res("aws:secretsmanager/secretVersion:SecretVersion", "api-token-version", {
            "secretId": secret_arn(f"{APP}/{ENV}/api-token"),
            "secretString": wrap_rpc_secret(CONFIG_API_TOKEN),
        }, prop_deps={"secretId": (API_SECRET,), "secretString": ()}),
        res("aws:cloudwatch/logGroup:LogGroup", "rotator-logs", {
            "name": f"/aws/lambda/{APP}-{ENV}-rotator", "retentionInDays": 90,
        }),
        res("aws:lambda/function:Function", "rotator", {
            "name": f"{APP}-{ENV}-rotator",
            "runtime": "python3.12",
            "handler": "handler.main",
            "role": f"arn:aws:iam::{ACCOUNT}:role/{APP}-{ENV}-rotator",
            "environment": {"variables": {
                "SECRETS_MANAGER_ENDPOINT": f"https://secretsmanager.{REGION}.amazonaws.com",
                "LOG_LEVEL": "INFO",
            }},
        }),
        res("aws:lambda/permission:Permission", "rotator-invoke", {
            "action": "lambda:InvokeFunction",
            "function": ROTATOR_ARN,
            "principal": "secretsmanager.amazonaws.com",
            "sourceAccount": ACCOUNT,
            "sourceArn": secret_arn(f"{APP}/{ENV}/db-password"),
        }, prop_deps={"function": (ROTATOR,)}),
        res("aws:secretsmanager/secretRotation:SecretRotation", "db-password-rotation", {
            "secretId": secret_arn(f"{APP}/{ENV}/db-password"),
            "rotationLambdaArn": ROTATOR_ARN,
            "rotationRules": {"automaticallyAfterDays": 30},
        }, prop_deps={"secretId": (DB_SECRET,), "rotationLambdaArn": (ROTATOR,)}),
        res("aws:iam/policy:Policy", "app-read", {
            "description": "read the payments production secrets",
            "policy": doc(
                {
                    "Sid": "ReadSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": [secret_arn(f"{APP}/{ENV}/db-password")],
                },
                {
                    "Sid": "DecryptViaSecretsManager",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": KEY_ARN,
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
                },
            ),
            "tags": {"app": APP, "environment": ENV, "access": "read"},
        }),
        res("aws:iam/policy:Policy", "deployer-ci", {
            "description": "CI deploys payments production secrets",
            "policy": doc(
                {
                    "Sid": "ManageSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:DescribeSecret", "secretsmanager:UpdateSecret",
                               "secretsmanager:TagResource"],
                    "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{APP}/{ENV}/*",
                },
                {
                    "Sid": "NeverDeleteProduction",
                    "Effect": "Deny",
                    "Action": "secretsmanager:DeleteSecret",
                    "Resource": f"arn:aws:secretsmanager:*:*:secret:{APP}/production/*",
                },
            ),
            "tags": {"app": APP, "environment": ENV, "access": "ci"},
        }),
        res("aws:secretsmanager/secretPolicy:SecretPolicy", "db-password-policy", {
            "secretArn": secret_arn(f"{APP}/{ENV}/db-password"),
            "policy": doc(
                {
                    "Sid": "ReaderRole",
                    "Effect": "Allow",
                    "Principal": {"AWS": ROLE_ARN},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ),
        }, prop_deps={"secretArn": (DB_SECRET,)}),
    ]


def find(stack: list[CollectedResource], name: str) -> CollectedResource:
    (r,) = [r for r in stack if r.name == name]
    return r


def change(
    stack: list[CollectedResource], name: str, edit: Callable[[CollectedResource], CollectedResource]
) -> list[CollectedResource]:
    return [edit(r) if r.name == name else r for r in stack]


def set_input(name: str, key: str, value: Any) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    """A mutation: input `key` of resource `name` becomes `value` (None removes it)."""

    def edit(r: CollectedResource) -> CollectedResource:
        inputs = dict(r.inputs)
        if value is None:
            inputs.pop(key, None)
        else:
            inputs[key] = value
        return replace(r, inputs=inputs)

    return lambda stack: change(stack, name, edit)


def set_tag(name: str, key: str, value: str | None) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    def edit(r: CollectedResource) -> CollectedResource:
        tags = dict(r.inputs.get("tags") or {})
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value
        return replace(r, inputs={**r.inputs, "tags": tags})

    return lambda stack: change(stack, name, edit)


def set_option(name: str, **fields: Any) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    return lambda stack: change(stack, name, lambda r: replace(r, **fields))


def set_statement(name: str, index: int, **fields: Any) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    """A mutation of statement `index` of resource `name`'s policy document (None removes a field)."""

    def edit(r: CollectedResource) -> CollectedResource:
        document = json.loads(r.inputs["policy"])
        statement = document["Statement"][index]
        for k, v in fields.items():
            if v is None:
                statement.pop(k, None)
            else:
                statement[k] = v
        return replace(r, inputs={**r.inputs, "policy": json.dumps(document)})

    return lambda stack: change(stack, name, edit)


def add(resource: CollectedResource) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    return lambda stack: [*stack, resource]


def remove(name: str) -> Callable[[list[CollectedResource]], list[CollectedResource]]:
    return lambda stack: [r for r in stack if r.name != name]
