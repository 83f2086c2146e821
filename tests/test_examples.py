"""The examples (`examples/<app>/`): each seed system previewed offline for both stacks.

Each example is checked against what its seed document asks for, written out literally below: the
exact secret names, the exact JSON keys of every grouped secret, the exact environment variables and
where each comes from, and the values still to be set. Every example is run twice: as committed (no
external value set, so they are listed as action required) and with every external value set as a
`secure:` entry of a temporary copy of the stack file. Neither run may print a generated or secret
value.
"""

from __future__ import annotations

import gc
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime.rpc import _special_secret_sig as _SECRET
from pulumi.runtime.rpc import _special_sig_key as _SIG

from components.catalog import load_catalog
from components.secret import made_by_rotation
from preview.cli import Report, render_text, to_json
from preview.model import CollectedResource, plain
from tests.conftest import MINIMAL_STACK, REPO, run_stack

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
COMPONENT = "secrets-platform:index:CatalogSecret"
STACKS = ("production", "staging")
ACCOUNT = "123456789012"
FAKE_CIPHERTEXT = "v1:" + "A" * 44  # the offline preview never decrypts; it only needs the `secure:` shape


@dataclass(frozen=True)
class Example:
    """What one seed's example must declare."""

    region: str
    secrets: frozenset[str]
    """Catalog names present in every stack."""
    only_in: dict[str, str]
    """Catalog name -> the one stack that has it."""
    grouped: dict[str, frozenset[str]]
    """JSON secret -> its exact keys once every value is set (platform-added keys included)."""
    env: dict[str, str]
    """Environment variable -> `<secret>` or `<secret>:<key>` (every variable, optional ones included)."""
    optional: frozenset[str]
    """Variables fed by optional (`required: false`) external values."""
    required_gaps: frozenset[tuple[str, str]]
    """(secret, key) of the required external values, unset in the committed stack files."""
    optional_gaps: frozenset[tuple[str, str]]
    """(secret, key) of the optional external values (subject to `only_in`)."""
    made_by_rotation: frozenset[str] = frozenset()
    """Secrets whose first value the rotation function (or, with no schedule, the first-value function) makes:
    the program declares no version."""
    stack_gaps: dict[str, tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]] = field(
        default_factory=dict)
    """Stack -> (required, optional) gaps of that stack only (`required: [production]` values)."""
    optional_in: dict[str, frozenset[str]] = field(default_factory=dict)
    """Stack -> variables optional there only (fed by values or templates the stack may leave unset)."""
    plain_gaps: frozenset[tuple[str, str]] = frozenset()
    """Gaps that are plain config values (set without --secret)."""
    derived: frozenset[tuple[str, str]] = frozenset()
    """Template keys: left out where one of their parts is unset."""
    shared: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    """Stack -> role ARN of another account -> the secrets shared with it (catalog `shared_with`)."""

    def names(self, stack: str) -> set[str]:
        return set(self.secrets) | {name for name, only in self.only_in.items() if only == stack}

    def required_in(self, stack: str) -> frozenset[tuple[str, str]]:
        return self.required_gaps | self.stack_gaps.get(stack, (frozenset(), frozenset()))[0]

    def optional_gaps_in(self, stack: str) -> frozenset[tuple[str, str]]:
        return self.optional_gaps | self.stack_gaps.get(stack, (frozenset(), frozenset()))[1]

    def env_for(self, stack: str, *, optional: bool) -> dict[str, str]:
        names = self.names(stack)
        unset = self.optional | self.optional_in.get(stack, frozenset())
        return {
            var: target for var, target in self.env.items()
            if target.split(":")[0] in names and (optional or var not in unset)
        }


EXAMPLES: dict[str, Example] = {
    # Seed 000: filot (tranche T8-A), the repository's own catalog.
    "filot": Example(
        region="ap-southeast-2",
        secrets=frozenset({
            "jwt-secret", "session-secret", "service-internal-key", "database-url", "stack-auth",
            "cloudflare-r2", "redis", "redis-admin", "buli2", "temporal",
        }),
        only_in={},
        grouped={
            "jwt-secret": frozenset({"key", "alg", "kid"}),
            "stack-auth": frozenset({"projectId", "secretServerKey", "publishableClientKey"}),
            "cloudflare-r2": frozenset({"accountId", "endpoint", "accessKeyId", "secretKey", "bucketName"}),
            # `masterarn` is added by the platform: the ARN of the admin secret the rotation uses.
            "redis": frozenset({"url", "password", "host", "port", "username", "tls", "masterarn"}),
            "redis-admin": frozenset({"username", "password"}),
            "buli2": frozenset({"apiKey", "signatureSecret"}),
            "temporal": frozenset({"apiKey", "endpoint", "namespace"}),
        },
        env={
            "JWT_SECRET": "jwt-secret:key",
            "JWT_KEY_ID": "jwt-secret:kid",
            "SESSION_SECRET": "session-secret",
            "SERVICE_INTERNAL_KEY": "service-internal-key",
            "DATABASE_URL": "database-url",
            "STACK_PROJECT_ID": "stack-auth:projectId",
            "STACK_SECRET_SERVER_KEY": "stack-auth:secretServerKey",
            "STACK_PUBLISHABLE_CLIENT_KEY": "stack-auth:publishableClientKey",
            "CF_ACCOUNT_ID": "cloudflare-r2:accountId",
            "CF_R2_ENDPOINT": "cloudflare-r2:endpoint",
            "CF_R2_ACCESS_KEY_ID": "cloudflare-r2:accessKeyId",
            "CF_R2_SECRET_ACCESS_KEY": "cloudflare-r2:secretKey",
            "CF_R2_BUCKET_NAME": "cloudflare-r2:bucketName",
            "REDIS_URL": "redis:url",
            "REDIS_PASSWORD": "redis:password",
            "REDIS_HOST": "redis:host",
            "REDIS_PORT": "redis:port",
            "REDIS_USERNAME": "redis:username",
            "REDIS_TLS": "redis:tls",
            "BULI2_API_KEY": "buli2:apiKey",
            "BULI2_SIGNATURE_SECRET": "buli2:signatureSecret",
            "TEMPORAL_API_KEY": "temporal:apiKey",
            "TEMPORAL_ENDPOINT": "temporal:endpoint",
            "TEMPORAL_NAMESPACE": "temporal:namespace",
        },
        optional=frozenset(),
        required_gaps=frozenset({
            ("database-url", ""), ("stack-auth", "secretServerKey"), ("cloudflare-r2", "accessKeyId"),
            ("cloudflare-r2", "secretKey"), ("redis-admin", "password"), ("buli2", "apiKey"), ("temporal", "apiKey"),
        }),
        optional_gaps=frozenset(),
        made_by_rotation=frozenset({"service-internal-key"}),
    ),
    # Seed 001: whatsapp-saas (11 seed "secrets" -> 7 entries; OpenAI and the default sender grouped).
    "whatsapp-saas": Example(
        region="us-east-1",
        secrets=frozenset({
            "admin-token", "meta-verify-token", "meta-app-secret", "database-url", "redis-url", "openai", "whatsapp",
        }),
        only_in={},
        grouped={
            "openai": frozenset({"apiKey", "model", "maxTokens", "temperature"}),
            "whatsapp": frozenset({"phoneNumberId", "accessToken"}),
        },
        env={
            "ADMIN_TOKEN": "admin-token",
            "META_VERIFY_TOKEN": "meta-verify-token",
            "META_APP_SECRET": "meta-app-secret",
            "DATABASE_URL": "database-url",
            "REDIS_URL": "redis-url",
            "OPENAI_API_KEY": "openai:apiKey",
            "OPENAI_MODEL": "openai:model",
            "OPENAI_MAX_TOKENS": "openai:maxTokens",
            "OPENAI_TEMPERATURE": "openai:temperature",
            "WHATSAPP_PHONE_NUMBER_ID": "whatsapp:phoneNumberId",
            "WHATSAPP_ACCESS_TOKEN": "whatsapp:accessToken",
        },
        optional=frozenset({"WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_ACCESS_TOKEN"}),
        required_gaps=frozenset({
            ("meta-app-secret", ""), ("database-url", ""), ("redis-url", ""), ("openai", "apiKey"),
        }),
        optional_gaps=frozenset({("whatsapp", "phoneNumberId"), ("whatsapp", "accessToken")}),
    ),
    # Seed 002: tria-aibpo (one `.env.production` -> one entry per concern; Twilio in production only).
    "tria-aibpo": Example(
        region="ap-southeast-1",
        secrets=frozenset({
            "database", "database-admin", "secret-key", "backup-encryption-key", "openai-api-key", "xero",
            "xero-refresh-token",
            "app-config",
            "sentry-dsn", "sendgrid-api-key",
        }),
        only_in={"twilio": "production"},
        grouped={
            "database": frozenset({"engine", "host", "port", "dbname", "username", "password", "url", "sslmode",
                                   "masterarn"}),
            "database-admin": frozenset({"username", "password"}),
            "xero": frozenset({"clientId", "clientSecret", "tenantId", "salesAccountCode", "taxType"}),
            "app-config": frozenset({"corsOrigins", "taxRate"}),
            "twilio": frozenset({"accountSid", "authToken"}),
        },
        env={
            "POSTGRES_HOST": "database:host",
            "POSTGRES_PORT": "database:port",
            "POSTGRES_DB": "database:dbname",
            "POSTGRES_USER": "database:username",
            "POSTGRES_PASSWORD": "database:password",
            "DATABASE_URL": "database:url",
            "PGSSLMODE": "database:sslmode",
            "SECRET_KEY": "secret-key",
            "BACKUP_ENCRYPTION_KEY": "backup-encryption-key",
            "OPENAI_API_KEY": "openai-api-key",
            "XERO_CLIENT_ID": "xero:clientId",
            "XERO_CLIENT_SECRET": "xero:clientSecret",
            "XERO_REFRESH_TOKEN": "xero-refresh-token",
            "XERO_TENANT_ID": "xero:tenantId",
            "XERO_SALES_ACCOUNT_CODE": "xero:salesAccountCode",
            "XERO_TAX_TYPE": "xero:taxType",
            "CORS_ORIGINS": "app-config:corsOrigins",
            "TAX_RATE": "app-config:taxRate",
            "SENTRY_DSN": "sentry-dsn",
            "SENDGRID_API_KEY": "sendgrid-api-key",
            "TWILIO_ACCOUNT_SID": "twilio:accountSid",
            "TWILIO_AUTH_TOKEN": "twilio:authToken",
        },
        optional=frozenset({"SENTRY_DSN", "SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}),
        required_gaps=frozenset({
            ("database-admin", "password"), ("openai-api-key", ""), ("xero", "clientSecret"),
            ("xero-refresh-token", ""),
        }),
        optional_gaps=frozenset({
            ("sentry-dsn", ""), ("sendgrid-api-key", ""), ("twilio", "accountSid"), ("twilio", "authToken"),
        }),
        made_by_rotation=frozenset({"backup-encryption-key"}),
    ),
    # Two applications written from the README alone: every catalog field the seeds do not use.
    "ledgerly": Example(
        region="eu-west-1",
        secrets=frozenset({
            "database", "database-admin", "cache", "stripe", "cookie-signing-key", "access-token-key",
            "access-token-key-public-key", "renderer-token", "export-access-key",
        }),
        only_in={},
        grouped={
            "database": frozenset({"engine", "host", "port", "dbname", "username", "password", "sslmode", "url",
                                   "masterarn"}),
            "database-admin": frozenset({"username", "password"}),
            "cache": frozenset({"host", "token", "url"}),
            "stripe": frozenset({"secretKey", "webhookSecret", "publishableKey"}),
            "export-access-key": frozenset({"accessKeyId", "secretAccessKey", "bucket"}),
        },
        env={
            "PGHOST": "database:host", "PGPORT": "database:port", "PGDATABASE": "database:dbname",
            "PGUSER": "database:username", "PGPASSWORD": "database:password", "PGSSLMODE": "database:sslmode",
            "DATABASE_URL": "database:url",
            "REDIS_HOST": "cache:host", "REDIS_AUTH_TOKEN": "cache:token", "REDIS_URL": "cache:url",
            "STRIPE_SECRET_KEY": "stripe:secretKey", "STRIPE_WEBHOOK_SECRET": "stripe:webhookSecret",
            "STRIPE_PUBLISHABLE_KEY": "stripe:publishableKey",
            "COOKIE_SIGNING_KEY": "cookie-signing-key",
            "ACCESS_TOKEN_KID": "access-token-key:kid", "ACCESS_TOKEN_PRIVATE_KEY": "access-token-key:private_key_pem",
            "ACCESS_TOKEN_JWKS": "access-token-key-public-key:jwks",
            "RENDERER_TOKEN": "renderer-token",
            "EXPORT_ACCESS_KEY_ID": "export-access-key:accessKeyId",
            "EXPORT_SECRET_ACCESS_KEY": "export-access-key:secretAccessKey",
            "EXPORT_BUCKET": "export-access-key:bucket",
        },
        optional=frozenset(),
        required_gaps=frozenset({
            ("database-admin", "password"), ("stripe", "secretKey"), ("stripe", "webhookSecret"),
            ("cookie-signing-key", ""), ("export-access-key", "accessKeyId"), ("export-access-key", "secretAccessKey"),
        }),
        optional_gaps=frozenset(),
        made_by_rotation=frozenset({"access-token-key", "access-token-key-public-key"}),
        # Redis: required in production (its host is in the stack file), optional in staging (unset there).
        stack_gaps={"production": (frozenset({("cache", "token")}), frozenset()),
                    "staging": (frozenset(), frozenset({("cache", "token"), ("cache", "host")}))},
        # The batch account's renderer reads the renderer token, in production only.
        shared={"production": {
            "arn:aws:iam::345678901234:role/ledgerly-batch-renderer": frozenset({"renderer-token"})}},
        optional_in={"staging": frozenset({"REDIS_HOST", "REDIS_AUTH_TOKEN", "REDIS_URL"})},
        plain_gaps=frozenset({("cache", "host")}),
        derived=frozenset({("database", "url"), ("cache", "url")}),
    ),
    "fieldkit": Example(
        region="ca-central-1",
        secrets=frozenset({
            "database", "database-admin", "firebase", "apns", "maps-api-key", "id-token-key",
            "id-token-key-public-key", "device-token-key", "admin-session-key", "webhook-signing-key",
            "reporting-database", "salesforce",
        }),
        only_in={},
        grouped={
            "database": frozenset({"engine", "host", "port", "dbname", "username", "password", "ssl", "masterarn"}),
            "database-admin": frozenset({"username", "password"}),
            # Its masterarn is the RDS-managed master's ARN, from the stack's managedMasters.
            "reporting-database": frozenset({"engine", "host", "port", "dbname", "username", "password",
                                             "masterarn"}),
            # A managed external secret: the keys Salesforce's rotation reads (user guide).
            "salesforce": frozenset({"consumerKey", "consumerSecret", "baseUri", "appId", "consumerId"}),
            "apns": frozenset({"keyId", "teamId", "privateKey"}),
            "device-token-key": frozenset({"key", "kid", "alg"}),
        },
        env={
            "DB_HOST": "database:host", "DB_PORT": "database:port", "DB_NAME": "database:dbname",
            "DB_USER": "database:username", "DB_PASSWORD": "database:password", "DB_SSL": "database:ssl",
            "FIREBASE_SERVICE_ACCOUNT_JSON": "firebase",
            "APNS_KEY_ID": "apns:keyId", "APNS_TEAM_ID": "apns:teamId", "APNS_PRIVATE_KEY": "apns:privateKey",
            "MAPS_API_KEY": "maps-api-key",
            "ID_TOKEN_KID": "id-token-key:kid", "ID_TOKEN_PRIVATE_KEY": "id-token-key:private_key_pem",
            "ID_TOKEN_JWKS": "id-token-key-public-key:jwks",
            "DEVICE_TOKEN_KEY": "device-token-key:key", "DEVICE_TOKEN_KID": "device-token-key:kid",
            "ADMIN_SESSION_KEY": "admin-session-key", "WEBHOOK_SIGNING_KEY": "webhook-signing-key",
            "REPORTING_DB_HOST": "reporting-database:host", "REPORTING_DB_PORT": "reporting-database:port",
            "REPORTING_DB_NAME": "reporting-database:dbname", "REPORTING_DB_USER": "reporting-database:username",
            "REPORTING_DB_PASSWORD": "reporting-database:password",
            "SALESFORCE_CLIENT_ID": "salesforce:consumerKey", "SALESFORCE_CLIENT_SECRET": "salesforce:consumerSecret",
            "SALESFORCE_BASE_URI": "salesforce:baseUri",
        },
        optional=frozenset(),
        required_gaps=frozenset({
            ("database-admin", "password"), ("firebase", ""), ("apns", "privateKey"), ("admin-session-key", ""),
            ("webhook-signing-key", ""), ("salesforce", "consumerKey"), ("salesforce", "consumerSecret"),
        }),
        optional_gaps=frozenset(),
        made_by_rotation=frozenset({"id-token-key", "id-token-key-public-key"}),
        # The maps key: required in production, optional (free tier) in staging.
        stack_gaps={"production": (frozenset({("maps-api-key", "")}), frozenset()),
                    "staging": (frozenset(), frozenset({("maps-api-key", "")}))},
        optional_in={"staging": frozenset({"MAPS_API_KEY"})},
    ),
    # A transactional-email relay written from the README alone in an adoption trial (TRIAL.md).
    "relaybox": Example(
        region="eu-west-1",
        secrets=frozenset({
            "database", "database-admin", "reports-database", "redis", "dkim-relaybox-io",
            "dkim-mail-example-org", "api-key-signing-key", "session-secret-key", "csrf-secret-key",
            "dashboard-jwt-key", "dashboard-jwt-key-public-key", "ses-smtp", "sentry-dsn", "stripe",
            "smtp-auth-users",
        }),
        only_in={"mailcatcher-password": "staging"},
        grouped={
            "database": frozenset({"engine", "host", "port", "dbname", "username", "password", "url", "masterarn"}),
            "database-admin": frozenset({"username", "password"}),
            "reports-database": frozenset({"engine", "host", "port", "dbname", "username", "password", "url",
                                           "masterarn"}),
            "redis": frozenset({"host", "port", "username", "password", "tls", "url"}),
            "ses-smtp": frozenset({"host", "port", "username", "password"}),
            "stripe": frozenset({"secretKey", "webhookSecret"}),
        },
        env={
            "DATABASE_HOST": "database:host", "DATABASE_PORT": "database:port", "DATABASE_NAME": "database:dbname",
            "DATABASE_USERNAME": "database:username", "DATABASE_PASSWORD": "database:password",
            "DATABASE_URL": "database:url",
            "REPORTS_DATABASE_HOST": "reports-database:host", "REPORTS_DATABASE_PORT": "reports-database:port",
            "REPORTS_DATABASE_NAME": "reports-database:dbname",
            "REPORTS_DATABASE_USERNAME": "reports-database:username",
            "REPORTS_DATABASE_PASSWORD": "reports-database:password", "REPORTS_DATABASE_URL": "reports-database:url",
            "REDIS_HOST": "redis:host", "REDIS_PORT": "redis:port", "REDIS_USERNAME": "redis:username",
            "REDIS_PASSWORD": "redis:password", "REDIS_TLS": "redis:tls", "REDIS_URL": "redis:url",
            "DKIM_PRIVATE_KEY_RELAYBOX_IO": "dkim-relaybox-io",
            "DKIM_PRIVATE_KEY_MAIL_EXAMPLE_ORG": "dkim-mail-example-org",
            "API_KEY_SIGNING_SECRET": "api-key-signing-key",
            "SESSION_SECRET": "session-secret-key", "CSRF_SECRET": "csrf-secret-key",
            "DASHBOARD_JWT_KEY_ID": "dashboard-jwt-key:kid",
            "DASHBOARD_JWT_PRIVATE_KEY": "dashboard-jwt-key:private_key_pem",
            "DASHBOARD_JWT_JWKS": "dashboard-jwt-key-public-key:jwks",
            "SES_SMTP_HOST": "ses-smtp:host", "SES_SMTP_PORT": "ses-smtp:port",
            "SES_SMTP_USERNAME": "ses-smtp:username", "SES_SMTP_PASSWORD": "ses-smtp:password",
            "SENTRY_DSN": "sentry-dsn",
            "STRIPE_SECRET_KEY": "stripe:secretKey", "STRIPE_WEBHOOK_SECRET": "stripe:webhookSecret",
            "MAILCATCHER_UI_PASSWORD": "mailcatcher-password",
            "SMTP_AUTH_USERS": "smtp-auth-users",
        },
        optional=frozenset(),
        required_gaps=frozenset({
            ("database-admin", "password"), ("redis", "password"), ("dkim-relaybox-io", ""),
            ("dkim-mail-example-org", ""), ("ses-smtp", "username"), ("ses-smtp", "password"),
            ("stripe", "secretKey"), ("stripe", "webhookSecret"), ("smtp-auth-users", ""),
        }),
        optional_gaps=frozenset(),
        made_by_rotation=frozenset({"dashboard-jwt-key", "dashboard-jwt-key-public-key", "api-key-signing-key",
                                    "mailcatcher-password"}),
        derived=frozenset({("database", "url"), ("reports-database", "url"), ("redis", "url")}),
    ),
}

CASES = [(app, stack) for app in EXAMPLES for stack in STACKS]
IDS = [f"{app}-{stack}" for app, stack in CASES]


def config_file(app: str, stack: str) -> Path:
    return REPO / "examples" / app / f"Pulumi.{stack}.yaml"


_RUNS: dict[tuple[str, str, bool], Report] = {}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`run(app, stack, complete)`: the offline preview, as committed or with every external value set."""

    def get(app: str, stack: str, complete: bool = False) -> Report:
        key = (app, stack, complete)
        if key not in _RUNS:
            path = config_file(app, stack)
            if complete:
                path = _with_every_external_value(app, stack, get(app, stack), tmp_path_factory)
            try:
                _RUNS[key] = run_stack(stack, REPO, path)
            finally:
                # A program that fails leaves asyncio tasks pending; collect them here, not while pytest
                # parses source for the failure report (CPython 3.11 then fails with "AST constructor
                # recursion depth mismatch" and aborts the whole session).
                gc.collect()
        return _RUNS[key]

    yield get
    _RUNS.clear()


def _with_every_external_value(app: str, stack: str, committed: Report, factory: pytest.TempPathFactory) -> Path:
    """A copy of the example's stack file with a `secure:` entry for every value listed as action required."""
    document = yaml.safe_load(config_file(app, stack).read_text())
    for gap in committed.run.outputs["actionRequired"]:
        plain = "--secret" not in gap["command"]
        # A plain value (a host) is set as plain text; a secret one as a `secure:` stand-in.
        document["config"][f"secrets-platform:{gap['configKey']}"] = (
            "stand-in.example.internal" if plain else {"secure": FAKE_CIPHERTEXT})
    path = factory.mktemp(f"{app}-{stack}") / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def of_type(report: Report, token: str) -> list[CollectedResource]:
    return [r for r in report.run.resources if r.type == token]


def versions(report: Report, app: str, stack: str) -> dict[str, str]:
    """Catalog secret name -> the plaintext SecretString the program would store."""
    by_urn = {r.urn: r for r in report.run.resources}
    found = {}
    for version in of_type(report, VERSION):
        parent = by_urn[version.parent] if version.parent else None
        assert parent is not None and parent.type == COMPONENT, version.urn
        found[parent.name.removeprefix(f"{app}-{stack}-")] = plain(version.inputs["secretString"])
    return found


def text_of(report: Report) -> str:
    out = io.StringIO()
    render_text(report, out)
    return out.getvalue()


# --- the examples as committed (external values unset) ----------------------------------------------


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_secret_names_are_exactly_the_seeds(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    report = run(app, stack)
    names = {r.inputs["name"] for r in of_type(report, SECRET)}
    assert names == {f"{app}/{stack}/{name}" for name in EXAMPLES[app].names(stack)}
    assert set(report.run.outputs["secretArns"]) == EXAMPLES[app].names(stack)


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_environment_variables_are_exact_and_skip_unset_optional_values(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    """An optional value the stack does not set feeds no variable: ECS would fail to start a task
    whose `secrets` name a secret (or JSON key) that has no value."""
    expected = EXAMPLES[app].env_for(stack, optional=False)
    env_vars = run(app, stack).run.outputs["envVars"]
    assert set(env_vars) == set(expected)
    assert env_vars == {
        var: f"{app}/{stack}/{target.split(':')[0]}" + (f":{target.split(':')[1]}" if ":" in target else "")
        for var, target in expected.items()
    }


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_ecs_secrets_point_at_this_stacks_secrets_and_keys(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    report = run(app, stack)
    example = EXAMPLES[app]
    ecs = {entry["name"]: entry["valueFrom"] for entry in report.run.outputs["ecsSecrets"]}
    assert set(ecs) == set(report.run.outputs["envVars"])
    for var, value_from in ecs.items():
        secret, _, key = example.env[var].partition(":")
        suffix = f":{re.escape(key)}::" if key else ""
        assert re.fullmatch(
            rf"arn:aws:secretsmanager:{example.region}:{ACCOUNT}:secret:{app}/{stack}/{re.escape(secret)}-\w{{6}}{suffix}",
            value_from,
        ), (var, value_from)


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_ecs_secrets_by_service_are_what_each_service_may_read(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    """Each consuming service's container `secrets`: the variables of the secrets the catalog lists it
    as consumer of (read here from the catalog file, not the program), and, where the stack names the
    service's roles, only secrets the access matrix lets those roles read: ECS does not start a task
    whose secrets its role cannot fetch."""
    from preview.access_matrix import matrix

    report = run(app, stack)
    outputs = report.run.outputs
    catalog = yaml.safe_load((REPO / "examples" / app / "catalog.yaml").read_text())
    live = {n: e for n, e in catalog["secrets"].items() if stack in e.get("environments", [stack])}
    consumers = {n: set(e.get("consumers", [])) for n, e in live.items()}
    for name, entry in live.items():
        if entry.get("public_key"):  # the published half: its own secret, read by consumers and verifiers
            consumers[f"{name}-public-key"] = consumers[name] | set(entry["public_key"].get("verifiers", []))
    by_service = outputs["ecsSecretsByService"]
    assert set(by_service) == {c for cs in consumers.values() for c in cs}
    every = {e["name"]: e["valueFrom"] for e in outputs["ecsSecrets"]}
    names = {arn: name for name, arn in outputs["secretArns"].items()}
    stack_config = yaml.safe_load(config_file(app, stack).read_text())["config"]
    roles = (stack_config.get("secrets-platform:principals") or {}).get("services", {})
    decisions = {(d.principal, d.secret, d.operation): d.decision for d in matrix(
        report.run.resources, account_id=stack_config["secrets-platform:accountId"],
        region=stack_config["aws:region"])}
    for service, entries in by_service.items():
        assert entries == sorted(entries, key=lambda e: e["name"])
        mine = {e["name"]: e["valueFrom"] for e in entries}
        assert mine == {var: arn for var, arn in every.items()
                        if service in consumers[names[arn.split(":secret:")[0] + ":secret:"
                                                      + arn.split(":secret:")[1].split(":")[0]]]}
        principals = {d[0] for d in decisions}
        for named in roles.get(service, []):
            # A role given by name is looked up (its path included) before the program registers anything.
            role = named if named.startswith("arn:") else next(p for p in principals if p.endswith(f"/{named}"))
            for arn in mine.values():
                secret = names[":".join(arn.split(":")[:7])]
                assert decisions[(role, f"{app}/{stack}/{secret}", "read")] == "Allowed", (service, secret)


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_env_example_lists_every_variable_with_an_empty_value(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    example = run(app, stack).run.outputs["envExample"]
    assignments = [line for line in example.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*=", line) for line in assignments), assignments
    assert sorted(line.removesuffix("=") for line in assignments) == sorted(run(app, stack).run.outputs["envVars"])


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_unset_external_values_are_listed_as_action_required(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    example = EXAMPLES[app]
    gaps = run(app, stack).run.outputs["actionRequired"]
    listed = {(g["secret"], g["key"], g["required"]) for g in gaps}
    names = example.names(stack)
    assert listed == {(s, k, True) for s, k in example.required_in(stack) if s in names} | {
        (s, k, False) for s, k in example.optional_gaps_in(stack) if s in names
    }
    for gap in gaps:
        if (gap["secret"], gap["key"]) in example.plain_gaps:
            assert gap["command"] == f"pulumi config set secrets-platform:{gap['configKey']} <value> --stack {stack}"
        else:
            assert gap["command"] == f"pulumi config set --secret secrets-platform:{gap['configKey']} --stack {stack}"


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_complete_secrets_get_a_version_with_their_exact_json_keys(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    """A secret whose required values are all there (generated or plain config) gets its value now;
    one still missing a required external value gets none (no half-filled JSON)."""
    example = EXAMPLES[app]
    stored = versions(run(app, stack), app, stack)
    waiting = {secret for secret, _ in example.required_in(stack)}
    # A generated server credential waits for the value of its master, which installs it.
    waiting |= {i["secret"] for i in run(app, stack).run.outputs["firstInstalls"] if i["status"] == "waits-for-master"}
    # A secret made only of optional values that are all unset has nothing to store.
    unset = example.optional_gaps_in(stack)
    empty = {s for s in example.names(stack)
             if all((s, k) in unset or (s, k) in example.derived for k in example.grouped.get(s, {""}))
             and any((s, k) in unset for k in example.grouped.get(s, {""}))}
    assert set(stored) == example.names(stack) - waiting - empty - example.made_by_rotation
    catalog = load_catalog(REPO / "examples" / app / "catalog.yaml")
    for secret, value in stored.items():
        if secret in example.grouped:
            # A server credential's password (and what is built from it) is made by its first rotation, inside
            # AWS: the program's first version holds the other keys.
            made_in_aws = made_by_rotation(catalog.secrets[secret]) if secret in catalog.secrets else frozenset()
            assert set(json.loads(value)) == example.grouped[secret] - made_in_aws, secret


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_nothing_generated_or_secret_is_printed(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    _assert_no_leak(run(app, stack), app, stack)


# --- every external value set (secure: stand-ins) -------------------------------------------------


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_with_every_value_set_every_secret_has_its_exact_json_keys(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    report = run(app, stack, True)
    example = EXAMPLES[app]
    assert report.run.stack.secret_keys, "the stand-ins must be in play"
    assert report.run.outputs["actionRequired"] == []
    stored = versions(report, app, stack)
    assert set(stored) == example.names(stack) - example.made_by_rotation
    catalog = load_catalog(REPO / "examples" / app / "catalog.yaml")
    for secret, value in stored.items():
        if secret in example.grouped:
            # A server credential's password (and its url) is made inside AWS by the first rotation.
            in_aws = made_by_rotation(catalog.secrets[secret]) if secret in catalog.secrets else frozenset()
            assert set(json.loads(value)) == example.grouped[secret] - in_aws, secret
    assert set(report.run.outputs["envVars"]) == set(example.env_for(stack, optional=True))


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_with_every_value_set_nothing_secret_is_printed(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    report = run(app, stack, True)
    stand_ins = [report.run.stack.values[k] for k in report.run.stack.secret_keys]
    assert stand_ins
    stored = versions(report, app, stack)
    for value in stand_ins:
        assert any(value in v for v in stored.values()), "each stand-in reaches a secret value"
    _assert_no_leak(report, app, stack)


def _assert_no_leak(report: Report, app: str, stack: str) -> None:
    document = json.dumps(to_json(report))
    text = text_of(report)
    example_file = report.run.outputs["envExample"]
    secrets: list[str] = list(report.run.generated)
    assert secrets, "the mocks generated values; the check would be vacuous otherwise"
    secrets += [report.run.stack.values[k] for k in report.run.stack.secret_keys]
    # Whole stored values too (JSON documents mix generated and plain parts).
    secrets += [v for v in versions(report, app, stack).values() if v]
    for value in secrets:
        assert value not in document
        assert value not in text
        assert value not in example_file
    assert '"secretString": "[secret]"' in document


# --- what the examples say about the seeds' values ----------------------------------------------------


def test_whatsapp_openai_settings_default_to_the_seeds_and_staging_overrides_them(run) -> None:  # type: ignore[no-untyped-def]
    production = json.loads(versions(run("whatsapp-saas", "production", True), "whatsapp-saas", "production")["openai"])
    staging = json.loads(versions(run("whatsapp-saas", "staging", True), "whatsapp-saas", "staging")["openai"])
    assert {k: production[k] for k in ("model", "maxTokens", "temperature")} == {
        "model": "gpt-4", "maxTokens": "1000", "temperature": "0.7"}
    assert {k: staging[k] for k in ("model", "maxTokens", "temperature")} == {
        "model": "gpt-4o-mini", "maxTokens": "500", "temperature": "0.7"}


def test_whatsapp_tokens_are_64_characters_rotated_every_90_days(run) -> None:  # type: ignore[no-untyped-def]
    report = run("whatsapp-saas", "production")
    stored = versions(report, "whatsapp-saas", "production")
    for name in ("admin-token", "meta-verify-token"):
        assert re.fullmatch(r"[0-9a-f]{64}", stored[name]), name
    tags = {r.inputs["name"]: r.inputs["tags"] for r in of_type(report, SECRET)}
    for name in ("admin-token", "meta-verify-token"):
        assert tags[f"whatsapp-saas/production/{name}"]["rotation"] == "90d"


@pytest.mark.parametrize("stack", STACKS)
def test_tria_database_url_is_built_from_its_parts(run, stack: str) -> None:  # type: ignore[no-untyped-def]
    # With database-admin's value set: until then the credential waits for the admin that installs it.
    report = run("tria-aibpo", stack, True)
    data = json.loads(versions(report, "tria-aibpo", stack)["database"])
    assert data["engine"] == "postgres" and data["username"] == f"tria_app_{stack}"
    assert data["dbname"] == f"tria_aibpo_{stack}" and str(data["port"]) == "5432"
    # The password (openssl rand -base64 48) and the url built from it are made by the first rotation, inside
    # AWS: the function rebuilds `url` from the parts (`"url": true` in its targets), with the catalog's template.
    assert "password" not in data and "url" not in data
    (function,) = [r for r in report.run.resources if r.type == "aws:lambda/function:Function"
                   and r.inputs["environment"]["variables"].get("ROTATION_STRATEGY") == "postgres-single-user"]
    targets = json.loads(function.inputs["environment"]["variables"]["ROTATION_TARGETS"])
    assert targets[f"tria-aibpo/{stack}/database"] == {
        "generate": {"kind": "bytes", "bytes": 48, "encoding": "base64"}, "url": True,
        "templates": {"url": "postgresql://{username}:{password}@{host}:{port}/{dbname}"}}


def test_tria_generated_keys_follow_the_seeds_openssl_commands(run) -> None:  # type: ignore[no-untyped-def]
    report = run("tria-aibpo", "production")
    stored = versions(report, "tria-aibpo", "production")
    assert re.fullmatch(r"[0-9a-f]{128}", stored["secret-key"]), "openssl rand -hex 64"
    # Never rotated, so made once inside AWS by the first-value function: openssl rand -base64 32.
    assert "backup-encryption-key" not in stored
    (function,) = [r for r in report.run.resources if r.type == "aws:lambda/function:Function"
                   and "FIRST_VALUE_TARGETS" in r.inputs["environment"]["variables"]]
    assert json.loads(function.inputs["environment"]["variables"]["FIRST_VALUE_TARGETS"]) == {
        "tria-aibpo/production/backup-encryption-key": {"": {"kind": "bytes", "bytes": 32, "encoding": "base64"}}}
    tags = {r.inputs["name"].split("/")[-1]: r.inputs["tags"] for r in of_type(report, SECRET)}
    assert tags["backup-encryption-key"]["rotation"] == "manual", "never rotated without a migration"
    assert tags["secret-key"]["rotation"] == "90d" and tags["database"]["rotation"] == "90d"
    assert json.loads(stored["app-config"]) == {
        "corsOrigins": "https://tria-aibpo.com,https://app.tria-aibpo.com,https://api.tria-aibpo.com",
        "taxRate": "0.08",
    }


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_stack_files_hold_no_secret_value_and_name_their_own_catalog(app: str, stack: str) -> None:
    raw = config_file(app, stack).read_text()
    config: dict[str, Any] = yaml.safe_load(raw)["config"]
    assert config["secrets-platform:catalog"] == f"examples/{app}/catalog.yaml"
    assert config["secrets-platform:accountId"] == ACCOUNT
    assert config["aws:region"] == EXAMPLES[app].region
    assert "secure:" not in raw
    from components.catalog import config_key, load_catalog

    catalog = load_catalog(REPO / "examples" / app / "catalog.yaml")
    assert catalog.app == app
    for name, entry in catalog.secrets.items():
        for key, value in entry.values.items():
            if value.external is not None:
                ckey = config_key(name, key, value.external.config)
                assert f"secrets-platform:{ckey}" not in config, f"{ckey} is a secret: set it with --secret"


# --- what the state holds ----------------------------------------------------------------------------

VALUE_OUTPUTS = {
    "random:index/randomBytes:RandomBytes": {"hex", "base64"},
    "random:index/randomPassword:RandomPassword": {"result"},
    "random:index/randomString:RandomString": {"result"},
    "random:index/randomUuid:RandomUuid": {"result"},
    "random:index/randomId:RandomId": {"hex", "b64Std", "b64Url", "dec"},
}
"""Every output of a pulumi-random resource that holds the generated value."""


@pytest.mark.parametrize("complete", [False, True], ids=["committed", "every-value-set"])
@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_every_value_the_state_holds_is_marked_secret(run, app: str, stack: str, complete: bool) -> None:  # type: ignore[no-untyped-def]
    """The engine writes an output in plain text unless the resource marks it secret."""
    report = run(app, stack, complete)
    generators = [r for r in report.run.resources if r.type.startswith("random:")]
    versions_ = of_type(report, VERSION)
    assert generators or versions_, "nothing to check"
    for resource in generators:
        assert resource.type in VALUE_OUTPUTS, f"{resource.urn}: a generator this test does not know"
        plain_outputs = VALUE_OUTPUTS[resource.type] - set(resource.additional_secret_outputs)
        assert not plain_outputs, f"{resource.urn} keeps {sorted(plain_outputs)} in plain text in the state"
    for version in versions_:
        value = version.inputs.get("secretString")
        assert isinstance(value, dict) and value.get(_SIG) == _SECRET, f"{version.urn}: secretString is not secret"


def test_every_generator_kind_keeps_its_value_secret_in_the_state(make_project) -> None:  # type: ignore[no-untyped-def]
    """The examples use no uuid; a catalog with every generator kind does (beside a plain value, so that the
    program writes the secret and pulumi-random makes its generated keys)."""
    catalog = """\
app: shop
owner: platform
secrets:
  ids:
    description: Identifiers and keys of every generated kind
    class: configuration
    keys:
      instance: {env: INSTANCE_ID, generate: {kind: uuid}}
      token: {env: TOKEN, generate: {kind: bytes, bytes: 32, encoding: base64url}}
      password: {env: PASSWORD, generate: {kind: password, length: 40}}
      region: {env: REGION, config: {default: eu}}
"""
    report = run_stack("staging", make_project(catalog, MINIMAL_STACK))
    kinds = {r.type for r in report.run.resources if r.type.startswith("random:")}
    assert kinds == {"random:index/randomUuid:RandomUuid", "random:index/randomBytes:RandomBytes",
                     "random:index/randomPassword:RandomPassword"}
    for resource in (r for r in report.run.resources if r.type in kinds):
        assert VALUE_OUTPUTS[resource.type] <= set(resource.additional_secret_outputs), resource.urn


@pytest.mark.parametrize(("app", "stack"), CASES, ids=IDS)
def test_shared_with_gives_each_other_accounts_role_exactly_its_secrets(run, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    """`sharedWith`: per other account and role, the shared secrets' ARN patterns (every region of the stack) and the
    identity policy that account attaches, naming exactly them."""
    shared = run(app, stack).run.outputs["sharedWith"]
    want = EXAMPLES[app].shared.get(stack, {})
    assert {role: set(grant["secrets"]) for roles in shared.values() for role, grant in roles.items()} == want
    for account, roles in shared.items():
        for role, grant in roles.items():
            assert role.split(":")[4] == account
            document = json.loads(grant["identityPolicy"])
            read = next(s for s in document["Statement"] if s["Sid"] == "ReadSharedSecrets")
            assert sorted(read["Resource"]) == sorted(a for arns in grant["secrets"].values() for a in arns)
            assert all(f"secret:{app}/{stack}/" in a and a.endswith("-??????") for a in read["Resource"])
