"""Values put out of band (`external: {put: ops}`): the program creates the secret empty and never writes it;
`python -m ops put` writes it from a prompt or stdin, after the checks the program applies, keeping the keys it
does not change. Against moto on loopback; values are generated at run time and the `moto` fixture fails the
test if any printed output holds one."""

from __future__ import annotations

import io
import json
import secrets
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from ops_harness import Moto, Result

from components.errors import ConfigurationError
from preview.runtime import run_program
from preview.stackconfig import load_stack_config

REPO = Path(__file__).resolve().parents[2]
CATALOG = """\
app: shop
owner: platform
environments: [production, staging]
secrets:
  smtp:
    description: SMTP relay login, put by the mail team
    class: critical
    rotation: manual
    rotation_reason: issued by the mail provider console
    consumers: [api]
    keys:
      user: {env: SMTP_USER, external: {put: ops}}
      password: {env: SMTP_PASSWORD, external: {put: ops}, min_length: 20, differs_from: [webhook]}
  webhook:
    description: Webhook signing secret from the payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    consumers: [api]
    value: {env: WEBHOOK_SECRET, external: {put: ops}, pattern: '^whsec_'}
"""
STACK = """\
config:
  aws:region: ap-southeast-2
  secrets-platform:accountId: "123456789012"
  secrets-platform:recoveryWindowDays: 7
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK)
    (tmp_path / "Pulumi.production.yaml").write_text(STACK.replace("recoveryWindowDays: 7", "recoveryWindowDays: 30")
                                                     + "  secrets-platform:consumption: {api: {kind: runtime, "
                                                     "cacheTtlSeconds: 300}}\n")
    return tmp_path


def test_the_program_creates_the_secret_empty_and_lists_the_put(project: Path) -> None:
    """As under `pulumi up`: no version (nothing the program could write over what `ops put` wrote), the keys
    still bound for consumers, and no stop for the value it never reads."""
    run = run_program(load_stack_config(project, "staging"), project, str(REPO / "__main__.py"))
    names = {r.inputs.get("name") for r in run.resources if r.type == "aws:secretsmanager/secret:Secret"}
    assert {"shop/staging/smtp", "shop/staging/webhook"} <= names
    assert not [r for r in run.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    commands = {g["command"] for g in run.outputs["actionRequired"]}
    put = "python -m ops put --stack staging"
    assert commands == {f"{put} smtp user", f"{put} smtp password", f"{put} webhook"}
    assert {"SMTP_USER", "SMTP_PASSWORD", "WEBHOOK_SECRET"} <= set(run.outputs["envVars"])


def test_a_put_value_set_in_stack_config_is_refused(project: Path) -> None:
    config = load_stack_config(project, "staging")
    config.values["secrets-platform:webhook"] = "whsec_" + secrets.token_hex(16)
    config.secret_keys.append("secrets-platform:webhook")
    with pytest.raises(ConfigurationError) as caught:
        run_program(config, project, str(REPO / "__main__.py"))
    assert caught.value.field == "secrets-platform:webhook" and "python -m ops put" in caught.value.reason


def test_a_secret_mixing_put_and_program_values_is_refused(project: Path) -> None:
    from components.catalog import load_catalog

    (project / "catalog.yaml").write_text(CATALOG.replace("user: {env: SMTP_USER, external: {put: ops}}",
                                                          "user: {env: SMTP_USER, config: {default: relay}}"))
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(project / "catalog.yaml")
    assert (caught.value.secret, caught.value.field) == ("smtp", "keys.user")


def _put(ops: Callable[..., Result], project: Path, *args: str, value: str) -> Result:
    return ops("put", "--stack", "staging", "--project-dir", str(project), *args, stdin=io.StringIO(value + "\n"))


def _create(moto: Moto) -> None:
    sm = moto.client("secretsmanager")
    for name in ("shop/staging/smtp", "shop/staging/webhook"):
        sm.create_secret(Name=name)  # as the program leaves them: no value


def test_put_writes_from_stdin_keeping_the_other_keys(moto: Moto, ops: Callable[..., Result], project: Path) -> None:
    _create(moto)
    user, password = moto.value(8), moto.value(16)
    first = _put(ops, project, "smtp", "user", value=user)
    assert first.code == 0, first.err
    second = _put(ops, project, "smtp", "password", value=password)
    assert second.code == 0, second.err and "kept user" in second.out
    stored = moto.client("secretsmanager").get_secret_value(SecretId="shop/staging/smtp")["SecretString"]
    assert json.loads(stored) == {"user": user, "password": password}


@pytest.mark.parametrize(("args", "value", "words"), [
    (("webhook",), "sk_" + "x" * 30, "does not match the catalog's pattern"),
    (("smtp", "password"), "q7Rk2mZx9PwL4vNb1", "at least 20"),
    (("smtp", "password"), "short", "a critical value needs at least 16"),
    (("smtp", "password"), "changeme-changeme-changeme", "not a real value"),
    (("smtp",), "anything-at-all-1234", "name the one to put"),
    (("smtp", "nokey"), "anything-at-all-1234", "has no key"),
    (("webhook", "extra"), "whsec_abcdefabcdef", "single value"),
])
def test_a_refused_value_writes_nothing(moto: Moto, ops: Callable[..., Result], project: Path,
                                        args: tuple[str, ...], value: str, words: str) -> None:
    _create(moto)
    result = _put(ops, project, *args, value=value)
    assert result.code == 2 and words in result.err and len(result.err.splitlines()) == 1
    assert value not in result.err + result.out
    versions = moto.client("secretsmanager").list_secret_version_ids(SecretId=f"shop/staging/{args[0]}")["Versions"]
    assert versions == []


def test_a_value_equal_to_one_it_must_differ_from_is_refused(moto: Moto, ops: Callable[..., Result],
                                                             project: Path) -> None:
    _create(moto)
    shared = "whsec_" + moto.value(16)
    assert _put(ops, project, "webhook", value=shared).code == 0
    result = _put(ops, project, "smtp", "password", value=shared)
    assert result.code == 2 and "differs_from" in result.err and shared not in result.err


def test_a_value_never_comes_from_the_command_line(ops: Callable[..., Result], project: Path) -> None:
    with pytest.raises(SystemExit):
        ops("put", "--stack", "staging", "--project-dir", str(project), "webhook", "", "whsec_on_the_command_line")


def test_a_secret_the_program_writes_is_refused(moto: Moto, ops: Callable[..., Result]) -> None:
    result = ops("put", "--stack", "staging", "session-secret", stdin=io.StringIO("x" * 40))
    assert result.code == 2 and "is not put out of band" in result.err


def test_production_asks_first(moto: Moto, ops: Callable[..., Result], project: Path) -> None:
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="shop/production/webhook")
    result = ops("put", "--stack", "production", "--project-dir", str(project), "webhook",
                 stdin=io.StringIO("whsec_" + moto.value(16) + "\n"))
    assert result.code == 2 and "needs --yes" in result.err
    assert sm.list_secret_version_ids(SecretId="shop/production/webhook")["Versions"] == []


def test_the_catalog_field_is_documented() -> None:
    text = textwrap.dedent((REPO / "docs" / "catalog-reference.md").read_text())
    assert "`put`" in text


@pytest.mark.parametrize(("stdin", "words"), [
    ("", "no value given"),
    ("\n", "no value given"),
    ("whsec_" + "a" * 70_000, "over 65,536 bytes"),
    ("whsec_first\nsecond-line", "line break"),
    ("whsec_with\x00nul", "line break or a NUL"),
])
def test_a_hostile_stdin_is_one_line_and_writes_nothing(moto: Moto, ops: Callable[..., Result], project: Path,
                                                       stdin: str, words: str) -> None:
    _create(moto)
    result = ops("put", "--stack", "staging", "--project-dir", str(project), "webhook", stdin=io.StringIO(stdin))
    assert result.code == 2 and words in result.err and len(result.err.splitlines()) == 1
    versions = moto.client("secretsmanager").list_secret_version_ids(SecretId="shop/staging/webhook")["Versions"]
    assert versions == []


MASTER_PUT = CATALOG + """\
  cache:
    description: Redis user of the api
    class: critical
    rotation: {strategy: redis-acl, every_days: 30, master: cache-admin}
    consumers: [api]
    keys:
      host: {env: CACHE_HOST, config: {default: cache.internal}}
      port: {env: CACHE_PORT, config: {default: "6379"}, type: integer}
      username: {env: CACHE_USER, config: {default: api}}
      password: {env: CACHE_PASSWORD, generate: {kind: password, length: 48}}
  cache-admin:
    description: Redis admin login, put by the platform team
    class: critical
    rotation: manual
    rotation_reason: held by the platform team
    keys:
      username: {external: {put: ops}}
      password: {external: {put: ops}}
"""


def test_a_master_put_by_ops_is_refused_at_load_in_one_line(project: Path) -> None:
    """The first deploy rotates `cache` at once, logging in with its master: the program must know the master has
    a value, and one put out of band it never sees. Refused before any resource, naming file, secret and field."""
    from tests.test_errors import run_cli

    (project / "catalog.yaml").write_text(MASTER_PUT)
    code, out, err = run_cli(project)
    assert out == ""
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "catalog.yaml" in err and "cache-admin" in err and "keys.username.external.put" in err
    assert "rotation.master" in err and "external: {}" in err
    # Declared `external: {}` instead, it is accepted (set with `pulumi config set --secret`).
    (project / "catalog.yaml").write_text(MASTER_PUT.replace("{external: {put: ops}}", "{external: {}}"))
    with (project / "Pulumi.staging.yaml").open("a") as stack:
        stack.write('  secrets-platform:rotationSubnetIds: ["subnet-0a1b2c3d4e5f60718"]\n'
                    '  secrets-platform:rotationSecurityGroupIds: ["sg-0a1b2c3d4e5f60718"]\n')
    code, _, err = run_cli(project)
    assert code == 0, err
