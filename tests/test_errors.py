"""User mistakes end in one clear line naming file, secret and field, exit status 2, no traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from preview.cli import main
from tests.conftest import MINIMAL_STACK, RENEWED_SECRET, REPO

GOOD = """\
app: shop
owner: platform
secrets:
  session-secret:
    description: Signs sessions
    class: critical
    rotation: {strategy: token, every_days: 30}
    value:
      env: SESSION_SECRET
      generate: {kind: bytes, bytes: 32, encoding: hex}
  payments:
    description: Payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    keys:
      apiKey:
        env: PAYMENTS_API_KEY
        external: {}
      endpoint:
        env: PAYMENTS_ENDPOINT
        config: {default: "https://api.payments.example.net"}
"""


def run_cli(project: Path, stack: str = "staging") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([stack, "--project-dir", str(project), "--no-policies"], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def expect_error(project: Path, *fragments: str, stack: str = "staging") -> str:
    code, out, err = run_cli(project, stack)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_the_good_catalog_runs(make_project: Callable[..., Path]) -> None:
    code, out, err = run_cli(make_project(GOOD, MINIMAL_STACK))
    assert code == 0, err
    assert "shop/staging/session-secret" in out


def test_yaml_syntax_error(make_project: Callable[..., Path]) -> None:
    broken = GOOD.replace("    class: critical\n    rotation", "    class: [critical\n    rotation")
    expect_error(make_project(broken, MINIMAL_STACK), "catalog.yaml", "invalid YAML at line", "secret 'session-secret'")


def test_unknown_field(make_project: Callable[..., Path]) -> None:
    typo = GOOD.replace("      generate: {kind: bytes", "      generat: {kind: bytes")
    expect_error(make_project(typo, MINIMAL_STACK), "catalog.yaml", "secret 'session-secret'",
                 "field 'value.generat'", "unknown field")


def test_duplicate_secret(make_project: Callable[..., Path]) -> None:
    twice = GOOD + """\
  session-secret:
    description: again
    class: configuration
    value: {config: {}}
"""
    expect_error(make_project(twice, MINIMAL_STACK), "catalog.yaml", "duplicate key 'session-secret'",
                 "secret 'session-secret'")


def test_unknown_stack(make_project: Callable[..., Path]) -> None:
    line = expect_error(make_project(GOOD, MINIMAL_STACK), "Pulumi.qa.yaml", "stack 'qa'", stack="qa")
    assert "stacks: staging" in line


def test_missing_account_id(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK.replace('  secrets-platform:accountId: "210987654321"\n', "")
    expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", "field 'secrets-platform:accountId'", "required")


def test_malformed_account_id(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK.replace('"210987654321"', '"2109-8765"')
    expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", "'2109-8765' is not a 12-digit")


def test_recovery_window_out_of_range(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK.replace("recoveryWindowDays: 7", "recoveryWindowDays: 3")
    expect_error(make_project(GOOD, config), "field 'secrets-platform:recoveryWindowDays'",
                 "outside the allowed range 7-30")


def test_weak_critical_generator(make_project: Callable[..., Path]) -> None:
    weak = GOOD.replace("bytes: 32, encoding: hex", "bytes: 16, encoding: hex")
    expect_error(make_project(weak, MINIMAL_STACK), "secret 'session-secret'", "field 'value.generate'",
                 "256 bits", "gives 128")


def test_unknown_rotation_strategy(make_project: Callable[..., Path]) -> None:
    bad = GOOD.replace("strategy: token, every_days: 30", "strategy: ldap, every_days: 30")
    expect_error(make_project(bad, MINIMAL_STACK), "secret 'session-secret'", "field 'rotation", "ldap")


def test_template_naming_an_unknown_key(make_project: Callable[..., Path]) -> None:
    bad = GOOD.replace('config: {default: "https://api.payments.example.net"}', 'template: "https://{host}/v1"')
    expect_error(make_project(bad, MINIMAL_STACK), "secret 'payments'", "field 'keys.endpoint.template'", "'host'")


def test_missing_required_external_value_fails_outside_the_preview(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK + "  secrets-platform:allowMissingValues: false\n"
    project = make_project(GOOD, config)
    # The preview lists missing values instead of failing; the program itself (pulumi up) fails.
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    stack = load_stack_config(project, "staging")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    message = str(caught.value)
    assert "secret 'payments'" in message and "secrets-platform:paymentsApiKey" in message
    assert "pulumi config set --secret secrets-platform:paymentsApiKey --stack staging" in message


def test_an_external_value_in_plain_text_is_refused(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK + "  secrets-platform:paymentsApiKey: pk_live_made_up_for_this_test_only\n"
    line = expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", "secret 'payments'",
                        "field 'secrets-platform:paymentsApiKey'", "plain text",
                        "pulumi config set --secret secrets-platform:paymentsApiKey --stack staging")
    assert "pk_live" not in line, "the message must not repeat the value"


def test_placeholder_in_an_external_value(make_project: Callable[..., Path]) -> None:
    # A `secure:` value whose plaintext is a placeholder: set as the engine would hand it over
    # (decrypted, marked secret), which the offline preview cannot do from the file.
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    project = make_project(GOOD, MINIMAL_STACK)
    stack = load_stack_config(project, "staging")
    stack.values["secrets-platform:paymentsApiKey"] = "YOUR_PAYMENTS_API_KEY_HERE"
    stack.secret_keys.append("secrets-platform:paymentsApiKey")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    message = str(caught.value)
    assert "secret 'payments'" in message and "field 'secrets-platform:paymentsApiKey'" in message
    assert "placeholder" in message
    assert "YOUR_PAYMENTS_API_KEY_HERE" not in message, "the message must not repeat the value"


def test_placeholder_in_plain_config(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK + "  secrets-platform:paymentsEndpoint: <endpoint>\n"
    expect_error(make_project(GOOD, config), "field 'secrets-platform:paymentsEndpoint'", "'<...>' placeholder")


def test_the_command_line_reports_without_a_traceback(make_project: Callable[..., Path]) -> None:
    typo = GOOD.replace("    class: critical\n    rotation: {strategy", "    clas: critical\n    rotation: {strategy")
    project = make_project(typo, MINIMAL_STACK)
    done = subprocess.run(
        [sys.executable, "-m", "preview", "staging", "--project-dir", str(project)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "Traceback" not in done.stderr
    assert "secret 'session-secret'" in done.stderr


def test_a_secret_limited_to_an_unknown_environment(make_project: Callable[..., Path]) -> None:
    typo = GOOD.replace("    class: critical\n    rotation: on-compromise",
                        "    class: critical\n    environments: [prodution]\n    rotation: on-compromise")
    expect_error(make_project(typo, MINIMAL_STACK), "secret 'payments'", "field 'environments'", "'prodution'")


def test_a_stack_whose_environment_the_catalog_does_not_list(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK + "  secrets-platform:environment: qa\n"
    expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", "field 'secrets-platform:environment'",
                 "'qa' is not one of the catalog's environments")


@pytest.mark.parametrize("mistake", ["placeholder", "plain text", "no subnets", "policy too large"])
def test_a_mistake_stops_the_program_before_any_resource(make_project: Callable[..., Path], mistake: str) -> None:
    """`pulumi up` applies registrations as they come: every check runs before the first one."""
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    catalog, config = GOOD, MINIMAL_STACK
    if mistake == "plain text":
        config += "  secrets-platform:paymentsApiKey: pk_live_made_up_for_this_test_only\n"
    if mistake == "no subnets":
        catalog += """\
  db:
    description: The database
    class: critical
    rotation: {strategy: postgres-single-user, every_days: 30}
    keys:
      engine: {config: {default: postgres}}
      host: {config: {default: db.internal}}
      port: {config: {default: "5432"}, type: integer}
      dbname: {config: {default: shop}}
      username: {config: {default: shop}}
      password: {generate: {kind: password, length: 48}}
"""
    if mistake == "policy too large":
        catalog += "".join(
            f"  setting-{i}:\n    description: a setting\n    class: configuration\n    consumers: [api]\n"
            f"    value: {{env: SETTING_{i}, config: {{default: value-{i}}}}}\n" for i in range(80))
    project = make_project(catalog, config)
    stack = load_stack_config(project, "staging")
    if mistake == "placeholder":
        stack.values["secrets-platform:paymentsApiKey"] = "changeme-please-changeme"
        stack.secret_keys.append("secrets-platform:paymentsApiKey")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    assert caught.value.registered == 0, str(caught.value)


# ------------------------------------------------------------------ first value made by the rotation function

FIRST_VALUE = GOOD.replace("every_days: 30}", "every_days: 30, first_value: rotation}")
JWT = """\
  signing-key:
    description: Signs access tokens
    class: critical
    rotation: {strategy: jwt-rs256, every_days: 180, first_value: rotation}
    keys:
      kid: {env: JWT_KEY_ID, rotation: {}}
      public_key_pem: {env: JWT_PUBLIC_KEY, rotation: {}}
"""


def test_first_value_by_rotation_runs(make_project: Callable[..., Path]) -> None:
    code, out, err = run_cli(make_project(FIRST_VALUE + JWT, MINIMAL_STACK))
    assert code == 0, err
    assert "shop/staging/signing-key" in out


@pytest.mark.parametrize(("change", "fragments"), [
    pytest.param(("strategy: token, every_days: 30, first_value: rotation",
                  "strategy: postgres-single-user, every_days: 30, first_value: rotation"),
                 ("field 'rotation.first_value'", "'postgres-single-user' strategy logs in with the current "
                  "credential"), id="server-credential"),
    pytest.param(("first_value: rotation}", "first_value: program}"),
                 ("secret 'signing-key'", "field 'keys.kid.rotation'", "only in a secret whose rotation makes"),
                 id="rotation-source-without-first-value"),
    pytest.param(("      public_key_pem: {env: JWT_PUBLIC_KEY, rotation: {}}\n",
                  "      public_key_pem: {env: JWT_PUBLIC_KEY, rotation: {}}\n      issuer: {config: {}}\n"),
                 ("secret 'signing-key'", "field 'keys.issuer.config'", "cannot come from config"),
                 id="config-value"),
    pytest.param(("      public_key_pem: {env: JWT_PUBLIC_KEY, rotation: {}}\n",
                  "      public_key_pem: {env: JWT_PUBLIC_KEY, rotation: {}}\n      issuer: {rotation: {}}\n"),
                 ("secret 'signing-key'", "field 'keys'", "issuer would be missing"),
                 id="key-the-function-never-writes"),
    pytest.param(("      generate: {kind: bytes, bytes: 32, encoding: hex}\n",
                  "      generate: {kind: bytes, bytes: 32, encoding: hex}\n      invalid: true\n"),
                 ("secret 'session-secret'",), id="unknown-field-still-refused"),
])
def test_first_value_mistakes(make_project: Callable[..., Path], change: tuple[str, str],
                              fragments: tuple[str, ...]) -> None:
    catalog = (FIRST_VALUE + JWT).replace(*change)
    assert catalog != FIRST_VALUE + JWT, "the change must apply"
    expect_error(make_project(catalog, MINIMAL_STACK), "catalog.yaml", *fragments)


def test_a_token_made_by_rotation_holds_only_its_generated_value(make_project: Callable[..., Path]) -> None:
    grouped = FIRST_VALUE.replace("""    value:
      env: SESSION_SECRET
      generate: {kind: bytes, bytes: 32, encoding: hex}
""", """    keys:
      secret:
        env: SESSION_SECRET
        generate: {kind: bytes, bytes: 32, encoding: hex}
      cookie:
        env: SESSION_COOKIE
        config: {default: sid}
""")
    assert grouped != FIRST_VALUE
    expect_error(make_project(grouped, MINIMAL_STACK), "secret 'session-secret'", "field 'keys.cookie.config'")


# ------------------------------------------------------------------ a value the application renews itself

RENEWED = GOOD + RENEWED_SECRET


def test_a_value_the_application_renews_runs(make_project: Callable[..., Path]) -> None:
    code, out, err = run_cli(make_project(RENEWED, MINIMAL_STACK))
    assert code == 0, err
    assert "shop-staging-worker-secrets-write" in out


@pytest.mark.parametrize(("change", "fragments"), [
    pytest.param(("    writers: [worker]\n", ""), ("field 'writers'", "'rotation: application' needs 'writers'"),
                 id="no-writers"),
    pytest.param(("    writers: [worker]\n", "    writers: [api]\n"),
                 ("field 'writers'", "writer(s) api must also be consumers"), id="writer-not-a-reader"),
    pytest.param(("    rotation: application\n",
                  "    rotation: on-compromise\n    rotation_reason: issued by the IdP\n"),
                 ("field 'writers'", "only a value the application renews"), id="writers-without-application"),
])
def test_renewed_value_mistakes(make_project: Callable[..., Path], change: tuple[str, str],
                                fragments: tuple[str, ...]) -> None:
    catalog = RENEWED.replace(*change)
    assert catalog != RENEWED, "the change must apply"
    expect_error(make_project(catalog, MINIMAL_STACK), "catalog.yaml", "secret 'refresh-token'", *fragments)


# ------------------------------------------------------------------ schedules AWS accepts (components/schedule.py)

@pytest.mark.parametrize(("rotation", "field", "fragment"), [
    pytest.param("schedule: 'rate(2 hours)'", "rotation.schedule", "below Secrets Manager's minimum of every 4 hours",
                 id="rate-below-4-hours"),
    pytest.param("schedule: 'rate(0 days)'", "rotation.schedule", "never rotates", id="zero-rate"),
    pytest.param("schedule: 'rate(0 hours)'", "rotation.schedule", "never rotates", id="zero-rate-hours"),
    pytest.param("schedule: 'rate(ten days)'", "rotation.schedule", "is not rate(N hours|days)", id="malformed-rate"),
    pytest.param("schedule: 'rate(3 weeks)'", "rotation.schedule", "is not rate(N hours|days)", id="rate-unit"),
    pytest.param("schedule: 'cron(not a cron)'", "rotation.schedule", "needs six fields", id="malformed-cron"),
    pytest.param("schedule: 'cron(0 0 1 * *)'", "rotation.schedule", "needs six fields", id="unix-cron"),
    pytest.param("schedule: 'cron(0 0 31 2 ? *)'", "rotation.schedule", "never fires", id="cron-never-fires"),
    pytest.param("schedule: 'cron(0 0 29 2 ? *)'", "rotation.schedule", "less than once a year",
                 id="cron-every-four-years"),
    pytest.param("schedule: 'cron(30 0 * * ? *)'", "rotation.schedule", "minutes field must be 0", id="cron-minutes"),
    pytest.param("schedule: 'cron(0 0 * * ? 2027)'", "rotation.schedule", "year field must be *", id="cron-year"),
    pytest.param("schedule: 'cron(0 0 1 * MON *)'", "rotation.schedule", "exactly one of day-of-month and day-of-week",
                 id="cron-both-days"),
    pytest.param("schedule: 'cron(0 0 15W * ? *)'", "rotation.schedule", "W (nearest weekday)", id="cron-W"),
    pytest.param("schedule: 'cron(0 0 ? * 9 *)'", "rotation.schedule", "day-of-week 9 is not 1-7", id="cron-dow"),
    pytest.param("schedule: 'cron(0 0 32 * ? *)'", "rotation.schedule", "is malformed", id="cron-bad-day"),
    pytest.param("schedule: 'cron(0 */2 * * ? *)'", "rotation.schedule",
                 "less than Secrets Manager's minimum of 4 hours", id="cron-too-often"),
    pytest.param("schedule: 'cron(0 22 * * ? *)', window: 4h", "rotation.window", "runs past the end of the UTC day",
                 id="window-past-midnight"),
    pytest.param("schedule: 'cron(0 0/6 * * ? *)', window: 8h", "rotation.window", "runs into the next rotation",
                 id="window-into-next-cron"),
    pytest.param("schedule: 'rate(6 hours)', window: 8h", "rotation.window", "run into the next rotation",
                 id="window-into-next-rate"),
    pytest.param("every_days: 30, window: 25h", "rotation.window", "must be 1h to 24h", id="window-too-long"),
    pytest.param("every_days: 30, window: 90m", "rotation.window", "must be 1h to 24h", id="window-not-hours"),
])
def test_a_schedule_aws_refuses(make_project: Callable[..., Path], rotation: str, field: str, fragment: str) -> None:
    catalog = GOOD.replace("rotation: {strategy: token, every_days: 30}", f"rotation: {{strategy: token, {rotation}}}")
    assert catalog != GOOD
    expect_error(make_project(catalog, MINIMAL_STACK), "catalog.yaml", "secret 'session-secret'",
                 f"field '{field}'", fragment)


@pytest.mark.parametrize("rotation", [
    "schedule: 'rate(4 hours)', window: 4h", "schedule: 'rate(1 day)'", "schedule: 'rate(10 days)', window: 24h",
    "schedule: 'cron(0 /8 * * ? *)'", "schedule: 'cron(0 2/10 * * ? *)', window: 2h",
    "schedule: 'cron(0 18 ? * SAT *)'", "schedule: 'cron(0 1 ? 1/3 SUN#1 *)'", "schedule: 'cron(0 17 L * ? *)'",
    "schedule: 'cron(0 8 ? * MON-FRI *)', window: 3h", "schedule: 'cron(0 16 1,15 * ? *)'",
    "every_days: 30, window: 4h",
])
def test_a_schedule_aws_accepts_previews(make_project: Callable[..., Path], rotation: str) -> None:
    """AWS's own examples (Secrets Manager User Guide, "Schedule expressions") and windows that fit."""
    catalog = GOOD.replace("rotation: {strategy: token, every_days: 30}", f"rotation: {{strategy: token, {rotation}}}")
    code, _, err = run_cli(make_project(catalog, MINIMAL_STACK))
    assert code == 0, err


def test_a_schedule_mistake_stops_the_program_before_any_resource(make_project: Callable[..., Path]) -> None:
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    catalog = GOOD.replace("every_days: 30}", "schedule: 'rate(0 days)'}")
    project = make_project(catalog, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        run_program(load_stack_config(project, "staging"), project, str(REPO / "__main__.py"))
    assert caught.value.registered == 0, str(caught.value)
    assert caught.value.field == "rotation.schedule"


def test_a_database_strategy_missing_a_key_shows_how_to_declare_it(make_project: Callable[..., Path]) -> None:
    """relaybox's trial: 'needs the keys engine' named the key but not what to write."""
    catalog = GOOD + """\
  database:
    description: Application database login
    class: critical
    rotation: {strategy: postgres-alternating-users, every_days: 30, master: database-admin}
    keys:
      host: {env: DB_HOST, config: {}}
      port: {env: DB_PORT, config: {default: "5432"}, type: integer}
      dbname: {env: DB_NAME, config: {default: app}}
      username: {env: DB_USER, config: {default: app}}
      password: {env: DB_PASSWORD, generate: {kind: password, length: 48}}
  database-admin:
    description: RDS master login
    class: critical
    rotation: on-compromise
    rotation_reason: the RDS master user
    keys: {username: {config: {default: postgres}}, password: {external: {}}}
"""
    line = expect_error(make_project(catalog, MINIMAL_STACK), "secret 'database'", "field 'keys'")
    assert line.endswith("needs the keys engine; for example engine: {config: {default: postgres}}")


def test_the_readme_lists_the_tags_the_platform_sets(make_project: Callable[..., Path]) -> None:
    """A stack tag of a platform name is refused, naming them; the README lists the same names."""
    import re

    from components.settings import PLATFORM_TAGS
    from tests.conftest import REPO

    line = expect_error(make_project(GOOD, MINIMAL_STACK + "  secrets-platform:tags: {owner: x}\n"),
                        "field 'secrets-platform:tags.owner'")
    assert line.endswith(f"(the platform's: {', '.join(sorted(PLATFORM_TAGS))})")
    readme = (REPO / "README.md").read_text()
    listed = readme.split("use the names the platform sets (", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z-]+)`", listed)) == PLATFORM_TAGS


def test_an_unknown_catalog_field_one_letter_off_gets_a_suggestion(make_project: Callable[..., Path]) -> None:
    catalog = GOOD.replace("    rotation_reason: issued by the payment provider\n",
                           "    rotation_reason: issued by the payment provider\n    consumer: [api]\n")
    line = expect_error(make_project(catalog, MINIMAL_STACK), "secret 'payments'", "field 'consumer'")
    assert line.endswith("unknown field; did you mean 'consumers'?")
    far = GOOD.replace("    rotation_reason: issued by the payment provider\n",
                       "    rotation_reason: issued by the payment provider\n    colour: x\n")
    assert expect_error(make_project(far, MINIMAL_STACK), "field 'colour'").endswith("unknown field")
    misplaced = GOOD.replace("    rotation_reason: issued by the payment provider\n",
                             "    rotation_reason: issued by the payment provider\n    pattern: x\n")
    assert expect_error(make_project(misplaced, MINIMAL_STACK), "field 'pattern'").endswith(
        "unknown field; 'pattern' belongs to a value ('value' or 'keys.<key>')")


# ---------------------------------------------------------------- each message names what the user wrote

SIGNER = """\
app: shop
owner: platform
secrets:
  signing-key:
    description: Signs access tokens (RS256)
    class: critical
    rotation: {strategy: jwt-rs256, every_days: 180, first_value: rotation}
    consumers: [auth]
    public_key: {verifiers: [gatewy], env: JWT_JWKS}
    keys:
      kid: {env: JWT_KEY_ID, rotation: {}}
      private_key_pem: {env: JWT_PRIVATE_KEY, rotation: {}}
"""


@pytest.mark.parametrize(("catalog", "stack", "fragments"), [
    # The stack names roles: the verifier has none. Reported where it is written, not against the
    # generated `signing-key-public-key` secret's `consumers`, which the user never wrote.
    (SIGNER, MINIMAL_STACK + '  secrets-platform:principals: {"services": {"auth": ["shop-auth"]}}\n',
     ("secret 'signing-key'", "field 'public_key.verifiers'", "'gatewy' has no role in Pulumi.staging.yaml's "
      "principals.services")),
    # The catalog lists its services: the verifier is not one of them.
    (SIGNER.replace("owner: platform\n", "owner: platform\nservices: [auth, gateway]\n"), MINIMAL_STACK,
     ("catalog.yaml", "secret 'signing-key'", "field 'public_key.verifiers'", "'gatewy' is not in the catalog's "
      "services (did you mean 'gateway'?)")),
])
def test_an_unknown_verifier_is_reported_where_it_is_written(make_project: Callable[..., Path], catalog: str,
                                                            stack: str, fragments: tuple[str, ...]) -> None:
    line = expect_error(make_project(catalog, stack), *fragments)
    assert "public-key" not in line


@pytest.mark.parametrize(("marker", "said"), [("dev_", "('dev_...')"), ("dev-", "('dev-...')"),
                                              ("DEV-", "('DEV-...')")])
def test_a_development_value_is_named_by_its_own_marker(marker: str, said: str) -> None:
    from components.values import placeholder_problem

    value = marker + "q7Rt2Lm9Xv4Bn8Kd"
    assert placeholder_problem(value, "critical") == f"the value is a development value {said}, not a real value"


def test_a_single_pattern_is_not_called_an_environment_s(make_project: Callable[..., Path]) -> None:
    catalog = GOOD.replace("        external: {}\n", "        external: {}\n        pattern: '^pk_'\n")
    config = MINIMAL_STACK + "  secrets-platform:paymentsApiKey:\n    secure: v1:" + "A" * 44 + "\n"
    project = make_project(catalog, config)
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    stack = load_stack_config(project, "staging")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))  # as `pulumi up`: the value is real
    assert caught.value.reason == "the value does not match the catalog's pattern ('^pk_'); set the right value"
