"""One catalog secret as AWS resources (components/secret.py), with every external value set.

- A value something else renews (a rotation function, or the application itself: `rotation: application`)
  is ignored by later deploys (`ignore_changes=["secretString"]`); a value only the program writes is not.
- Every secret's resource policy blocks public policies (Secrets Manager `PutResourcePolicy`
  `BlockPublicPolicy`: "makes an optional check of the resource policy to prevent broad access")
  and denies every principal outside the account.
- The stored value is composed exactly: generated parts, supplied values, plain config, templates.

External values are set as the engine hands them over (plaintext marked secret), generated at run time.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from pathlib import Path

import pytest

from preview.model import CollectedResource, plain
from preview.runtime import ProgramRun, run_program
from preview.stackconfig import load_stack_config
from tests.conftest import MINIMAL_STACK, REPO, current_build

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
ACCOUNT = "210987654321"

CATALOG = """\
app: shop
owner: platform
secrets:
  session-secret:
    description: Signs sessions
    class: critical
    rotation: {strategy: token, every_days: 30}
    value: {env: SESSION_SECRET, generate: {kind: bytes, bytes: 32, encoding: base64url}}
  refresh-token:
    description: OAuth refresh token the worker renews
    class: critical
    rotation: application
    consumers: [worker]
    writers: [worker]
    value: {env: REFRESH_TOKEN, external: {}}
  payments:
    description: Payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    keys:
      apiKey: {env: PAYMENTS_API_KEY, external: {}}
      endpoint: {env: PAYMENTS_ENDPOINT, config: {default: "https://api.payments.example.net"}}
      retries: {env: PAYMENTS_RETRIES, config: {default: "3"}, type: integer}
      live: {env: PAYMENTS_LIVE, config: {default: "true"}, type: boolean}
      sandbox: {env: PAYMENTS_SANDBOX, config: {default: "false"}, type: boolean}
      url: {env: PAYMENTS_URL, template: "https://{apiKey}@{endpoint}/v{retries}?live={live}&sandbox={sandbox}"}
  archive-key:
    description: Encrypts backups
    class: critical
    rotation: manual
    rotation_reason: re-encrypting old backups needs a migration
    value: {env: ARCHIVE_KEY, generate: {kind: bytes, bytes: 32, encoding: hex}}
  request-id-salt:
    description: Salts request ids
    class: configuration
    rotation: {strategy: token, every_days: 90}
    value: {env: REQUEST_ID_SALT, generate: {kind: uuid}}
  queue-password:
    description: Queue password
    class: configuration
    rotation: {strategy: token, every_days: 90}
    value: {env: QUEUE_PASSWORD, generate: {kind: password, length: 40, alphabet: hex, exclude: "0a"}}
"""

RENEWED = {"session-secret", "refresh-token", "request-id-salt", "queue-password"}
Program = tuple[ProgramRun, dict[str, str]]
"""A run of the program and the external values it was given."""
"""Values a rotation function or the application renews after the first deploy."""


@pytest.fixture
def program(tmp_path: Path) -> Program:
    # One run per test (not per module): mutation testing attributes what a fixture runs to the test
    # that set it up, so a shared run would hide the later tests from it.
    project = tmp_path
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (project / "catalog.yaml").write_text(CATALOG)
    (project / "Pulumi.staging.yaml").write_text(MINIMAL_STACK)
    current_build(project)  # as after `make lambda`: the program runs as under `pulumi up`
    stack = load_stack_config(project, "staging")
    supplied = {"refreshToken": secrets.token_urlsafe(32), "paymentsApiKey": secrets.token_hex(20)}
    for key, value in supplied.items():
        stack.values[f"secrets-platform:{key}"] = value
        stack.secret_keys.append(f"secrets-platform:{key}")
    return run_program(stack, project, str(REPO / "__main__.py")), supplied


def _by_secret(run: ProgramRun, token: str) -> dict[str, CollectedResource]:
    """Catalog name -> the resource of type `token` whose parent is that secret's component."""
    parents = {r.urn: r for r in run.resources}
    found: dict[str, CollectedResource] = {}
    for r in run.resources:
        if r.type == token and r.parent:
            name = parents[r.parent].name.removeprefix("shop-staging-")
            assert name not in found, r.urn
            found[name] = r
    return found


def test_a_renewed_value_is_ignored_by_later_deploys_and_no_other_is(program: Program) -> None:
    run, _ = program
    versions = _by_secret(run, VERSION)
    # archive-key (generated, rotated by hand): made once inside AWS, no version from the program.
    assert set(versions) == {"session-secret", "refresh-token", "payments", "request-id-salt", "queue-password"}
    for name, version in versions.items():
        # Every version's labels are set once, at creation (tests/life/test_program_label.py).
        expected = ("secretString", "versionStages") if name in RENEWED else ("versionStages",)
        assert tuple(version.ignore_changes) == expected, version.urn


def test_every_resource_policy_blocks_public_policies_and_other_accounts(program: Program) -> None:
    run, _ = program
    policies = _by_secret(run, POLICY)
    secrets_by_name = _by_secret(run, SECRET)
    assert set(policies) == set(secrets_by_name)
    for name, policy in policies.items():
        assert policy.inputs["blockPublicPolicy"] is True, policy.urn
        assert policy.property_dependencies["secretArn"] == (secrets_by_name[name].urn,), policy.urn
        assert json.loads(policy.inputs["policy"]) == {"Version": "2012-10-17", "Statement": [{
            "Sid": "DenyOutsideAccount", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:*",
            "Resource": "*", "Condition": {
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                "StringNotEquals": {"aws:PrincipalAccount": ACCOUNT},
            }}]}, policy.urn


def test_secrets_are_named_tagged_and_kept_as_configured(program: Program) -> None:
    run, _ = program
    for name, secret in _by_secret(run, SECRET).items():
        inputs = secret.inputs
        assert inputs["name"] == f"shop/staging/{name}"
        assert inputs["recoveryWindowInDays"] == 7
        assert inputs["replicas"] == [] if "replicas" in inputs else True
        assert secret.protect is False and secret.retain_on_delete is False
        tags = inputs["tags"]
        assert {k: tags[k] for k in ("app", "environment", "owner", "managed-by")} == {
            "app": "shop", "environment": "staging", "owner": "platform", "managed-by": "pulumi"}
    tags = {name: s.inputs["tags"] for name, s in _by_secret(run, SECRET).items()}
    assert tags["session-secret"]["rotation-strategy"] == "token"
    assert tags["session-secret"]["rotation"] == "30d" and tags["session-secret"]["class"] == "critical"
    assert tags["refresh-token"]["rotation"] == "application" and "rotation-strategy" not in tags["refresh-token"]
    assert tags["payments"]["rotation-reason"] == "issued by the payment provider"
    assert tags["request-id-salt"]["class"] == "configuration" and "rotation-reason" not in tags["request-id-salt"]
    assert tags["archive-key"]["first-value"] == "function", "made once inside AWS: `ops list` and the preview say so"
    assert not any("first-value" in t or "rotation-kind" in t for n, t in tags.items() if n != "archive-key")


def test_each_secret_component_registers_its_arn_and_name(program: Program) -> None:
    """What `pulumi stack export` shows for each CatalogSecret: the secret's ARN and its full name."""
    run, _ = program
    components = [r for r in run.resources if r.type == "secrets-platform:index:CatalogSecret"]
    assert len(components) == 6
    for component in components:
        name = "shop/staging/" + component.name.removeprefix("shop-staging-")
        outputs = run.component_outputs[component.urn]
        assert set(outputs) == {"arn", "name"} and outputs["name"] == name, component.urn
        assert re.fullmatch(rf"arn:aws:secretsmanager:eu-west-1:\d{{12}}:secret:{name}-\w{{6}}", outputs["arn"])


def test_stored_values_are_composed_exactly(program: Program) -> None:
    run, supplied = program
    stored = {name: plain(v.inputs["secretString"]) for name, v in _by_secret(run, VERSION).items()}
    assert stored["refresh-token"] == supplied["refreshToken"]
    payments = json.loads(stored["payments"])
    assert payments == {
        "apiKey": supplied["paymentsApiKey"],
        "endpoint": "https://api.payments.example.net",
        "retries": 3,
        "live": True,
        "sandbox": False,
        "url": "https://{}@{}/v3?live=true&sandbox=false".format(
            urllib.parse.quote(supplied["paymentsApiKey"], safe=""),
            urllib.parse.quote("https://api.payments.example.net", safe="")),
    }
    session = stored["session-secret"]
    assert len(session) == 43 and not set(session) & set("+/="), "base64url of 32 bytes, unpadded"
    # A generated value no function rotates is made once by the first-value function, from the catalog's generator.
    assert "archive-key" not in stored
    (function,) = [r for r in run.resources if r.type == "aws:lambda/function:Function"
                   and r.name.endswith("-first-value-function")]
    assert json.loads(function.inputs["environment"]["variables"]["FIRST_VALUE_TARGETS"]) == {
        "shop/staging/archive-key": {"": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}}
    (invocation,) = [r for r in run.resources if r.type == "aws:lambda/invocation:Invocation"]
    assert json.loads(invocation.inputs["input"]) == {"FirstValue": "shop/staging/archive-key"}
    assert "lifecycleScope" not in invocation.inputs, "CREATE_ONLY: invoked on creation (or replacement) only"
    assert len(stored["request-id-salt"]) == 36 and stored["request-id-salt"].count("-") == 4
    # RandomUuid's result is not secret by default: the state would hold the value in plain text.
    (uuid,) = [r for r in run.resources if r.type == "random:index/randomUuid:RandomUuid"]
    assert uuid.additional_secret_outputs == ("result",)
    # random_password draws from the union of its enabled sets: only override_special, the exact alphabet.
    (password,) = [r for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"]
    keys = ("length", "lower", "upper", "numeric", "special", "overrideSpecial")
    assert {k: password.inputs.get(k) for k in keys} == {
        "length": 40, "lower": False, "upper": False, "numeric": False, "special": True,
        "overrideSpecial": "123456789bcdef"}
    assert len(stored["queue-password"]) == 40 and set(stored["queue-password"]) <= set("123456789bcdef")
    # Each version is fed by exactly its own generated resource or the supplied value.
    parents = {r.urn: r for r in run.resources}
    for name, version in _by_secret(run, VERSION).items():
        sources = {parents[u].type for u in version.property_dependencies.get("secretString", ())}
        assert sources == ({"random:index/randomBytes:RandomBytes"} if name == "session-secret"
                           else {"random:index/randomUuid:RandomUuid"} if name == "request-id-salt"
                           else {"random:index/randomPassword:RandomPassword"} if name == "queue-password"
                           else set()), name
        # Generated values are children of their secret's component.
        for urn in version.property_dependencies.get("secretString", ()):
            if parents[urn].type.startswith("random:"):
                assert parents[urn].parent == version.parent, urn
        assert version.inputs["secretString"] != plain(version.inputs["secretString"]), "stored as a secret"




@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xfb\xff", b"\x00\x00\x17", b"\xff\xef\xbe\x00\x00\x17",
                                 bytes(range(256))])
def test_base64url_is_the_standard_library_s_unpadded(raw: bytes) -> None:
    """What the program derives from random_bytes' base64: RFC 4648's URL-safe alphabet, padding dropped and
    nothing else (b"\\x00\\x00\\x17" is "AAAX": no character but "=" is stripped from the end)."""
    import base64

    from components.secret import base64url

    assert base64url(base64.b64encode(raw).decode()) == base64.urlsafe_b64encode(raw).decode().rstrip("=")


PRODUCTION_CATALOG = """\
app: shop
owner: platform
secrets:
  session-key:
    description: Signs sessions
    class: critical
    rotation: {strategy: token, every_days: 365, kind: signing-key}
    value: {env: SESSION_KEY, generate: {kind: bytes, bytes: 32, encoding: base64url}}
  internal-key:
    description: Service-to-service key, made by the rotation function
    class: critical
    rotation: {strategy: token, every_days: 90, first_value: rotation}
    value: {env: INTERNAL_KEY, generate: {kind: bytes, bytes: 32, encoding: hex}}
  partner:
    description: Partner API
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the partner
    keys:
      apiKey: {env: PARTNER_API_KEY, external: {}}
      region: {env: PARTNER_REGION, config: {default: eu}}
      live: {env: PARTNER_LIVE, config: {default: "false"}, type: boolean}
  webhook:
    description: Optional webhook signing secret
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the partner
    value: {env: WEBHOOK_SECRET, external: {}, required: false}
  hooks:
    description: Optional partner hook, and its URL made from it
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the partner
    keys:
      token: {env: HOOK_TOKEN, external: {}, required: false}
      region: {env: HOOK_REGION, config: {default: eu}}
      url: {env: HOOK_URL, template: "https://hooks.example.net/{region}/{token}"}
  settings:
    description: Plain settings only
    class: configuration
    keys:
      region: {env: SETTINGS_REGION, config: {default: eu}}
      retries: {env: SETTINGS_RETRIES, config: {default: "3"}, type: integer}
  blob:
    description: A large generated key (many base64 characters, so '+' and '/' all but surely occur)
    class: critical
    rotation: {strategy: token, every_days: 365}
    value: {env: BLOB_KEY, generate: {kind: bytes, bytes: 512, encoding: base64url}}
  cache:
    description: Redis user
    class: critical
    rotation: {strategy: redis-acl, every_days: 90, master: cache-admin}
    keys:
      password: {env: CACHE_PASSWORD, generate: {kind: password, length: 48, alphabet: alphanumeric}}
      host: {env: CACHE_HOST, config: {default: cache.internal}}
      port: {env: CACHE_PORT, config: {default: "6379"}, type: integer}
      username: {env: CACHE_USERNAME, config: {default: shop-app}}
      tls: {env: CACHE_TLS, config: {default: "true"}, type: boolean}
  cache-admin:
    description: Redis ACL admin for the rotation function
    class: critical
    rotation: on-compromise
    rotation_reason: the Redis operator owns this user
    keys:
      username: {config: {default: rotation-admin}}
      password: {generate: {kind: password, length: 48, alphabet: alphanumeric}}
"""

PRODUCTION_STACK = """\
config:
  aws:region: eu-west-1
  secrets-platform:accountId: "210987654321"
  secrets-platform:recoveryWindowDays: 30
  secrets-platform:protectSecrets: true
  secrets-platform:replicaRegions: [eu-central-1, eu-north-1]
  secrets-platform:rotationSubnetIds: [subnet-0123456789abcdef0]
  secrets-platform:rotationSecurityGroupIds: [sg-0123456789abcdef0]
"""


@pytest.fixture
def production(tmp_path: Path) -> ProgramRun:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "catalog.yaml").write_text(PRODUCTION_CATALOG)
    (tmp_path / "Pulumi.production.yaml").write_text(PRODUCTION_STACK)
    stack = load_stack_config(tmp_path, "production")
    stack.values["secrets-platform:allowMissingValues"] = "true"  # the partner's key is not set yet
    current_build(tmp_path)  # allowMissingValues lets values be missing, not the rotation package
    return run_program(stack, tmp_path, str(REPO / "__main__.py"))


def test_production_secrets_are_protected_replicated_and_described(production: ProgramRun) -> None:
    by_urn = {r.urn: r for r in production.resources}
    keys = {r.inputs.get("region", "eu-west-1"): r.urn for r in production.resources if r.type == "aws:kms/key:Key"}
    secrets_by_name = _by_secret_in(production, SECRET, "shop-production-")
    assert set(secrets_by_name) == {"session-key", "internal-key", "partner", "webhook", "hooks", "settings", "blob",
                                    "cache", "cache-admin"}
    for name, secret in secrets_by_name.items():
        assert secret.parent is not None and by_urn[secret.parent].type == "secrets-platform:index:CatalogSecret"
        grandparent = by_urn[secret.parent].parent
        assert grandparent is not None and by_urn[grandparent].type == "secrets-platform:index:SecretsEnvironment"
        assert secret.protect is True and secret.retain_on_delete is True, secret.urn
        assert secret.inputs["description"] == PRODUCTION_DESCRIPTIONS.get(name, secret.inputs["description"])
        assert secret.property_dependencies["kmsKeyId"] == (keys["eu-west-1"],)
        assert [(r["region"], r["kmsKeyId"]) for r in secret.inputs["replicas"]] == [
            ("eu-central-1", secret.inputs["replicas"][0]["kmsKeyId"]),
            ("eu-north-1", secret.inputs["replicas"][1]["kmsKeyId"])]
        assert ":eu-central-1:" in secret.inputs["replicas"][0]["kmsKeyId"]
        assert ":eu-north-1:" in secret.inputs["replicas"][1]["kmsKeyId"]
    tags = {name: s.inputs["tags"] for name, s in secrets_by_name.items()}
    assert tags["session-key"]["rotation-kind"] == "signing-key" and "first-value" not in tags["session-key"]
    assert tags["internal-key"]["first-value"] == "rotation" and "rotation-kind" not in tags["internal-key"]
    assert "rotation-kind" not in tags["partner"] and "first-value" not in tags["partner"]


PRODUCTION_DESCRIPTIONS = {"session-key": "Signs sessions",
                           "internal-key": "Service-to-service key, made by the rotation function",
                           "partner": "Partner API"}


def test_no_version_until_the_first_value_exists(production: ProgramRun) -> None:
    """The rotation function makes internal-key's first value; partner still misses its required key;
    the optional webhook is not set: none gets a version, nor a generated value that would sit unused."""
    versions = _by_secret_in(production, VERSION, "shop-production-")
    assert set(versions) == {"session-key", "hooks", "settings", "blob", "cache", "cache-admin"}
    assert tuple(versions["session-key"].ignore_changes) == ("secretString", "versionStages")
    generated = sorted(r.name for r in production.resources if r.type.startswith("random:"))
    # cache's password is made by its first rotation, inside AWS (a server credential with a master).
    assert generated == ["shop-production-blob-value", "shop-production-cache-admin-password",
                         "shop-production-session-key-value"]
    assert [(g["configKey"], g["required"]) for g in production.outputs["actionRequired"]] == [
        ("partnerApiKey", True), ("webhook", False), ("hooksToken", False)]


def test_values_and_what_consumers_bind_to(production: ProgramRun) -> None:
    stored = {name: plain(v.inputs["secretString"]) for name, v in
              _by_secret_in(production, VERSION, "shop-production-").items()}
    # Compact JSON; plain config values only: a document with no generated or supplied part.
    assert stored["settings"] == '{"region":"eu","retries":3}'
    # An optional key this stack leaves unset is left out, and so is a template made from it.
    assert stored["hooks"] == '{"region":"eu"}'
    blob = stored["blob"]
    assert len(blob) == 683 and not set(blob) & set("+/="), "base64url of 512 bytes, unpadded"
    cache = json.loads(stored["cache"])
    # The platform adds the ARN of the admin secret the rotation logs in with, last.
    # No password: the first rotation makes it inside AWS and installs it with the admin credential.
    assert list(cache) == ["host", "port", "username", "tls", "masterarn"]
    assert re.fullmatch(r"arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/production/cache-admin-\w{6}",
                        cache["masterarn"])
    assert ", " not in stored["cache"] and '": ' not in stored["cache"]
    env = production.outputs["envVars"]
    # A single optional value not set feeds no variable; a required one not set yet still does.
    assert "WEBHOOK_SECRET" not in env and env["PARTNER_API_KEY"] == "shop/production/partner:apiKey"
    assert env["HOOK_REGION"] == "shop/production/hooks:region" and not {"HOOK_TOKEN", "HOOK_URL"} & set(env)
    assert env["SESSION_KEY"] == "shop/production/session-key"


def _by_secret_in(run: ProgramRun, token: str, prefix: str) -> dict[str, CollectedResource]:
    parents = {r.urn: r for r in run.resources}
    return {parents[r.parent].name.removeprefix(prefix): r for r in run.resources if r.type == token and r.parent}
