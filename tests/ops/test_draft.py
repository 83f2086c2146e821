"""`python -m ops draft`: round trips for the three examples against moto, heuristics, never a value.

A round trip drafts from the example's own `envExample` output and from a moto account seeded with the
example's secrets, and checks that the draft has the example's secret names, JSON keys and environment
variables, previews, and imports each existing secret with exactly what DescribeSecret returns.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from draft_harness import (
    EXAMPLES,
    SECRET,
    Seeded,
    bindings,
    declared,
    describe,
    drop,
    env_vars,
    example_catalog,
    example_preview,
    grouped_keys,
    seed_example,
)
from ops_harness import Moto, Result

from components.catalog import load_catalog
from preview.cli import main as preview_main
from preview.cli import preview, render_text

VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"


@pytest.fixture
def seeded(moto: Moto) -> Iterator[list[Seeded]]:
    made: list[Seeded] = []
    yield made
    for one in made:
        drop(moto, one)


def _draft(ops: Callable[..., Result], moto: Moto, out: Path, *argv: str) -> Result:
    result = ops("draft", "--out", str(out), *argv)
    # Everything the draft wrote joins the leak check (moto fixture: no planted value in any output).
    moto.outputs.extend(p.read_text() for p in out.glob("*.yaml") if out.is_dir())
    return result


def _drafted_bindings(out: Path, environment: str) -> dict[str, str]:
    return bindings(load_catalog(out / "catalog.yaml"), environment)


@pytest.mark.parametrize("example", EXAMPLES)
def test_round_trip_of_each_example(example: str, moto: Moto, ops: Callable[..., Result], seeded: list[Seeded],
                                    tmp_path: Path) -> None:
    stack = "staging"
    committed = example_preview(example, stack)
    env_file = tmp_path / ".env.example"
    env_file.write_text(committed.run.outputs["envExample"])
    catalog = example_catalog(example)
    expected_env = env_vars(committed)
    expected_keys = grouped_keys(catalog, stack)
    one = seed_example(moto, example, stack)
    seeded.append(one)

    # From the envExample alone: every variable lands in its secret and key.
    only_env = tmp_path / "env"
    result = _draft(ops, moto, only_env, "--stack", stack, "--env-file", str(env_file))
    assert result.code == 0, result.err
    assert _drafted_bindings(only_env, stack) == expected_env

    # From the account alone (key names read): every secret, every JSON key.
    only_aws = tmp_path / "aws"
    result = _draft(ops, moto, only_aws, "--stack", stack, "--from-aws", one.prefix, "--region", one.region,
                    "--read-keys")
    assert result.code == 0, result.err
    drafted = load_catalog(only_aws / "catalog.yaml")
    assert set(drafted.secrets) == set(catalog.for_environment(stack))
    assert grouped_keys(drafted, stack) == expected_keys

    # Both: names, keys and variables are the example's, and the draft previews with every secret adopted.
    both = tmp_path / "both"
    result = _draft(ops, moto, both, "--stack", stack, "--env-file", str(env_file), "--from-aws", one.prefix,
                    "--region", one.region, "--read-keys")
    assert result.code == 0, result.err
    drafted = load_catalog(both / "catalog.yaml")
    assert set(drafted.secrets) == set(catalog.for_environment(stack))
    assert grouped_keys(drafted, stack) == expected_keys
    assert _drafted_bindings(both, stack) == expected_env
    assert "# review:" in (both / "catalog.yaml").read_text()

    report = preview(stack, both, policies=True)
    text = io.StringIO()
    render_text(report, text)
    moto.outputs.append(text.getvalue())
    secrets = [r for r in report.run.resources if r.type == SECRET]
    assert {r.import_id for r in secrets} == set(one.arns.values())
    for resource in secrets:
        # Pulumi refuses an import whose inputs differ from the resource: they are what DescribeSecret says.
        assert declared(resource.inputs) == describe(moto, one.region, resource.import_id), resource.urn
    # No value is written and no resource policy is added by the import.
    assert not [r for r in report.run.resources if r.type in (VERSION, POLICY)]
    assert not report.mandatory
    # Consumers read the same ARNs as before.
    ecs = {e["name"]: e["valueFrom"] for e in report.run.outputs["ecsSecrets"]}
    for variable, where in expected_env.items():
        name, _, key = where.partition(":")
        assert ecs[variable] == one.arns[name] + (f":{key}::" if key else "")


def test_without_read_keys_no_value_is_read(moto: Moto, ops: Callable[..., Result], seeded: list[Seeded],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = seed_example(moto, "filot", "staging")
    seeded.append(one)
    calls: list[str] = []
    import ops.draft as draft

    original = draft.secretsmanager

    def counting(region: str | None, endpoint: str | None) -> Any:
        client = original(region, endpoint)
        client.meta.events.register("before-call.secrets-manager.*",
                                    lambda model, **_: calls.append(model.name))
        return client

    monkeypatch.setattr(draft, "secretsmanager", counting)
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--from-aws", one.prefix, "--region", one.region)
    assert result.code == 0, result.err
    assert "GetSecretValue" not in calls and "DescribeSecret" in calls
    text = (tmp_path / "d" / "catalog.yaml").read_text()
    assert "the JSON keys are unknown: run the draft with --read-keys" in text
    calls.clear()
    result = _draft(ops, moto, tmp_path / "k", "--stack", "staging", "--from-aws", one.prefix, "--region",
                    one.region, "--read-keys")
    assert result.code == 0
    assert calls.count("GetSecretValue") == len(one.arns)


def test_values_classified_but_never_written(moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    """Real values in a .env: placeholders and credential URLs are recognised; no value, user or host leaks."""
    password, user, host, token = moto.value(12), f"u{moto.value(4)}", f"h{moto.value(4)}.example", moto.value()
    moto.planted |= {user, host}
    env = tmp_path / ".env"
    env.write_text(textwrap.dedent(f"""\
        DATABASE_URL=postgresql://{user}:{password}@{host}:5432/app
        STRIPE_API_KEY=changeme
        SESSION_TOKEN={token}
        MAIL_HOST={host}
        MAIL_PORT=25
        LOG_LEVEL=debug
        """))
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--env-file", str(env), "--app", "shop",
                    "--account-id", "123456789012", "--region", "eu-west-1")
    assert result.code == 0, result.err
    text = (tmp_path / "d" / "catalog.yaml").read_text()
    catalog = load_catalog(tmp_path / "d" / "catalog.yaml")
    assert catalog.secrets["database-url"].class_ == "critical"
    assert catalog.secrets["database-url"].values[""].external is not None
    assert "a template candidate" in text
    assert "holds a placeholder for STRIPE_API_KEY" in text
    assert catalog.secrets["stripe-api-key"].class_ == "critical"
    assert catalog.secrets["session-token"].values[""].external is not None
    # MAIL_HOST and MAIL_PORT share a first word: one JSON secret of plain config.
    mail = catalog.secrets["mail"]
    assert mail.class_ == "configuration" and set(mail.values) == {"host", "port"}
    assert mail.values["host"].config is not None and mail.values["host"].env == ["MAIL_HOST"]
    for needle in (password, user, host, token, "changeme", "debug"):
        assert needle not in text + result.text + (tmp_path / "d" / "Pulumi.staging.yaml").read_text()


def test_a_value_that_looks_like_secret_material_is_critical_whatever_its_name(
        moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    """relaybox's trial: SMTP_AUTH_USERS (a JSON map of bcrypt hashes) was drafted as plain config, so
    `pulumi config set` without --secret would have put the hashes in the stack file. Hash-like and
    high-entropy values, and names with auth or hash in them, are critical; a setting stays config."""
    # bcrypt's shape ($2b$<cost>$<53 characters>), made now; no real password behind it.
    hashes = json.dumps({f"user{i}": f"$2b$12${moto.value(53)}" for i in range(2)})
    upstream = moto.value(32)
    moto.planted |= {hashes, upstream}
    env = tmp_path / ".env"
    env.write_text(f"INBOUND_USERS='{hashes}'\nUPSTREAM_VALUE={upstream}\nSMTP_AUTH_MODE=\nLOG_LEVEL=info\n")
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--env-file", str(env), "--app", "relay",
                    "--account-id", "123456789012", "--region", "eu-west-1")
    assert result.code == 0, result.err
    catalog = load_catalog(tmp_path / "d" / "catalog.yaml")
    for name in ("inbound-users", "upstream-value", "smtp-auth-mode"):
        assert catalog.secrets[name].class_ == "critical", name
        assert catalog.secrets[name].values[""].external is not None, name
    assert catalog.secrets["log-level"].class_ == "configuration"
    assert "looks like a key, hash or token" in (tmp_path / "d" / "catalog.yaml").read_text()
    commands = [line for line in result.out.splitlines() if "pulumi config set" in line]
    assert any("secrets-platform:inboundUsers" in c and "--secret" in c for c in commands), commands
    assert not any("secrets-platform:logLevel" in c and "--secret" in c for c in commands), commands


def test_compose_environment_and_secrets(moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    literal = moto.value()
    compose.write_text(textwrap.dedent(f"""\
        services:
          api:
            environment:
              - OPENAI_API_KEY=${{OPENAI_API_KEY}}
              - REDIS_URL
            secrets: [stripe_webhook_secret]
          worker:
            environment:
              OPENAI_API_KEY: ${{OPENAI_API_KEY:-}}
              ADMIN_TOKEN: "{literal}"
        secrets:
          stripe_webhook_secret:
            file: ./stripe.txt
        """))
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--compose", str(compose), "--app", "shop")
    assert result.code == 0, result.err
    catalog = load_catalog(tmp_path / "d" / "catalog.yaml")
    assert catalog.secrets["openai-api-key"].consumers == ["api", "worker"]
    assert catalog.secrets["redis-url"].class_ == "critical"  # a connection string
    assert catalog.secrets["admin-token"].consumers == ["worker"]
    stripe = catalog.secrets["stripe-webhook-secret"]
    assert stripe.consumers == ["api"] and stripe.class_ == "critical"
    assert "/run/secrets/stripe_webhook_secret" in (tmp_path / "d" / "catalog.yaml").read_text()
    assert "secrets-platform:accountId" in (tmp_path / "d" / "Pulumi.staging.yaml").read_text()  # the review mark


def test_draft_from_env_only_fails_preview_with_the_step_it_printed(
        moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    env = tmp_path / ".env.example"
    env.write_text("MAIL_HOST=\nMAIL_PORT=\nMAIL_PASSWORD=\n")
    out = tmp_path / "d"
    result = _draft(ops, moto, out, "--stack", "staging", "--env-file", str(env), "--app", "shop", "--owner", "web",
                    "--account-id", "123456789012", "--region", "eu-west-1")
    assert result.code == 0, result.err
    assert "pulumi config set secrets-platform:mailHost <value> --stack staging" in result.out
    err = io.StringIO()
    code = preview_main(["staging", "--project-dir", str(out), "--no-policies"], out=io.StringIO(), err=err)
    assert code == 2
    assert err.getvalue().count("\n") == 1 and "secrets-platform:mailHost" in err.getvalue()
    stack_file = out / "Pulumi.staging.yaml"
    config = yaml.safe_load(stack_file.read_text())
    config["config"].update({"secrets-platform:mailHost": "smtp.internal", "secrets-platform:mailPort": "25"})
    stack_file.write_text(yaml.safe_dump(config))
    report = preview("staging", out, policies=False)
    gaps = report.run.outputs["actionRequired"]
    assert [g["configKey"] for g in gaps] == ["mailPassword"]


@pytest.mark.parametrize(("argv", "message"), [
    ((), "nothing to draft from: give --env-file, --compose or --from-aws"),
    (("--env-file", "missing.env"), "missing.env: cannot read the env file"),
    (("--from-aws", "filot/staging/"), "--from-aws needs --region"),
    (("--from-aws", "filot/staging/", "--region", "eu-westt-1"), "'eu-westt-1' is not a region"),
    (("--from-aws", "nobody-has/this/", "--region", "eu-west-1"), "no secret in eu-west-1 has a name starting"),
    (("--app", "Shop", "--env-file", "x"), "--app: 'Shop' must be lowercase"),
    (("--account-id", "12", "--env-file", "x"), "--account-id: '12' is not a 12-digit"),
    (("--catalog-path", "../c.yaml", "--env-file", "x"), '--catalog-path: "../c.yaml" must be a file path inside'),
])
def test_bad_input_is_one_line(argv: tuple[str, ...], message: str, moto: Moto, ops: Callable[..., Result],
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = ops("draft", "--stack", "staging", "--out", str(tmp_path / "d"), *argv)
    assert result.code == 2
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert message in result.err


def test_a_line_that_is_not_a_variable_is_skipped_by_its_number_never_quoted(
        moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    value = moto.value()
    env = tmp_path / ".env"
    env.write_text(f"GOOD=1\n{value} is not a line\n{value}\n")
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--env-file", str(env), "--app", "shop")
    assert result.code == 0, result.err
    assert f"2 line(s) or entries skipped in {env} (line 2, 3)" in result.out
    assert list(load_catalog(tmp_path / "d" / "catalog.yaml").secrets) == ["good"]


def test_an_earlier_draft_is_not_overwritten(moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    argv = ("--stack", "staging", "--env-file", str(env), "--app", "shop")
    assert _draft(ops, moto, tmp_path / "d", *argv).code == 0
    again = _draft(ops, moto, tmp_path / "d", *argv)
    assert again.code == 2 and "exists: move it away or pass --force" in again.err
    assert _draft(ops, moto, tmp_path / "d", *argv, "--force").code == 0


def test_a_rotation_configured_in_aws_is_noted(moto: Moto, ops: Callable[..., Result], seeded: list[Seeded],
                                              rotation_function: Any, tmp_path: Path) -> None:
    from ops_harness import enable_rotation

    one = seed_example(moto, "filot", "staging")
    seeded.append(one)
    enable_rotation(moto, rotation_function, one.arns["session-secret"], 30)
    result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--from-aws", one.prefix, "--region", one.region)
    assert result.code == 0, result.err
    text = (tmp_path / "d" / "catalog.yaml").read_text()
    assert f"rotated in AWS by {rotation_function.arn} (every 30 days): adopted as 'manual'" in text
    # The adopted secret is not rotated by the first `pulumi up`: the draft keeps it manual.
    assert load_catalog(tmp_path / "d" / "catalog.yaml").secrets["session-secret"].rotation == "manual"


def test_aws_tags_are_left_out(moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    """AWS's own `aws:` tags are left out of the adoption (the provider ignores them in its state); a prefix
    without its trailing slash names the same secrets."""
    sm = moto.client("secretsmanager", "eu-west-1")
    made = sm.create_secret(Name="shop/staging/api-token", SecretString=moto.value(), Tags=[
        {"Key": "aws:cloudformation:stack-name", "Value": "legacy"}, {"Key": "team", "Value": "web"}])
    try:
        result = _draft(ops, moto, tmp_path / "d", "--stack", "staging", "--from-aws", "shop/staging",
                        "--region", "eu-west-1")
        assert result.code == 0, result.err
        config = yaml.safe_load((tmp_path / "d" / "Pulumi.staging.yaml").read_text())["config"]
        assert config["secrets-platform:adopt"] == {"api-token": {
            "arn": made["ARN"], "name": "shop/staging/api-token", "tags": {"team": "web"}}}
        assert config["secrets-platform:accountId"] == made["ARN"].split(":")[4]
    finally:
        sm.delete_secret(SecretId=made["ARN"], ForceDeleteWithoutRecovery=True)


def test_day_2_commands_find_an_adopted_secret_by_its_own_name(
        moto: Moto, ops: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    sm = moto.client("secretsmanager", "eu-west-1")
    made = sm.create_secret(Name="shop/staging/partner-token", SecretString=moto.value())
    try:
        project = make_project("""\
            app: shop
            owner: web
            secrets:
              api-token:
                description: Calls the partner API
                class: configuration
                value: {env: API_TOKEN, external: {}}
            """, f"""\
            config:
              aws:region: eu-west-1
              secrets-platform:accountId: "{made['ARN'].split(':')[4]}"
              secrets-platform:adopt:
                api-token: {{arn: "{made['ARN']}", name: shop/staging/partner-token}}
            """)
        result = ops("list", "--stack", "staging", "--project-dir", str(project), "--format", "json")
        assert result.code == 0, result.err
        listed = json.loads(result.out)
        assert [(s["name"], s["exists"]) for s in listed["secrets"]] == [("shop/staging/partner-token", True)]
        assert listed["summary"]["missing"] == 0
    finally:
        sm.delete_secret(SecretId=made["ARN"], ForceDeleteWithoutRecovery=True)
