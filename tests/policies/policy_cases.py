"""The corpus of planted violations: one field changed on the compliant stack, and the rule meant to catch it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import policy_fixtures as f

from preview.model import CollectedResource

Mutation = Callable[[list[CollectedResource]], list[CollectedResource]]

ALLOW = "Allow"


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    policy: str
    resource: str
    """Name of the resource the violation is reported on."""
    also: tuple[tuple[str, str], ...] = ()
    """Other (policy, resource) violations the same change rightly causes."""


def _r(type_: str, name: str, inputs: dict, **kw: object) -> CollectedResource:
    return f.res(type_, name, inputs, **kw)  # type: ignore[arg-type]


def _manual(stack: list[CollectedResource], period: str) -> list[CollectedResource]:
    """api-token made a critical secret rotated by hand (with its reason) every `period` days."""
    for key, value in (("class", "critical"), ("rotation", "manual"), ("rotation-reason", "issued by hand at the "
                       "card network console"), ("rotate-every-days", period)):
        stack = f.set_tag("api-token", key, value)(stack)
    return stack


def _in_staging(r: CollectedResource) -> CollectedResource:
    return replace(r, inputs={**r.inputs, "name": "payments/staging/db-password"})


CASES: list[Case] = [
    # --- secrets
    Case("secret-no-kms-key", f.set_input("db-password", "kmsKeyId", None), "secret-customer-managed-kms-key",
         "db-password"),
    Case("secret-aws-managed-key", f.set_input("api-token", "kmsKeyId", "alias/aws/secretsmanager"),
         "secret-customer-managed-kms-key", "api-token"),
    Case("secret-wrong-env-in-name", lambda s: f.change(s, "db-password", _in_staging), "secret-name-convention",
         "db-password", also=(("no-cross-environment-references", "db-password"),)),
    Case("secret-flat-name", f.set_input("api-token", "name", "api-token"), "secret-name-convention", "api-token"),
    Case("secret-no-name", f.set_input("api-token", "name", None), "secret-name-convention", "api-token"),
    Case("secret-missing-owner", f.set_tag("db-password", "owner", None), "secret-required-tags", "db-password"),
    Case("secret-bad-class", f.set_tag("api-token", "class", "internal"), "secret-required-tags", "api-token"),
    Case("secret-env-tag-mismatch", f.set_tag("api-token", "environment", "staging"), "secret-required-tags",
         "api-token"),
    Case("secret-name-like-an-arn-suffix", f.set_input("api-token", "name", "payments/production/api-secret"),
         "secret-name-arn-suffix", "api-token"),
    Case("secret-no-description", f.set_input("api-token", "description", None), "secret-description",
         "api-token"),
    Case("secret-force-delete", f.set_input("db-password", "recoveryWindowInDays", 0), "secret-recovery-window",
         "db-password"),
    Case("secret-short-window", f.set_input("api-token", "recoveryWindowInDays", 3), "secret-recovery-window",
         "api-token"),
    Case("secret-prod-unprotected", f.set_option("db-password", protect=False), "secret-production-protected",
         "db-password"),
    Case("critical-no-rotation", f.remove("db-password-rotation"), "secret-rotation-required", "db-password"),
    Case("rotation-too-slow", f.set_input("db-password-rotation", "rotationRules", {"automaticallyAfterDays": 120}),
         "secret-rotation-required", "db-password-rotation"),
    Case("rotation-slow-schedule",
         f.set_input("db-password-rotation", "rotationRules", {"scheduleExpression": "rate(180 days)"}),
         "secret-rotation-required", "db-password-rotation"),
    Case("manual-period-too-long", lambda s: _manual(s, "400"), "secret-rotation-required", "api-token"),
    Case("manual-period-not-a-number", lambda s: _manual(s, "yearly"), "secret-rotation-required", "api-token"),
    Case("on-compromise-without-reason",
         lambda s: f.set_tag("api-token", "class", "critical")(s), "secret-rotation-required", "api-token"),
    Case("literal-secret-string",
         lambda s: f.change(s, "api-token-version", lambda r: replace(
             r, inputs={**r.inputs, "secretString": "hunter2-literal"})),
         "secret-value-source", "api-token-version"),
    Case("literal-password-field",
         f.set_input("api-token-version", "secretString", '{"username": "svc", "password": "pw-in-code-123"}'),
         "secret-value-source", "api-token-version"),
    Case("rotated-version-no-ignore", f.set_option("db-password-version", ignore_changes=()),
         "secret-version-ignores-rotated-value", "db-password-version"),
    Case("app-renewed-version-no-ignore", f.set_tag("api-token", "rotation", "application"),
         "secret-version-ignores-rotated-value", "api-token-version",
         also=(("application-renewed-writer", "api-token"),)),
    Case("app-renewed-without-writer",
         lambda s: f.set_option("api-token-version", ignore_changes=("secretString",))(
             f.set_tag("api-token", "rotation", "application")(s)),
         "application-renewed-writer", "api-token"),
    Case("scheduled-rotation-of-empty-secret",
         lambda s: f.set_input("db-password-rotation", "rotateImmediately", False)(f.remove("db-password-version")(s)),
         "rotation-has-first-value", "db-password-rotation"),
    Case("waiting-rotation-too-slow",
         lambda s: f.set_tag("db-password", "rotation", "400d")(
             f.remove("db-password-rotation")(f.remove("db-password-version")(s))),
         "secret-rotation-required", "db-password"),
    Case("waiting-yearly-cron",
         lambda s: f.set_tag("db-password", "rotation-schedule", "cron:0 4 1 6 _ @")(
             f.remove("db-password-rotation")(f.remove("db-password-version")(s))),
         "secret-rotation-required", "db-password"),
    Case("production-allows-missing-values", f.set_tag("key", "missing-values", "allowed"), "stack-requires-values",
         "key"),
    # --- KMS
    Case("kms-no-rotation", f.set_input("key", "enableKeyRotation", False), "kms-key-rotation-enabled", "key"),
    Case("kms-wildcard-principal",
         f.set_statement("key", 0, Principal="*"), "kms-key-policy-no-wildcard-principal", "key"),
    Case("kms-wildcard-aws-principal",
         f.set_statement("key", 0, Principal={"AWS": "*"}), "kms-key-policy-no-wildcard-principal", "key"),
    Case("kms-lockout-bypass", f.set_input("key", "bypassPolicyLockoutSafetyCheck", True),
         "kms-key-no-lockout-bypass", "key"),
    Case("kms-short-deletion-window", f.set_input("key", "deletionWindowInDays", 7), "kms-key-deletion-window",
         "key"),
    Case("secret-foreign-key",
         lambda s: f.change(s, "api-token", lambda r: replace(r, property_dependencies={"kmsKeyId": ()})),
         "secret-uses-environment-key", "api-token"),
    # --- IAM
    Case("iam-star-action", f.set_statement("app-read", 0, Action="*"), "iam-no-wildcard-actions", "app-read",
         also=(("iam-read-only-policy", "app-read"), ("iam-kms-decrypt-via-service", "app-read"),
               ("iam-no-privilege-escalation", "app-read"))),
    Case("iam-service-wildcard", f.set_statement("deployer-ci", 0, Action="secretsmanager:*"),
         "iam-no-wildcard-actions", "deployer-ci", also=(("iam-policy-lint", "deployer-ci"),)),
    Case("iam-star-resource", f.set_statement("deployer-ci", 0, Resource="*"), "iam-no-star-resource",
         "deployer-ci", also=(("iam-environment-isolation", "deployer-ci"),)),
    Case("iam-read-policy-writes",
         f.set_statement("app-read", 0, Action=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]),
         "iam-read-only-policy", "app-read"),
    Case("iam-other-env-secret",
         f.set_statement("app-read", 0, Resource=f.secret_arn("payments/staging/db-password")),
         "iam-environment-isolation", "app-read", also=(("no-cross-environment-references", "app-read"),)),
    Case("iam-other-app-secret",
         f.set_statement("app-read", 0, Resource=f.secret_arn("billing/production/db-password")),
         "iam-environment-isolation", "app-read"),
    Case("iam-ci-no-deny", f.set_statement("deployer-ci", 1, Effect=ALLOW, Action="secretsmanager:ListSecrets",
                                           Resource="*"),
         "iam-ci-deny-production-delete", "deployer-ci"),
    # Only the unconditional Deny removed: the conditional ones the program also writes (no deletion
    # without recovery, no short window) deny on "*" but leave a plain DeleteSecret allowed.
    Case("iam-ci-only-conditional-deny",
         f.set_statement("deployer-ci", 1, Resource="*",
                         Condition={"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}),
         "iam-ci-deny-production-delete", "deployer-ci"),
    Case("iam-ci-deny-one-production-secret",
         f.set_statement("deployer-ci", 1, Resource=f.secret_arn("payments/production/db-password")),
         "iam-ci-deny-production-delete", "deployer-ci"),
    Case("iam-ci-deny-staging-only",
         f.set_statement("deployer-ci", 1, Resource="arn:aws:secretsmanager:*:*:secret:payments/staging/*"),
         "iam-ci-deny-production-delete", "deployer-ci"),
    Case("iam-decrypt-no-via-service", f.set_statement("app-read", 1, Condition=None),
         "iam-kms-decrypt-via-service", "app-read"),
    Case("iam-create-policy-version",
         f.set_statement("deployer-ci", 0, Action=["secretsmanager:DescribeSecret", "iam:CreatePolicyVersion"]),
         "iam-no-privilege-escalation", "deployer-ci", also=(("iam-policy-lint", "deployer-ci"),)),
    Case("iam-passrole-any",
         f.set_statement("deployer-ci", 0, Action="iam:PassRole",
                         Resource=f"arn:aws:iam::{f.ACCOUNT}:role/*"),
         "iam-no-privilege-escalation", "deployer-ci"),
    Case("iam-user-attachment",
         f.add(_r("aws:iam/userPolicyAttachment:UserPolicyAttachment", "alice-read",
                  {"user": "alice", "policyArn": f"arn:aws:iam::{f.ACCOUNT}:policy/app-read"})),
         "iam-no-user-policies", "alice-read"),
    Case("iam-unknown-action",
         f.set_statement("app-read", 0, Action=["secretsmanager:GetSecretValue", "secretsmanager:GetSecretValues"]),
         "iam-policy-lint", "app-read", also=(("iam-read-only-policy", "app-read"),)),
    Case("iam-resource-mismatch",
         f.set_statement("app-read", 1, Resource=f.secret_arn("payments/production/db-password")),
         "iam-policy-lint", "app-read"),
    Case("secret-shared-with-unlisted-account",
         f.set_statement("db-password-policy", 0, Principal={"AWS": "arn:aws:iam::999999999999:role/partner-reader"}),
         "secret-shared-accounts", "db-password-policy"),
    Case("secret-policy-wildcard-action", f.set_statement("db-password-policy", 0, Action="secretsmanager:*"),
         "iam-no-wildcard-actions", "db-password-policy"),
    # --- Lambda
    Case("lambda-permission-any-principal", f.set_input("rotator-invoke", "principal", "*"),
         "lambda-permission-restricted", "rotator-invoke",
         also=(("rotation-lambda-invoke-permission", "db-password-rotation"),)),
    Case("lambda-permission-no-source-account", f.set_input("rotator-invoke", "sourceAccount", None),
         "lambda-permission-restricted", "rotator-invoke"),
    Case("lambda-function-url",
         f.add(_r("aws:lambda/functionUrl:FunctionUrl", "rotator-url",
                  {"functionName": "payments-production-rotator", "authorizationType": "NONE"})),
         "lambda-no-function-url", "rotator-url"),
    Case("lambda-invocation-replaces",
         f.add(_r("aws:lambda/invocation:Invocation", "first-value-api-token",
                  {"functionName": "payments-production-rotate-first-value",
                   "input": json.dumps({"FirstValue": "payments/production/api-token", "Replace": True})})),
         "lambda-invocation-first-value-only", "first-value-api-token"),
    Case("lambda-invocation-crud",
         f.add(_r("aws:lambda/invocation:Invocation", "first-value-api-token",
                  {"functionName": "payments-production-rotate-first-value", "lifecycleScope": "CRUD",
                   "input": json.dumps({"FirstValue": "payments/production/api-token"})})),
         "lambda-invocation-first-value-only", "first-value-api-token"),
    Case("lambda-invocation-not-json",
         f.add(_r("aws:lambda/invocation:Invocation", "first-value-api-token",
                  {"functionName": "payments-production-rotate-first-value", "input": "[1, 2"})),
         "lambda-invocation-first-value-only", "first-value-api-token"),
    Case("lambda-env-password",
         f.set_input("rotator", "environment", {"variables": {"DB_PASSWORD": "s3cret-pass"}}),
         "lambda-env-no-secrets", "rotator"),
    Case("lambda-env-high-entropy",
         f.set_input("rotator", "environment", {"variables": {"UPSTREAM": "Zk9x2Qw7Lp3Vb8Nm4Rt6Yh1Jc5Gd0Fs"}}),
         "lambda-env-no-secrets", "rotator"),
    # A catalog template's keys are names: what is tested is its literal text, which here holds a token.
    Case("lambda-env-high-entropy-in-a-template",
         f.set_input("rotator", "environment", {"variables": {"ROTATION_TARGETS": json.dumps(
             {"payments/production/db": {"templates": {"url": "redis://{username}:Zk9x2Qw7Lp3Vb8Nm4Rt6Yh1J@{host}"}}})}}),
         "lambda-env-no-secrets", "rotator"),
    Case("lambda-old-runtime", f.set_input("rotator", "runtime", "python3.9"), "lambda-supported-runtime",
         "rotator"),
    Case("log-group-no-retention", f.set_input("rotator-logs", "retentionInDays", None), "log-group-retention",
         "rotator-logs", also=(("lambda-log-retention", "rotator"),)),
    Case("lambda-no-log-group", f.remove("rotator-logs"), "lambda-log-retention", "rotator"),
    Case("rotation-lambda-no-permission", f.remove("rotator-invoke"), "rotation-lambda-invoke-permission",
         "db-password-rotation"),
    # --- stack-wide
    Case("cross-env-reference",
         f.set_input("rotator", "environment", {"variables": {"PEER_SECRET_ID": "payments/staging/db-password"}}),
         "no-cross-environment-references", "rotator"),
]
