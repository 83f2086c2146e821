"""A generated server credential reaches its server: the stack replayed as the preview declares it.

An empty PostgreSQL 15 and an empty redis-server, each with only its admin user. The program's
first value (a generated password) is stored in Secrets Manager, the function's environment and
each schedule's RotateImmediately are taken from the preview, and the admin credential is the
master secret's value (what `pulumi config set --secret` gives it). Right after that replay the
application credential in AWSCURRENT logs in; then the first scheduled rotation succeeds, and a
second one too. No value reaches the rotation logs.
"""

from __future__ import annotations

import json
import logging
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rotation_harness import Harness, assert_no_secret
from servers import PostgresServer, RedisServer, postgres_server, redis_server

from preview.model import CollectedResource, plain

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
FUNCTION = "aws:lambda/function:Function"
STAND_IN = "v1:" + "A" * 44  # a `secure:` value of the right shape; the preview never decrypts it

CATALOG = """\
app: replay
owner: platform
environments: [staging]
secrets:
  database:
    description: Application role, single user, installed by the admin role
    class: critical
    rotation: {strategy: postgres-single-user, every_days: 30, master: database-admin}
    consumers: [api]
    keys:
      engine: {config: {default: postgres}}
      host: {env: PGHOST, config: {config: pgHost}}
      port: {env: PGPORT, config: {config: pgPort}, type: integer}
      dbname: {config: {default: postgres}}
      username: {env: PGUSER, config: {default: replay_app}}
      password: {env: PGPASSWORD, generate: {kind: password, length: 48, alphabet: alphanumeric}}
      url: {env: DATABASE_URL, template: "postgresql://{username}:{password}@{host}:{port}/{dbname}"}
  reports:
    description: Reporting role, alternating users, installed by the admin role
    class: critical
    rotation: {strategy: postgres-alternating-users, every_days: 30, master: database-admin}
    consumers: [api]
    keys:
      engine: {config: {default: postgres}}
      host: {env: REPORTS_HOST, config: {config: pgHost}}
      port: {env: REPORTS_PORT, config: {config: pgPort}, type: integer}
      dbname: {config: {default: postgres}}
      username: {env: REPORTS_USER, config: {default: replay_reports}}
      password: {env: REPORTS_PASSWORD, generate: {kind: password, length: 48, alphabet: alphanumeric}}
  database-admin:
    description: PostgreSQL admin role that installs the application roles
    class: critical
    rotation: on-compromise
    rotation_reason: the server owner rotates the admin role
    keys:
      username: {config: {default: postgres}}
      password: {external: {}}
  cache:
    description: Redis ACL user of the application
    class: critical
    rotation: {strategy: redis-acl, every_days: 30, master: cache-admin, acl: "~app:* +@all -@dangerous"}
    consumers: [api]
    keys:
      host: {env: CACHE_HOST, config: {}}
      port: {env: CACHE_PORT, config: {}, type: integer}
      username: {env: CACHE_USER, config: {default: replay-app}}
      password: {env: CACHE_PASSWORD, generate: {kind: password, length: 48, alphabet: alphanumeric}}
      tls: {config: {default: "false"}, type: boolean}
  cache-admin:
    description: Redis admin user that installs the application user
    class: critical
    rotation: on-compromise
    rotation_reason: the server owner rotates the admin user
    keys:
      username: {config: {default: admin}}
      password: {external: {}}
"""


@pytest.fixture(scope="module")
def empty_pg() -> Iterator[PostgresServer]:
    """A fresh cluster: only the `postgres` superuser exists."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def empty_redis() -> Iterator[RedisServer]:
    """A fresh redis-server: only the `admin` user (the default user is off)."""
    with redis_server({}) as server:
        yield server


def _project(tmp_path: Path, pg: PostgresServer, cache: RedisServer) -> Path:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "Pulumi.staging.yaml").write_text(textwrap.dedent(f"""\
        config:
          aws:region: us-east-1
          secrets-platform:accountId: "123456789012"
          secrets-platform:recoveryWindowDays: 7
          secrets-platform:rotationSubnetIds: [subnet-0a1b2c3d4e5f60718]
          secrets-platform:rotationSecurityGroupIds: [sg-0a1b2c3d4e5f60718]
          secrets-platform:pgHost: "{pg.host}"
          secrets-platform:pgPort: "{pg.port}"
          secrets-platform:cacheHost: "{cache.host}"
          secrets-platform:cachePort: "{cache.port}"
          secrets-platform:databaseAdminPassword:
            secure: {STAND_IN}
          secrets-platform:cacheAdminPassword:
            secure: {STAND_IN}
        """))
    return tmp_path


class Replay:
    """The preview's resources, created in moto in dependency order."""

    def __init__(self, harness: Harness, resources: list[CollectedResource], admins: dict[str, str]) -> None:
        self.harness = harness
        self.by_urn = {r.urn: r for r in resources}
        self.resources = resources
        self.admins = admins
        """Catalog name of a master secret -> the admin password its value carries in this replay."""
        self.names: dict[str, str] = {}
        """Secret URN -> name."""
        self.functions: dict[str, str] = {}
        """Function URN -> ARN in moto."""

    def of_type(self, token: str) -> list[CollectedResource]:
        return [r for r in self.resources if r.type == token]

    def deploy(self) -> dict[str, str]:
        """Secrets, then their first values, then functions, then schedules; the schedules' tokens by name."""
        sm = self.harness.sm
        arns: dict[str, str] = {}
        for secret in self.of_type(SECRET):
            name = secret.inputs["name"]
            self.names[secret.urn] = name
            arns[name] = sm.create_secret(Name=name, Description=secret.inputs["description"])["ARN"]
        # Masters first, as the program orders them (a credential stores its master's ARN).
        versions = sorted(self.of_type(VERSION), key=lambda v: 0 if self.short_name(v) in self.admins else 1)
        for version in versions:
            (secret_urn,) = version.property_dependencies["secretId"]
            name = self.names[secret_urn]
            value = json.loads(plain(version.inputs["secretString"]))
            short = name.rsplit("/", 1)[-1]
            if short in self.admins:
                value["password"] = self.admins[short]  # what `pulumi config set --secret` gives
            if "masterarn" in value:
                # The mock's ARN of the master secret becomes moto's ARN of the same name.
                master_name = value["masterarn"].split(":secret:", 1)[1][:-7]
                value["masterarn"] = arns[master_name]
            sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))
        for function in self.of_type(FUNCTION):
            variables = function.inputs["environment"]["variables"]
            self.functions[function.urn] = self.harness.function(
                variables["ROTATION_STRATEGY"], json.loads(variables["ROTATION_TARGETS"]))
        tokens: dict[str, str] = {}
        for schedule in self.of_type(ROTATION):
            (secret_urn,) = schedule.property_dependencies["secretId"]
            (function_urn,) = schedule.property_dependencies["rotationLambdaArn"]
            name = self.names[secret_urn]
            tokens[name] = str(uuid.uuid4())
            days = int(schedule.inputs["rotationRules"]["automaticallyAfterDays"])
            sm.rotate_secret(
                SecretId=name, ClientRequestToken=tokens[name], RotationLambdaARN=self.functions[function_urn],
                RotationRules={"AutomaticallyAfterDays": days},
                RotateImmediately=schedule.inputs["rotateImmediately"],
            )
        return tokens

    def short_name(self, version: CollectedResource) -> str:
        (secret_urn,) = version.property_dependencies["secretId"]
        return str(self.by_urn[secret_urn].inputs["name"]).rsplit("/", 1)[-1]


def _values(harness: Harness, name: str) -> list[str]:
    """Every password any version of `name` holds (to assert that none reaches the logs)."""
    found = []
    for version in harness.sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]:
        try:
            text = harness.sm.get_secret_value(SecretId=name, VersionId=version["VersionId"])["SecretString"]
        except harness.sm.exceptions.ResourceNotFoundException:
            continue
        if "password" in json.loads(text):  # the program's first version has none
            found.append(str(json.loads(text)["password"]))
    return found


def _pg_logs_in(pg: PostgresServer, data: dict[str, Any]) -> bool:
    return pg.can_login(data["username"], data["password"])


def _redis_logs_in(server: RedisServer, data: dict[str, Any]) -> bool:
    """Takes the secret's document (a SecretDict, whose repr hides values) so a failure prints none."""
    return server.can_login(data["username"], data["password"])


def test_generated_credentials_are_installed_by_the_deploy_then_rotate(
    harness: Harness, empty_pg: PostgresServer, empty_redis: RedisServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import run_stack

    report = run_stack("staging", _project(tmp_path, empty_pg, empty_redis))
    installs = {i["secret"]: i["status"] for i in report.run.outputs["firstInstalls"]}
    assert installs == {"database": "at-deploy", "reports": "at-deploy", "cache": "at-deploy"}
    replay = Replay(harness, report.run.resources, {
        "database-admin": empty_pg.password, "cache-admin": empty_redis.passwords[empty_redis.admin_user],
    })
    schedules = {replay.by_urn[s.property_dependencies["secretId"][0]].inputs["name"]: s
                 for s in replay.of_type(ROTATION)}
    credentials = ("replay/staging/database", "replay/staging/reports", "replay/staging/cache")
    master_versions = {v.urn for v in replay.of_type(VERSION) if replay.short_name(v) in replay.admins}
    for name in credentials:
        # The first rotation runs at once, after the master's value exists.
        assert schedules[name].inputs["rotateImmediately"] is True, name
        assert master_versions & set(schedules[name].dependencies), name

    # The servers start with only their admin users.
    with empty_pg.connect() as conn:
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'replay%'")}
    assert roles == set()
    admin = empty_redis.admin()
    try:
        assert admin.execute_command("ACL", "USERS") == [b"admin", b"default"]
    finally:
        admin.close()

    # INFO on every logger: what a Lambda function with JSON logging records by default.
    with caplog.at_level(logging.INFO):
        deployed = replay.deploy()
        for name in credentials:
            assert not harness.router.errors(deployed[name]), name

        # Right after the deploy: the application credentials in AWSCURRENT log in.
        database = harness.json("replay/staging/database")
        assert database["username"] == "replay_app" and _pg_logs_in(empty_pg, database)
        reports = harness.json("replay/staging/reports")
        assert reports["username"] == "replay_reports_clone" and _pg_logs_in(empty_pg, reports)
        cache = harness.json("replay/staging/cache")
        assert _redis_logs_in(empty_redis, cache)
        # The program's first value holds no password at all (nothing generated enters Pulumi state): the
        # non-secret parts only, which the first rotation completed with a password made and installed in AWS.
        for name in credentials:
            first = json.loads(harness.value(name, "AWSPREVIOUS"))
            assert "password" not in first and "url" not in first, name
            assert {"host", "port", "username", "masterarn"} <= set(first), name
        # The url the catalog declares is rebuilt by the function although the first version had none.
        url_rebuilt = str(database["url"]).startswith("postgresql://replay_app:")
        assert url_rebuilt

        # The first scheduled rotation, then a second one.
        for round_ in (1, 2):
            for name in credentials:
                before = harness.json(name)
                earlier = harness.json(name, "AWSPREVIOUS")
                token = harness.rotate(name, schedules_function(replay, schedules[name]))
                assert not harness.router.errors(token), (name, round_)
                after = harness.json(name)
                changed = after["password"] != before["password"]
                assert changed, (name, round_)
                if name.endswith("cache"):
                    # Redis keeps the previous password until the next rotation finishes, then drops it.
                    assert _redis_logs_in(empty_redis, after) and _redis_logs_in(empty_redis, before)
                    assert "password" not in earlier or not _redis_logs_in(empty_redis, earlier), round_
                else:
                    assert _pg_logs_in(empty_pg, after), (name, round_)
        assert harness.json("replay/staging/reports")["username"] == "replay_reports_clone"

    # The Redis user got the catalog's ACL rules, not more.
    admin = empty_redis.admin()
    try:
        rules = admin.acl_getuser("replay-app")
    finally:
        admin.close()
    assert rules["keys"] == ["~app:*"] and "on" in rules["flags"] and len(rules["passwords"]) == 2  # current, previous
    assert "-@dangerous" in rules["categories"]

    secrets = [empty_pg.password, empty_redis.passwords[empty_redis.admin_user]]
    for name in credentials:
        secrets += _values(harness, name)
    assert len(secrets) >= 2 + 3 * 3
    assert_no_secret(caplog.text, *secrets)
    assert "installed with the master credential" in caplog.text and "created role replay_app" in caplog.text


def schedules_function(replay: Replay, schedule: CollectedResource) -> str:
    (function_urn,) = schedule.property_dependencies["rotationLambdaArn"]
    return replay.functions[function_urn]


# ---------------------------------------------------------------- the master's part, step by step


def _pg_secret(pg: PostgresServer, user: str, password: str, **extra: Any) -> str:
    return json.dumps({"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                       "username": user, "password": password, **extra})


def test_single_user_master_takes_over_an_existing_role_with_an_unknown_password(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    from servers import new_password

    user = f"app_{uuid.uuid4().hex[:8]}"
    pg.create_role(user, new_password())  # a password no secret holds
    master = harness.secret(name + "-admin", json.dumps({"username": pg.superuser, "password": pg.password}))
    harness.secret(name, _pg_secret(pg, user, new_password(), masterarn=master))
    fn = harness.function("postgres-single-user", {name: {}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    assert _pg_logs_in(pg, harness.json(name))


def test_single_user_master_that_cannot_log_in_is_named(harness: Harness, pg: PostgresServer, name: str) -> None:
    from servers import new_password

    from rotation.errors import CredentialError

    wrong = new_password()
    master = harness.secret(name + "-admin", json.dumps({"username": pg.superuser, "password": wrong}))
    harness.secret(name, _pg_secret(pg, f"app_{uuid.uuid4().hex[:8]}", new_password(), masterarn=master))
    token = harness.rotate(name, harness.function("postgres-single-user", {name: {}}))
    (error,) = harness.router.errors(token)
    assert isinstance(error, CredentialError)
    assert str(error).startswith(
        f"setSecret: the master credential cannot log in to postgres {pg.host}:{pg.port}/postgres as postgres: ")
    assert_no_secret(str(error), wrong)
    assert harness.version_of(name, "AWSPENDING") is not None, "AWSCURRENT untouched: the rotation stopped"


def test_single_user_without_a_master_says_how_to_install(harness: Harness, pg: PostgresServer, name: str) -> None:
    from servers import new_password

    from rotation.errors import CredentialError

    harness.secret(name, _pg_secret(pg, f"app_{uuid.uuid4().hex[:8]}", new_password()))  # on no server
    token = harness.rotate(name, harness.function("postgres-single-user", {name: {}}))
    (error,) = harness.router.errors(token)
    assert isinstance(error, CredentialError)
    assert str(error).endswith("name a master credential (catalog rotation.master) to install it")


@pytest.mark.parametrize("acl", [">password1", "nopass", "on ~*", "", 7])
def test_redis_acl_parameter_refuses_password_and_state_rules(acl: object) -> None:
    from rotation.errors import ConfigurationError
    from rotation.handler import load_deployment

    environ = {"ROTATION_STRATEGY": "redis-acl", "ROTATION_TARGETS": json.dumps({"app/staging/cache": {"acl": acl}})}
    with pytest.raises(ConfigurationError, match="'acl' must be a string of ACL rules without password or on/off"):
        load_deployment(environ)


# ---------------------------------------------------------------- a first version without a password


def test_single_user_first_version_without_password_and_without_master_says_how_to_install(
    harness: Harness, pg: PostgresServer, name: str,
) -> None:
    """Nothing installed and nothing to install with: the same one-line advice, no KeyError."""
    from rotation.errors import CredentialError

    harness.secret(name, json.dumps({"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                                     "username": f"app_{uuid.uuid4().hex[:8]}"}))
    token = harness.rotate(name, harness.function("postgres-single-user", {name: {}}))
    (error,) = harness.router.errors(token)
    assert isinstance(error, CredentialError)
    assert str(error).endswith("name a master credential (catalog rotation.master) to install it")


@pytest.mark.parametrize("strategy", ["postgres-single-user", "postgres-alternating-users", "redis-acl"])
@pytest.mark.parametrize("password", [7, ["x"], {"a": 1}, True])
def test_a_first_version_whose_password_is_not_text_is_refused(
    harness: Harness, name: str, strategy: str, password: object,
) -> None:
    from rotation.errors import SecretFormatError

    value = {"engine": "postgres", "host": "127.0.0.1", "port": 1, "dbname": "postgres", "username": "app",
             "password": password, "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"}
    harness.secret(name, json.dumps(value))
    token = harness.rotate(name, harness.function(strategy, {name: {}}))
    (error,) = harness.router.errors(token)
    assert isinstance(error, SecretFormatError)
    assert "field 'password' must be str" in str(error)


@pytest.mark.parametrize("strategy", ["postgres-single-user", "postgres-alternating-users", "redis-acl"])
@pytest.mark.parametrize("url", ["yes", 1, None])
def test_the_url_parameter_is_a_boolean(strategy: str, url: object) -> None:
    from rotation.errors import ConfigurationError
    from rotation.handler import load_deployment

    environ = {"ROTATION_STRATEGY": strategy, "ROTATION_TARGETS": json.dumps({"app/staging/db": {"url": url}})}
    with pytest.raises(ConfigurationError, match="'url' must be true or false"):
        load_deployment(environ)
