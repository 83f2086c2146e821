"""What applications ask the catalog for: per-environment requirements,
constraints on supplied values, typos in service names, a third environment."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from components.errors import ConfigurationError
from components.values import offline_stand_ins
from preview.cli import main, preview
from preview.runtime import ProgramRun, run_program
from preview.stackconfig import load_stack_config
from tests.conftest import MINIMAL_STACK, REPO, current_build
from tests.test_errors import expect_error

CATALOG = """\
app: shop
owner: platform
secrets:
  cache:
    description: Redis connection; production has one, staging may not
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the managed cache team
    consumers: [api]
    keys:
      host: {env: CACHE_HOST, config: {}, required: [production]}
      password: {env: CACHE_PASSWORD, external: {}, required: [production], min_length: 32}
      url: {env: CACHE_URL, template: "rediss://:{password}@{host}:6379"}
  session:
    description: Signs sessions
    class: critical
    rotation: on-compromise
    rotation_reason: supplied by the security team
    consumers: [api]
    value: {env: SESSION_SECRET, external: {}, min_length: 32, differs_from: [signing]}
  signing:
    description: Signs tokens
    class: critical
    rotation: on-compromise
    rotation_reason: supplied by the security team
    consumers: [api]
    value: {env: SIGNING_KEY, external: {}}
"""


def program(project: Path, stack: str = "staging", values: dict[str, str] | None = None,
            preview_mode: bool = False) -> ProgramRun:
    """The program as `pulumi up` runs it: `values` are secure values as the engine hands them over. With
    `preview_mode`, as the offline preview runs it: those values are its stand-ins."""
    config = load_stack_config(project, stack)
    for key, value in (values or {}).items():
        config.values[f"secrets-platform:{key}"] = value
        config.secret_keys.append(f"secrets-platform:{key}")
    with offline_stand_ins(config.secret_keys) if preview_mode else contextlib.nullcontext():
        return run_program(config, project, str(REPO / "__main__.py"))


def value(n: int = 24) -> str:
    return secrets.token_urlsafe(n)


# ---------------------------------------------------------------- required in some environments


def test_a_value_required_in_production_is_optional_in_staging(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, MINIMAL_STACK)
    run = program(project, values={"session": value(), "signing": value()})
    gaps = {(g["secret"], g["key"]): g["required"] for g in run.outputs["actionRequired"]}
    assert gaps == {("cache", "host"): False, ("cache", "password"): False}
    # The template whose parts staging does not set is left out, with its variable.
    assert not {"CACHE_URL", "CACHE_HOST", "CACHE_PASSWORD"} & set(run.outputs["envVars"])


def test_the_same_value_is_required_in_production(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, MINIMAL_STACK, stack="production")
    with pytest.raises(ConfigurationError) as caught:
        program(project, "production", values={"session": value(), "signing": value()})
    assert caught.value.secret == "cache" and caught.value.field == "secrets-platform:cacheHost"
    assert caught.value.registered == 0


def test_with_its_parts_set_the_template_is_stored(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n",
                           stack="production")
    run = program(project, "production", values={"session": value(), "signing": value(),
                                                 "cachePassword": value(32)})
    assert {"CACHE_URL", "CACHE_HOST", "CACHE_PASSWORD"} <= set(run.outputs["envVars"])
    assert run.outputs["actionRequired"] == []


def test_required_lists_at_least_one_environment(make_project: Callable[..., Path]) -> None:
    """`required: []` says nothing `required: false` does not; the message is the list's, not a boolean's."""
    bad = CATALOG.replace("required: [production], min", "required: [], min")
    expect_error(make_project(bad, MINIMAL_STACK), "secret 'cache'", "field 'keys.password.required'",
                 "at least 1 item")


def test_required_names_a_catalog_environment(make_project: Callable[..., Path]) -> None:
    bad = CATALOG.replace("required: [production], min", "required: [prod], min")
    expect_error(make_project(bad, MINIMAL_STACK), "secret 'cache'", "field 'keys.password.required'", "'prod'")


# ---------------------------------------------------------------- constraints on supplied values


def test_a_value_shorter_than_min_length_is_refused_without_quoting_it(make_project: Callable[..., Path]) -> None:
    short = value(12)[:20]
    project = make_project(CATALOG, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": short, "signing": value()})
    assert caught.value.field == "secrets-platform:session" and "at least 32" in str(caught.value)
    assert short not in str(caught.value)
    assert caught.value.registered == 0


def test_two_values_that_must_differ(make_project: Callable[..., Path]) -> None:
    same = value(32)
    project = make_project(CATALOG, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": same, "signing": same})
    assert caught.value.secret == "session" and "signing" in str(caught.value)
    assert same not in str(caught.value)
    assert caught.value.registered == 0
    program(project, values={"session": value(32), "signing": value(32)})  # different: fine


@pytest.mark.parametrize(("old", "new", "field"), [
    ("differs_from: [signing]", "differs_from: [signin]", "value.differs_from"),
    ("differs_from: [signing]", "differs_from: [cache.host]", "value.differs_from"),
    ("differs_from: [signing]", "differs_from: [session]", "value.differs_from"),
    ('template: "rediss', 'min_length: 3, template: "rediss', "keys.url"),
])
def test_a_constraint_that_cannot_apply(make_project: Callable[..., Path], old: str, new: str, field: str) -> None:
    expect_error(make_project(CATALOG.replace(old, new), MINIMAL_STACK), "catalog.yaml", f"field '{field}")


def _checked_at_deploy(project: Path) -> str:
    """The offline preview's section of checks that wait for `pulumi up`."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(project), "--no-policies"], out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue().split("Checked at `pulumi up` only", 1)[1]


def test_the_preview_says_which_checks_wait_for_pulumi_up(make_project: Callable[..., Path]) -> None:
    section = _checked_at_deploy(make_project(CATALOG, MINIMAL_STACK))
    assert "session: at least 32 characters" in section and "session: differs from signing" in section
    assert "cache.password: at least 32 characters" in section


PATTERNED = CATALOG.replace(
    "    value: {env: SIGNING_KEY, external: {}}\n",
    "    value: {env: SIGNING_KEY, external: {}, pattern: {production: '^sk_live_', staging: '^sk_test_'}}\n"
).replace("host: {env: CACHE_HOST, config: {}, required: [production]}",
          "host: {env: CACHE_HOST, config: {}, required: [production], pattern: '\\.internal$'}")


def test_a_value_of_another_environment_is_refused_by_its_pattern(make_project: Callable[..., Path]) -> None:
    """relaybox's trial: nothing stopped a Stripe test key in production. The message quotes the pattern,
    never the value; nothing is registered."""
    project = make_project(PATTERNED, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n",
                           stack="production")
    live, test = "sk_live_" + value(), "sk_test_" + value()
    with pytest.raises(ConfigurationError) as caught:
        program(project, "production", values={"session": value(32), "signing": test, "cachePassword": value(32)})
    assert caught.value.field == "secrets-platform:signing" and "'^sk_live_'" in str(caught.value)
    assert test not in str(caught.value) and caught.value.registered == 0
    program(project, "production", values={"session": value(32), "signing": live, "cachePassword": value(32)})
    staging = make_project(PATTERNED, MINIMAL_STACK)
    with pytest.raises(ConfigurationError):
        program(staging, values={"session": value(32), "signing": live})
    program(staging, values={"session": value(32), "signing": test})


def test_a_plain_value_is_held_to_its_pattern_at_every_run(make_project: Callable[..., Path]) -> None:
    project = make_project(PATTERNED, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.example.com\n")
    expect_error(project, "field 'secrets-platform:cacheHost'", "'\\.internal$'")


def test_the_preview_lists_a_pattern_as_a_deploy_check(make_project: Callable[..., Path]) -> None:
    section = _checked_at_deploy(make_project(PATTERNED, MINIMAL_STACK))
    assert "signing: matches '^sk_test_'" in section
    # A plain value's pattern is checked at every run (above), and a value without one has none to match.
    assert "cache.host" not in section and "session: matches" not in section


@pytest.mark.parametrize(("pattern", "message"), [
    ("'['", "is not a regular expression"),
    ("{prod: '^x'}", "'prod' is not one of the catalog's environments"),
])
def test_a_pattern_that_cannot_apply(make_project: Callable[..., Path], pattern: str, message: str) -> None:
    catalog = CATALOG.replace("    value: {env: SIGNING_KEY, external: {}}\n",
                              f"    value: {{env: SIGNING_KEY, external: {{}}, pattern: {pattern}}}\n")
    expect_error(make_project(catalog, MINIMAL_STACK), "secret 'signing'", "field 'value.pattern'", message)


# ---------------------------------------------------------------- the development-value check


def test_dev_prefixed_plain_values_are_identifiers_not_placeholders(make_project: Callable[..., Path]) -> None:
    catalog = CATALOG.replace("host: {env: CACHE_HOST, config: {}, required: [production]}",
                              "host: {env: CACHE_HOST, config: {}}\n      user: {env: CACHE_USER, config: {}}")
    config = (MINIMAL_STACK + "  secrets-platform:cacheHost: dev-cache.internal\n"
              "  secrets-platform:cacheUser: dev_user\n")
    program(make_project(catalog, config), values={"session": value(), "signing": value()}, preview_mode=True)


def test_a_dev_prefixed_secret_value_is_refused(make_project: Callable[..., Path]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        program(make_project(CATALOG, MINIMAL_STACK), values={"session": "dev-" + value(32), "signing": value()})
    assert "development value" in str(caught.value)


# ---------------------------------------------------------------- service names


def test_a_consumer_without_a_role_when_the_stack_names_roles(make_project: Callable[..., Path]) -> None:
    catalog = CATALOG.replace("consumers: [api]\n    keys", "consumers: [apii]\n    keys")
    config = MINIMAL_STACK + '  secrets-platform:principals: {"services": {"api": ["shop-api"]}}\n'
    expect_error(make_project(catalog, config), "catalog.yaml", "secret 'cache'", "field 'consumers'",
                 "'apii' has no role", "did you mean 'api'?")


def test_a_consumer_one_letter_off_another_without_roles(make_project: Callable[..., Path]) -> None:
    catalog = CATALOG.replace("consumers: [api]\n    keys", "consumers: [apii]\n    keys")
    expect_error(make_project(catalog, MINIMAL_STACK), "secret 'cache'", "field 'consumers'",
                 "'apii' looks like a typo of 'api'")


def test_a_services_list_names_every_consumer(make_project: Callable[..., Path]) -> None:
    listed = CATALOG.replace("owner: platform\n", "owner: platform\nservices: [api, apii]\n")
    catalog = listed.replace("consumers: [api]\n    keys", "consumers: [apii]\n    keys")
    program(make_project(catalog, MINIMAL_STACK), values={"session": value(), "signing": value()})
    unlisted = listed.replace("services: [api, apii]", "services: [api, worker]")
    expect_error(make_project(unlisted.replace("consumers: [api]\n    keys", "consumers: [apii]\n    keys"),
                              MINIMAL_STACK), "field 'consumers'", "did you mean 'api'?")


# ---------------------------------------------------------------- a third environment


def test_a_third_environment_made_from_the_staging_file(tmp_path: Path) -> None:
    """The README's how-to: list the environment in the catalog, copy the staging stack file."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    catalog = (REPO / "catalog.yaml").read_text()
    assert "\nenvironments:" not in catalog
    (tmp_path / "catalog.yaml").write_text(catalog.replace("\nsecrets:\n", "\nenvironments: [production, staging, dev]"
                                                           "\nsecrets:\n", 1))
    (tmp_path / "Pulumi.dev.yaml").write_text((REPO / "Pulumi.staging.yaml").read_text().replace("staging", "dev"))
    report = preview("dev", tmp_path, policy_config=None)
    assert report.run.outputs["secretArns"], "the dev stack declares its secrets"
    assert all("/dev/" in arn for arn in json.loads(json.dumps(report.run.outputs["secretArns"])).values())
    assert not [v for v in report.violations if v.undecided], [v.message for v in report.violations]
    assert report.mandatory == []


# ---------------------------------------------------------------- each refusal's exact words and field


def test_a_value_that_must_differ_names_its_own_config_key(make_project: Callable[..., Path]) -> None:
    """differs_from on a key of a grouped secret, and on a value read from a config key of its own name."""
    catalog = CATALOG.replace(
        "password: {env: CACHE_PASSWORD, external: {}, required: [production], min_length: 32}",
        "password: {env: CACHE_PASSWORD, external: {}, required: [production], min_length: 32, "
        "differs_from: [session]}",
    ).replace("value: {env: SESSION_SECRET, external: {}, min_length: 32, differs_from: [signing]}",
              "value: {env: SESSION_SECRET, external: {config: sessionKey}, min_length: 32, "
              "differs_from: [signing]}")
    project = make_project(catalog, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n")
    same = value(32)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"sessionKey": same, "signing": value(), "cachePassword": same})
    assert (caught.value.secret, caught.value.field) == ("cache", "secrets-platform:cachePassword")
    assert caught.value.reason == ("the value equals session's, which the catalog says it must differ from "
                                   "(differs_from); set a different value")
    with pytest.raises(ConfigurationError) as own:
        program(project, values={"sessionKey": same, "signing": same, "cachePassword": value(32)})
    assert (own.value.secret, own.value.field) == ("session", "secrets-platform:sessionKey")


def test_a_production_only_value_is_required_in_production(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n",
                           stack="production")
    with pytest.raises(ConfigurationError) as caught:
        program(project, "production", values={"session": value(32), "signing": value()})
    assert (caught.value.secret, caught.value.field) == ("cache", "secrets-platform:cachePassword")
    assert caught.value.reason.startswith("the external value is not set; set it with `pulumi config set --secret ")


def test_the_pattern_refusal_names_the_environment(make_project: Callable[..., Path]) -> None:
    project = make_project(PATTERNED, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": "sk_live_" + value()})
    assert caught.value.reason == ("the value does not match the catalog's pattern for staging ('^sk_test_'); set "
                                   "the right value")


def test_the_preview_checks_no_length_of_its_stand_ins(make_project: Callable[..., Path]) -> None:
    """With allowMissingValues (the offline preview) secure values are random stand-ins: min_length waits."""
    project = make_project(CATALOG, MINIMAL_STACK)
    program(project, values={"session": value(15), "signing": value()}, preview_mode=True)  # 20 < 32 characters


def test_a_plain_value_set_as_a_secret_is_refused(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": value(), "cacheHost": "cache.internal"})
    assert (caught.value.file, caught.value.secret, caught.value.field) == (
        "Pulumi.staging.yaml", "cache", "secrets-platform:cacheHost")
    assert caught.value.reason == ("is set with --secret, but the catalog declares it as plain config; declare it "
                                   "`external` in the catalog if it is secret, or set it without --secret")


def test_supplied_values_over_a_secret_s_size_are_refused_by_their_sum(make_project: Callable[..., Path]) -> None:
    """Secrets Manager holds at most 65,536 bytes a SecretString: two values of 40,000 and 30,000 bytes
    are refused together, naming both keys; each alone would fit."""
    host = "h" * 30_000
    project = make_project(CATALOG, MINIMAL_STACK + f"  secrets-platform:cacheHost: {host}\n")
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": value(), "cachePassword": value(30_000)[:40_000]})
    assert caught.value.field == "secrets-platform:cacheHost, secrets-platform:cachePassword"
    assert caught.value.reason == ("the supplied values add up to 70,000 bytes; a secret holds at most 65,536 "
                                   "(SecretString)")


@pytest.mark.parametrize(("extra", "field", "hint"), [
    # Sorted after a known key (cacheHost): every given key is checked, not only the first.
    ("  secrets-platform:cacheHost: cache.internal\n  secrets-platform:recoveryWindowDayz: 30\n",
     "secrets-platform:recoveryWindowDayz", "did you mean secrets-platform:recoveryWindowDays?"),
    ("  secrets-platform:signingKey: x\n", "secrets-platform:signingKey", "did you mean secrets-platform:signing?"),
    ("  secrets-platform:zz: 1\n", "secrets-platform:zz", "remove it, or add the value it sets to the catalog"),
])
def test_an_unknown_config_key_is_refused_with_the_closest_known_one(make_project: Callable[..., Path], extra: str,
                                                                    field: str, hint: str) -> None:
    project = make_project(CATALOG, MINIMAL_STACK + extra)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": value()})
    assert (caught.value.file, caught.value.field) == ("Pulumi.staging.yaml", field)
    assert caught.value.reason == f"unknown key: neither a setting nor a value of catalog.yaml ({hint})"


PLAIN_CONSTRAINED = CATALOG.replace(
    "host: {env: CACHE_HOST, config: {}, required: [production]}",
    "host: {env: CACHE_HOST, config: {}, required: [production], min_length: 11, "
    "pattern: {production: '\\.prod\\.internal$', staging: '\\.internal$'}}")


@pytest.mark.parametrize(("host", "reason"), [
    ("a.internal", "the value has 10 characters; the catalog asks for at least 11 (min_length)"),
    ("cache.example.com", "the value does not match the catalog's pattern for staging ('\\.internal$'); set the "
                          "right value"),
])
def test_a_plain_value_is_held_to_its_length_and_its_environment_s_pattern(
        make_project: Callable[..., Path], host: str, reason: str) -> None:
    project = make_project(PLAIN_CONSTRAINED, MINIMAL_STACK + f"  secrets-platform:cacheHost: {host}\n")
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": value()})
    assert (caught.value.secret, caught.value.field) == ("cache", "secrets-platform:cacheHost")
    assert caught.value.reason == reason
    # staging's pattern, not production's: a staging host is accepted.
    program(make_project(PLAIN_CONSTRAINED, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n"),
            values={"session": value(32), "signing": value()})


def test_an_optional_plain_value_not_set_is_listed_with_a_plain_command(make_project: Callable[..., Path]) -> None:
    run = program(make_project(CATALOG, MINIMAL_STACK), values={"session": value(32), "signing": value()})
    commands = {g["configKey"]: g["command"] for g in run.outputs["actionRequired"]}
    assert commands == {"cacheHost": "pulumi config set secrets-platform:cacheHost <value> --stack staging",
                        "cachePassword": "pulumi config set --secret secrets-platform:cachePassword --stack staging"}


@pytest.mark.parametrize(("password", "refused"), [(65_536 - 30_000, False), (65_536 - 30_000 + 1, True)])
def test_plain_and_secret_values_count_together_up_to_exactly_the_limit(
        make_project: Callable[..., Path], password: int, refused: bool) -> None:
    """The plain host's 30,000 bytes count with the password's; 65,536 in all is allowed, one more is not."""
    project = make_project(CATALOG, MINIMAL_STACK + f"  secrets-platform:cacheHost: {'h' * 30_000}\n")
    values = {"session": value(32), "signing": value(), "cachePassword": value(password)[:password]}
    if not refused:
        program(project, values=values)
        return
    with pytest.raises(ConfigurationError) as caught:
        program(project, values=values)
    assert (caught.value.secret, caught.value.field) == ("cache", "secrets-platform:cacheHost, "
                                                                  "secrets-platform:cachePassword")


def test_a_value_that_must_differ_from_a_key_of_a_grouped_secret(make_project: Callable[..., Path]) -> None:
    catalog = CATALOG.replace("    value: {env: SIGNING_KEY, external: {}}\n",
                              "    value: {env: SIGNING_KEY, external: {}, differs_from: [cache.password]}\n")
    project = make_project(catalog, MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n")
    same = value(32)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": value(32), "signing": same, "cachePassword": same})
    assert (caught.value.secret, caught.value.field) == ("signing", "secrets-platform:signing")
    assert caught.value.reason.startswith("the value equals cache.password's")


# ---------------------------------------------------------------- what a rotation needs is required where it runs

SERVER = """\
app: shop
owner: platform
environments: [production, staging, dev]
secrets:
  database:
    description: Application role
    class: critical
    rotation: {strategy: postgres-single-user, every_days: 30, master: db-admin}
    consumers: [api]
    keys:
      engine: {config: {default: postgres}}
      host: {env: PGHOST, config: {}}
      port: {env: PGPORT, config: {default: "5432"}, type: integer}
      dbname: {config: {default: shop}}
      username: {env: PGUSER, config: {default: shop_app}}
      password: {env: PGPASSWORD, generate: {kind: password, length: 48}}
      sslmode: {env: PGSSLMODE, config: {}, required: false}
  db-admin:
    description: Admin role that installs the application role
    class: critical
    rotation: on-compromise
    rotation_reason: the database team rotates the admin role
    keys:
      username: {config: {default: postgres}}
      password: {external: {}, required: [dev]}
      host: {config: {config: adminHost}, required: false}
"""
SERVER_STACK = MINIMAL_STACK + """\
  secrets-platform:rotationSubnetIds: [subnet-0a1b2c3d4e5f60718]
  secrets-platform:rotationSecurityGroupIds: [sg-0a1b2c3d4e5f60718]
  secrets-platform:databaseHost: db.internal
"""
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def _versions_of(run: ProgramRun) -> set[str]:
    by_urn = {r.urn: r for r in run.resources}
    return {str(by_urn[r.property_dependencies["secretId"][0]].inputs["name"]).rsplit("/", 1)[-1]
            for r in run.resources if r.type == VERSION}


def test_a_master_optional_here_and_unset_makes_the_credential_wait(make_project: Callable[..., Path]) -> None:
    """`required: [dev]` on the admin password: in staging it is optional and unset, so nothing could install
    the generated password. The credential waits for it exactly as for a required master that is missing: no
    value, no schedule (no `rotateImmediately` that can only fail), the admin password listed as required."""
    run = program(make_project(SERVER, SERVER_STACK), preview_mode=True)
    assert [(i["secret"], i["status"]) for i in run.outputs["firstInstalls"]] == [("database", "waits-for-master")]
    assert not [r for r in run.resources if r.type == ROTATION]
    assert _versions_of(run) == set()
    gaps = {(g["secret"], g["key"]): g["required"] for g in run.outputs["actionRequired"]}
    # The master's login is needed; its optional host, and the credential's optional sslmode, are not.
    assert gaps == {("db-admin", "password"): True, ("db-admin", "host"): False, ("database", "sslmode"): False}


def test_pulumi_up_refuses_such_a_master_naming_its_key(make_project: Callable[..., Path]) -> None:
    """Through `required: [dev]` a production stack would deploy a credential nothing can install: `pulumi up`
    stops before any resource, naming the admin password's config key and the rotation that needs it."""
    # How `api` reads the credential (production refuses a consumer it knows nothing of: components/consumers.py).
    reads = "  secrets-platform:consumption: {api: {kind: runtime, cacheTtlSeconds: 0}}\n"
    project = make_project(SERVER, SERVER_STACK + reads, stack="production")
    current_build(project)
    with pytest.raises(ConfigurationError) as caught:
        program(project, "production")
    assert (caught.value.file, caught.value.secret, caught.value.field) == (
        "Pulumi.production.yaml", "db-admin", "secrets-platform:dbAdminPassword")
    assert caught.value.reason == (
        "the external value is not set, and the postgres-single-user rotation of database logs in with it "
        "(rotation.master), which cannot succeed without it; the catalog's `required` leaves it optional in "
        "production; set it with `pulumi config set --secret secrets-platform:dbAdminPassword --stack production`")
    assert caught.value.registered == 0


def test_with_the_master_set_the_first_rotation_installs_the_credential(make_project: Callable[..., Path]) -> None:
    project = make_project(SERVER, SERVER_STACK)
    current_build(project)
    run = program(project, values={"dbAdminPassword": value(32)})
    assert [(i["secret"], i["status"]) for i in run.outputs["firstInstalls"]] == [("database", "at-deploy")]
    (schedule,) = [r for r in run.resources if r.type == ROTATION]
    assert schedule.inputs["rotateImmediately"] is True


def test_a_strategy_key_optional_here_and_unset_makes_the_credential_wait(make_project: Callable[..., Path]) -> None:
    """`host` required in production only: a staging credential without it would be rotated at once and fail."""
    catalog = SERVER.replace("host: {env: PGHOST, config: {}}", "host: {env: PGHOST, config: {}, "
                             "required: [production]}")
    stack = SERVER_STACK.replace("  secrets-platform:databaseHost: db.internal\n", "")
    run = program(make_project(catalog, stack), values={"dbAdminPassword": value(32)}, preview_mode=True)
    assert not [r for r in run.resources if r.type == ROTATION]
    assert _versions_of(run) == {"db-admin"}
    gaps = {(g["secret"], g["key"]): (g["required"], g["command"]) for g in run.outputs["actionRequired"]}
    assert gaps[("database", "host")] == (
        True, "pulumi config set secrets-platform:databaseHost <value> --stack staging")
    assert run.outputs["firstInstalls"] == [], "listed as a value to set, not as an install"
    project = make_project(catalog, stack)
    current_build(project)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"dbAdminPassword": value(32)})
    assert (caught.value.secret, caught.value.field) == ("database", "secrets-platform:databaseHost")
    assert caught.value.reason.startswith(
        "not set, and the postgres-single-user rotation of database reads its 'host', which cannot succeed "
        "without it; the catalog's `required` leaves it optional in staging; set it with `pulumi config set ")
    assert caught.value.registered == 0


def test_a_template_among_the_strategy_keys_needs_its_parts(make_project: Callable[..., Path]) -> None:
    catalog = SERVER.replace("host: {env: PGHOST, config: {}}", "host: {env: PGHOST, template: '{region}.db'}\n"
                             "      region: {config: {}, required: false}")
    stack = SERVER_STACK.replace("  secrets-platform:databaseHost: db.internal\n", "")
    run = program(make_project(catalog, stack), values={"dbAdminPassword": value(32)}, preview_mode=True)
    assert ("database", "region", True) in {(g["secret"], g["key"], g["required"])
                                            for g in run.outputs["actionRequired"]}
    assert not [r for r in run.resources if r.type == ROTATION]


# ---------------------------------------------------------------- allowMissingValues lets values be missing, no more

CONSTRAINED_STACK = MINIMAL_STACK + "  secrets-platform:allowMissingValues: true\n"


@pytest.mark.parametrize(("values", "reason"), [
    ({"session": "s" + value(15), "signing": value()},
     "the value has 21 characters; the catalog asks for at least 32 (min_length)"),
    ({"session": value(32), "signing": "sk_live_" + value()},
     "the value does not match the catalog's pattern for staging ('^sk_test_'); set the right value"),
])
def test_a_stack_s_allow_missing_values_keeps_every_check_on_a_set_value(
        make_project: Callable[..., Path], values: dict[str, str], reason: str) -> None:
    project = make_project(PATTERNED, CONSTRAINED_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values=values)
    assert caught.value.reason == reason and caught.value.registered == 0
    # The missing cache values are still let through: that is all the setting does.
    run = program(project, values={"session": value(32), "signing": "sk_test_" + value()})
    assert {g["key"] for g in run.outputs["actionRequired"]} == {"host", "password"}


def test_a_stack_s_allow_missing_values_keeps_the_rotation_package_check(make_project: Callable[..., Path]) -> None:
    project = make_project(SERVER, SERVER_STACK + "  secrets-platform:allowMissingValues: true\n")
    with pytest.raises(ConfigurationError) as caught:
        program(project)
    assert caught.value.reason.startswith("the rotation Lambda package: it does not exist; run `make lambda`")
    # The offline preview lists the package as a step instead.
    run = program(project, preview_mode=True)
    assert [s["command"] for s in run.outputs["pendingSteps"]] == ["make lambda"]


def test_the_preview_warns_where_a_stack_allows_missing_values(make_project: Callable[..., Path]) -> None:
    warning = "secrets-platform:allowMissingValues is on in Pulumi.staging.yaml"
    out = io.StringIO()
    assert main(["staging", "--project-dir", str(make_project(CATALOG, CONSTRAINED_STACK)), "--no-policies"],
                out=out, err=io.StringIO()) == 0
    assert warning in out.getvalue().split("\nWarnings (", 1)[1]
    # The preview allows missing values itself, but says nothing of a setting the stack does not make.
    out = io.StringIO()
    assert main(["staging", "--project-dir", str(make_project(CATALOG, MINIMAL_STACK)), "--no-policies"],
                out=out, err=io.StringIO()) == 0
    assert "allowMissingValues" not in out.getvalue()


def _policy_config(tmp_path: Path, config: dict[str, object]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(config))
    return path


def test_the_pack_refuses_allow_missing_values_in_production(make_project: Callable[..., Path],
                                                             tmp_path: Path) -> None:
    production = MINIMAL_STACK.replace("recoveryWindowDays: 7", "recoveryWindowDays: 30") + \
        "  secrets-platform:protectSecrets: true\n  secrets-platform:cacheHost: cache.internal\n"
    project = make_project(CATALOG, production + "  secrets-platform:allowMissingValues: true\n", stack="production")
    report = preview("production", project, policy_config=REPO / "policies" / "config" / "production.json")
    assert [(v.policy, v.enforcement, v.urn.rsplit("::", 1)[-1]) for v in report.mandatory] == [
        ("stack-requires-values", "mandatory", "shop-production-kms-key")]
    assert "remove allowMissingValues from the production stack file" in report.mandatory[0].message
    # Without the setting the same production preview is clean, and staging may use it.
    clean = make_project(CATALOG, production, stack="production")
    assert preview("production", clean, policy_config=REPO / "policies" / "config" / "production.json").mandatory == []
    staging = make_project(CATALOG, CONSTRAINED_STACK)
    assert preview("staging", staging, policy_config=_policy_config(tmp_path, {})).mandatory == []


# ---------------------------------------------------------------- a waiting schedule is judged now


@pytest.mark.parametrize(("rotation", "finding"), [
    ("{strategy: postgres-single-user, every_days: 400, master: db-admin}", "every 400 days (rate(400 days)"),
    ("{strategy: postgres-single-user, schedule: 'cron(0 4 1 6 ? *)', master: db-admin}",
     "every 365 days (cron(0 4 1 6 ? *)"),
    ("{strategy: postgres-single-user, schedule: 'rate(10 days)', master: db-admin}", None),
    ("{strategy: postgres-single-user, every_days: 30, master: db-admin}", None),
])
def test_a_schedule_waiting_for_its_master_is_held_to_the_maximum_now(
        make_project: Callable[..., Path], tmp_path: Path, rotation: str, finding: str | None) -> None:
    """A critical credential whose SecretRotation waits for the master's value: the pack reads the catalog's
    schedule from the secret's tags (`rotation`, `rotation-schedule`), so a 400-day rotation fails the preview
    now, not on the day the admin password is set."""
    catalog = SERVER.replace("{strategy: postgres-single-user, every_days: 30, master: db-admin}", rotation)
    report = preview("staging", make_project(catalog, SERVER_STACK), policy_config=_policy_config(tmp_path, {}))
    assert not [r for r in report.run.resources if r.type == ROTATION], "the schedule waits for the master"
    found = [v.message for v in report.mandatory if v.policy == "secret-rotation-required"]
    if finding is None:
        assert found == []
        return
    assert found == [f"critical secret shop-staging-database-secret is to rotate {finding}, from its tags; its "
                     "SecretRotation waits for the secret's value), slower than the 90-day maximum; rotate at least "
                     "every 90 days."]


@pytest.mark.parametrize("expression", [
    "rate(12 hours)", "rate(1 day)", "cron(0 4 ? * SUN *)", "cron(0 8,20 ? * MON-FRI *)", "cron(0 2 ? * 3#2 *)",
    "cron(0 0 1/2 * ? *)", "cron(0 /8 * * ? *)", "cron(0 4 ? * SUNL *)",
])
def test_a_schedule_reaches_the_pack_through_a_tag_as_written(expression: str) -> None:
    """Tag values may hold only letters, digits, spaces and `_ . : / = + - @` (AWS tagging guide, "Tag naming
    limits and requirements": https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html; botocore's
    TagValueType gives only the length, 256); a schedule's `( ) ? * , #` are written as characters that never
    occur in one, and read back."""
    import re
    import sys

    from components.catalog import TAG_TEXT, Rotation

    sys.path.insert(0, str(REPO / "policies"))  # the engine puts the pack directory on sys.path
    from guardrails.stack import tagged_schedule

    tag = Rotation(strategy="token", schedule=expression).schedule_tag
    assert tag is not None and TAG_TEXT.fullmatch(tag) and re.fullmatch(r"[^()?*,#]{1,256}", tag)
    assert tagged_schedule({"rotation": "scheduled", "rotation-schedule": tag}) == expression
    # Read only from a secret tagged as scheduled: a stack-wide tag of that name on another is ignored.
    assert tagged_schedule({"rotation": "on-compromise", "rotation-schedule": tag}) is None


# ---------------------------------------------------------------- constraints that could never apply

LIMITED = """\
app: shop
owner: platform
environments: [production, staging, dev]
secrets:
  session:
    description: Signs sessions
    class: critical
    rotation: on-compromise
    rotation_reason: supplied by the security team
    consumers: [api]
    value: {env: SESSION_SECRET, external: {}, differs_from: [signing]}
  signing:
    description: Signs tokens
    class: critical
    rotation: on-compromise
    rotation_reason: supplied by the security team
    consumers: [api]
    environments: [production, staging]
    value: {env: SIGNING_KEY, external: {}, required: [production]}
"""


@pytest.mark.parametrize(("old", "new", "fragments"), [
    # dev is the catalog's, not this secret's: the requirement would never apply.
    ("external: {}, required: [production]}", "external: {}, required: [dev]}",
     ("secret 'signing'", "field 'value.required'", "'dev' is not an environment of this secret (environments: "
      "production, staging), so this would never apply")),
    ("external: {}, required: [production]}", "external: {}, pattern: {dev: '^x'}}",
     ("secret 'signing'", "field 'value.pattern'", "'dev' is not an environment of this secret")),
    # session is in dev, signing is not: in dev the check has nothing to compare with.
    ("differs_from: [signing]", "differs_from: [signing]",
     ("secret 'session'", "field 'value.differs_from'", "differs_from 'signing' names a secret that dev does not "
      "have (its environments: production, staging), where this one is")),
])
def test_a_constraint_on_an_environment_the_secret_is_not_in(make_project: Callable[..., Path], old: str, new: str,
                                                            fragments: tuple[str, ...]) -> None:
    catalog = LIMITED.replace(old, new)
    if old == new:  # the differs_from case: the rest of the catalog as given
        expect_error(make_project(catalog, MINIMAL_STACK), "catalog.yaml", *fragments)
        return
    fixed = catalog.replace("differs_from: [signing]", "differs_from: []")
    expect_error(make_project(fixed, MINIMAL_STACK), "catalog.yaml", *fragments)


def test_the_same_constraints_within_the_secret_s_environments_are_accepted(make_project: Callable[..., Path]) -> None:
    catalog = LIMITED.replace("    value: {env: SESSION_SECRET", "    environments: [production, staging]\n"
                              "    value: {env: SESSION_SECRET")
    program(make_project(catalog, MINIMAL_STACK), values={"session": value(), "signing": value()})


def test_a_value_set_for_a_secret_this_environment_does_not_have(make_project: Callable[..., Path]) -> None:
    catalog = LIMITED.replace("differs_from: [signing]", "differs_from: []")
    project = make_project(catalog, MINIMAL_STACK + "  secrets-platform:signing:\n    secure: v1:" + "A" * 44 + "\n",
                           stack="dev")
    line = expect_error(project, "Pulumi.dev.yaml", "secret 'signing'", "field 'secrets-platform:signing'", stack="dev")
    assert line.endswith("is a value of secret 'signing', which dev does not have (its environments: production, "
                         "staging); remove it from this stack file, or add dev to the secret's environments in "
                         "catalog.yaml")
    # In staging, which has it, the same line is the value.
    program(make_project(catalog, MINIMAL_STACK), values={"session": value(), "signing": value()})


# ---------------------------------------------------------------- keys set both or neither

TOGETHER = """\
app: shop
owner: platform
secrets:
  twilio:
    description: Twilio credentials for SMS, when the stack has them
    class: critical
    rotation: on-compromise
    rotation_reason: issued by Twilio - rotate the auth token in its console
    consumers: [api]
    together: [[accountSid, authToken]]
    keys:
      accountSid: {env: TWILIO_ACCOUNT_SID, external: {}, required: false}
      authToken: {env: TWILIO_AUTH_TOKEN, external: {}, required: false}
      region: {env: TWILIO_REGION, config: {}, required: false}
"""


def test_keys_set_together_may_both_be_missing_or_both_set(make_project: Callable[..., Path]) -> None:
    project = make_project(TOGETHER, MINIMAL_STACK)
    run = program(project)
    assert {g["key"]: g["required"] for g in run.outputs["actionRequired"]} == {
        "accountSid": False, "authToken": False, "region": False}
    run = program(project, values={"twilioAccountSid": value(), "twilioAuthToken": value()})
    assert {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"} <= set(run.outputs["envVars"])


def test_a_stack_that_sets_one_of_them_is_refused_naming_the_other(make_project: Callable[..., Path]) -> None:
    project = make_project(TOGETHER, MINIMAL_STACK)
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"twilioAccountSid": value()})
    assert (caught.value.secret, caught.value.field) == ("twilio", "secrets-platform:twilioAuthToken")
    assert caught.value.reason == (
        "the external value is not set, and this stack sets accountSid, which goes with it (together: [accountSid, "
        "authToken]); the catalog's `required` leaves it optional in staging; set it with `pulumi config set "
        "--secret secrets-platform:twilioAuthToken --stack staging`")
    assert caught.value.registered == 0
    # The offline preview lists the other as required, and the secret waits for it.
    run = program(project, values={"twilioAuthToken": value()}, preview_mode=True)
    assert ("accountSid", True) in {(g["key"], g["required"]) for g in run.outputs["actionRequired"]}
    assert not [r for r in run.resources if r.type == VERSION]


@pytest.mark.parametrize(("together", "fragment"), [
    ("[[accountSid, authTokn]]", "'authTokn' is not an external or plain config key of this secret"),
    ("[[accountSid]]", "at least 2 items"),
    ("[[accountSid, accountSid]]", "names a key twice"),
    ("[[accountSid, region]]", "'region' has a default, so it is always set"),
])
def test_a_group_that_cannot_apply(make_project: Callable[..., Path], together: str, fragment: str) -> None:
    catalog = TOGETHER.replace("[[accountSid, authToken]]", together).replace(
        "region: {env: TWILIO_REGION, config: {}, required: false}", "region: {env: TWILIO_REGION, config: "
        "{default: us1}}")
    expect_error(make_project(catalog, MINIMAL_STACK), "secret 'twilio'", "field 'together", fragment)


def test_a_group_of_keys_required_everywhere_means_nothing(make_project: Callable[..., Path]) -> None:
    catalog = TOGETHER.replace("external: {}, required: false}", "external: {}}")
    expect_error(make_project(catalog, MINIMAL_STACK), "secret 'twilio'", "field 'together.0'",
                 "accountSid, authToken are required in every environment of this secret")


def test_check_env_knows_keys_set_together(tmp_path: Path) -> None:
    import yaml

    from components.catalog import parse_catalog
    from ops.envcheck import MISSING, OPTIONAL, check
    from ops.stack import Stack

    stack = Stack(name="staging", project="secrets-platform", environment="staging", region="eu-west-1",
                  catalog=parse_catalog(yaml.safe_load(TOGETHER), "catalog.yaml"), protected=False)
    statuses = {r.variable: (r.status, r.required) for r in check(stack, {})}
    assert statuses["TWILIO_AUTH_TOKEN"] == (OPTIONAL, False)
    statuses = {r.variable: (r.status, r.required) for r in check(stack, {"TWILIO_ACCOUNT_SID": value()})}
    assert statuses["TWILIO_AUTH_TOKEN"] == (MISSING, True)
    assert statuses["TWILIO_REGION"] == (OPTIONAL, False), "not in the group"


# ---------------------------------------------------------------- a dev stack may hold the team's development values

DEV_CATALOG = CATALOG.replace("owner: platform\n", "owner: platform\nenvironments: [production, staging, dev]\n")


@pytest.mark.parametrize(("stack", "setting", "accepted"), [
    ("dev", None, True),  # an environment named as development
    ("dev", False, False),
    ("staging", None, False),
    ("staging", True, True),
])
def test_development_values_where_the_stack_accepts_them(make_project: Callable[..., Path], stack: str,
                                                         setting: bool | None, accepted: bool) -> None:
    given = "" if setting is None else f"  secrets-platform:developmentValues: {str(setting).lower()}\n"
    config = MINIMAL_STACK + given
    project = make_project(DEV_CATALOG, config, stack=stack)
    values = {"session": "dev_" + value(32), "signing": "dev-" + value()}
    if accepted:
        program(project, stack, values=values)
        return
    with pytest.raises(ConfigurationError) as caught:
        program(project, stack, values=values)
    assert caught.value.reason == "the value is a development value ('dev_...'), not a real value"


def test_production_never_holds_development_values(make_project: Callable[..., Path]) -> None:
    project = make_project(DEV_CATALOG, MINIMAL_STACK + "  secrets-platform:developmentValues: true\n"
                           "  secrets-platform:cacheHost: cache.internal\n", stack="production")
    expect_error(project, "Pulumi.production.yaml", "field 'secrets-platform:developmentValues'",
                 "production may not hold development values", stack="production")


def test_the_readme_says_what_the_pack_does_without_a_dev_policy_config(tmp_path: Path) -> None:
    """Without `policies/config/dev.json` each rule keeps its own default level: an advisory rule stays
    advisory (the repository catalog's `jwt-secret` ends like an ARN suffix)."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    catalog = (REPO / "catalog.yaml").read_text()
    (tmp_path / "catalog.yaml").write_text(catalog.replace("\nsecrets:\n", "\nenvironments: [production, staging, dev]"
                                                           "\nsecrets:\n", 1))
    (tmp_path / "Pulumi.dev.yaml").write_text((REPO / "Pulumi.staging.yaml").read_text().replace("staging", "dev"))
    report = preview("dev", tmp_path, policy_config=None)
    assert report.policy_config is None
    assert {v.enforcement for v in report.violations if v.policy == "secret-name-arn-suffix"} == {"advisory"}
    howto = (REPO / "README.md").read_text().split("## How to add an environment", 1)[1].split("\n## ", 1)[0]
    assert "every\n   rule is mandatory" not in howto and "keeps its own default level" in howto
