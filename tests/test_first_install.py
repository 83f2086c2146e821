"""A generated server credential and who installs it: the program's schedule, the preview's "Action
required" and the catalog's checks (the rotation itself: tests/rotation/test_rotation_first_install.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from components.catalog import parse_catalog
from components.errors import ConfigurationError
from preview.cli import main
from preview.model import CollectedResource
from tests.conftest import MINIMAL_STACK, run_stack

ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET = "aws:secretsmanager/secret:Secret"
POLICY = "aws:iam/policy:Policy"
STACK = MINIMAL_STACK + """\
  secrets-platform:rotationSubnetIds: [subnet-0a1b2c3d4e5f60718]
  secrets-platform:rotationSecurityGroupIds: [sg-0a1b2c3d4e5f60718]
  secrets-platform:databaseHost: db.internal
"""
ADMIN_VALUE = "  secrets-platform:dbAdminPassword:\n    secure: v1:" + "A" * 44 + "\n"


def catalog(rotation: str, source: str = "{generate: {kind: password, length: 48}}") -> str:
    return f"""\
app: shop
owner: platform
secrets:
  database:
    description: Application role
    class: critical
    rotation: {rotation}
    consumers: [api]
    keys:
      engine: {{config: {{default: postgres}}}}
      host: {{env: PGHOST, config: {{}}}}
      port: {{env: PGPORT, config: {{default: "5432"}}, type: integer}}
      dbname: {{config: {{default: shop}}}}
      username: {{env: PGUSER, config: {{default: shop_app}}}}
      password: {{env: PGPASSWORD, {source[1:-1]}}}
  db-admin:
    description: Admin role that installs the application role
    class: critical
    rotation: on-compromise
    rotation_reason: the database team rotates the admin role
    keys:
      username: {{config: {{default: postgres}}}}
      password: {{external: {{}}}}
"""


def _secret_of(resources: list[CollectedResource], resource: CollectedResource) -> str:
    by_urn = {r.urn: r for r in resources}
    (secret_urn,) = resource.property_dependencies["secretId"]
    return str(by_urn[secret_urn].inputs["name"]).rsplit("/", 1)[-1]


def _preview_text(project: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["staging", "--project-dir", str(project)], out=out, err=io.StringIO())
    return code, out.getvalue()


def test_with_a_master_the_first_rotation_installs_it_at_deploy(make_project: Callable[..., Path]) -> None:
    project = make_project(catalog("{strategy: postgres-single-user, every_days: 30, master: db-admin}"),
                           STACK + ADMIN_VALUE)
    report = run_stack("staging", project)
    resources = report.run.resources
    assert report.run.outputs["firstInstalls"] == [{
        "secret": "database", "strategy": "postgres-single-user", "master": "db-admin", "status": "at-deploy",
        "action": "none: `pulumi up` rotates it at once and the postgres-single-user function installs it with "
                  "db-admin's admin credential (`python -m ops list` shows it until that rotation succeeds)",
    }]
    (schedule,) = [r for r in resources if r.type == ROTATION]
    assert schedule.inputs["rotateImmediately"] is True
    versions = {_secret_of(resources, v): v.urn for v in resources if v.type == VERSION}
    assert {versions["database"], versions["db-admin"]} <= set(schedule.dependencies)
    # The function's role reads the admin secret; nothing else does.
    (rotation_policy,) = [p for p in resources if p.type == POLICY and p.inputs["tags"]["access"] == "rotation"]
    statements = {s["Sid"]: s for s in json.loads(rotation_policy.inputs["policy"])["Statement"]}
    assert statements["ReadAdminCredentials"]["Resource"] == \
        "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/staging/db-admin-??????"
    code, text = _preview_text(project)
    assert code == 0
    assert ("First install: database is installed on its server by the first rotation, with db-admin's admin "
            "credential") in text
    assert "nothing installs yet" not in text


def test_while_the_master_has_no_value_the_credential_waits_for_it(make_project: Callable[..., Path]) -> None:
    project = make_project(catalog("{strategy: postgres-single-user, every_days: 30, master: db-admin}"), STACK)
    report = run_stack("staging", project)
    resources = report.run.resources
    (install,) = report.run.outputs["firstInstalls"]
    assert install["status"] == "waits-for-master"
    assert {_secret_of(resources, v) for v in resources if v.type == VERSION} == set(), \
        "no value that no server knows, and nothing generated into state"
    assert not [r for r in resources if r.type == ROTATION]
    assert not [r for r in resources if r.type.startswith("random:")]
    code, text = _preview_text(project)
    assert code == 0
    assert ("Action required (1 generated server credential nothing installs yet):\n"
            "  - database (postgres-single-user): set the value of db-admin (listed above); until then this secret "
            "has no value, and the next `pulumi up` writes it and installs it with that admin credential\n") in text
    assert "pulumi config set --secret secrets-platform:dbAdminPassword --stack staging" in text


def test_without_a_master_nothing_installs_it_and_the_preview_says_so(make_project: Callable[..., Path]) -> None:
    project = make_project(catalog("{strategy: postgres-single-user, every_days: 30}"), STACK)
    report = run_stack("staging", project)
    (install,) = report.run.outputs["firstInstalls"]
    assert (install["status"], install["master"]) == ("no-master", None)
    (schedule,) = [r for r in report.run.resources if r.type == ROTATION]
    assert schedule.inputs["rotateImmediately"] is False
    code, text = _preview_text(project)
    assert code == 0
    assert ("  - database (postgres-single-user): name an admin credential in the catalog (rotation.master: a "
            "secret holding a role allowed to create roles and change passwords) so that `pulumi up` installs it, "
            "or set it on the server by hand\n") in text
    out = io.StringIO()
    assert main(["staging", "--project-dir", str(project), "--format", "json"], out=out, err=io.StringIO()) == 0
    assert [i["status"] for i in json.loads(out.getvalue())["firstInstalls"]] == ["no-master"]


def test_a_supplied_password_is_already_on_its_server(make_project: Callable[..., Path]) -> None:
    """An existing role's password, set with `pulumi config set --secret`: nothing to install."""
    project = make_project(catalog("{strategy: postgres-single-user, every_days: 30, master: db-admin}",
                                   "{external: {}}"), STACK + ADMIN_VALUE)
    report = run_stack("staging", project)
    assert report.run.outputs["firstInstalls"] == []


def test_redis_acl_rules_reach_the_function() -> None:
    from components.rotation import parameters

    parsed = parse_catalog({
        "app": "shop", "owner": "platform", "secrets": {
            "cache": {"description": "Redis user", "class": "critical",
                      "rotation": {"strategy": "redis-acl", "every_days": 30, "master": "cache-admin",
                                   "acl": "~app:* +@read"},
                      "keys": {"host": {"config": {}}, "port": {"config": {}}, "username": {"config": {}},
                               "password": {"generate": {"kind": "password", "length": 48}}}},
            "cache-admin": {"description": "Admin", "class": "configuration", "keys": {
                "username": {"config": {}}, "password": {"external": {}}}},
        }}, "catalog.yaml")
    assert parameters(parsed.secrets["cache"]) == {
        "generate": {"kind": "password", "length": 48, "alphabet": "alphanumeric"}, "acl": "~app:* +@read"}


@pytest.mark.parametrize(("rotation", "message"), [
    ({"strategy": "postgres-single-user", "every_days": 30, "acl": "~* +@all"},
     "'acl' sets the rules of a Redis user; only the 'redis-acl' strategy has one"),
    ({"strategy": "redis-acl", "every_days": 30, "master": "admin", "acl": "~* +@all >hunter2hunter2"},
     "'acl' may not set passwords or switch the user on or off: the rotation function manages those"),
    ({"strategy": "redis-acl", "every_days": 30, "master": "admin", "acl": "off ~*"},
     "'acl' may not set passwords or switch the user on or off: the rotation function manages those"),
])
def test_bad_acl_is_one_line(rotation: dict[str, object], message: str) -> None:
    keys = {"host": {"config": {}}, "port": {"config": {}}, "username": {"config": {}}, "engine": {"config": {}},
            "dbname": {"config": {}}, "password": {"generate": {"kind": "password", "length": 48}}}
    with pytest.raises(ConfigurationError) as caught:
        parse_catalog({"app": "shop", "owner": "platform", "secrets": {
            "cred": {"description": "A credential", "class": "critical", "rotation": rotation, "keys": keys},
            "admin": {"description": "Admin", "class": "configuration", "keys": {
                "username": {"config": {}}, "password": {"external": {}}}},
        }}, "catalog.yaml")
    assert (caught.value.secret, caught.value.field) == ("cred", "rotation.acl")
    assert caught.value.reason == message
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("key", ["dsn", "URL", "url2"])
def test_a_template_built_from_a_password_made_inside_aws_must_be_the_url(key: str) -> None:
    """Only `url` is rebuilt by the function: any other template of the password would stay without a value."""
    keys = {"host": {"config": {}}, "port": {"config": {}}, "username": {"config": {}},
            "password": {"generate": {"kind": "password", "length": 48}},
            key: {"template": "redis://{username}:{password}@{host}:{port}"}}
    with pytest.raises(ConfigurationError) as caught:
        parse_catalog({"app": "shop", "owner": "platform", "secrets": {
            "cache": {"description": "Redis user", "class": "critical", "keys": keys,
                      "rotation": {"strategy": "redis-acl", "every_days": 30, "master": "cache-admin"}},
            "cache-admin": {"description": "Admin", "class": "configuration", "keys": {
                "username": {"config": {}}, "password": {"external": {}}}},
        }}, "catalog.yaml")
    assert (caught.value.secret, caught.value.field) == ("cache", f"keys.{key}.template")
    assert caught.value.reason.startswith("the password is made by the redis-acl function, which rebuilds only 'url'")
    # A template of the non-secret keys only is fine: the program writes it.
    keys[key] = {"template": "{host}:{port}"}
    parse_catalog({"app": "shop", "owner": "platform", "secrets": {
        "cache": {"description": "Redis user", "class": "critical", "keys": keys,
                  "rotation": {"strategy": "redis-acl", "every_days": 30, "master": "cache-admin"}},
        "cache-admin": {"description": "Admin", "class": "configuration", "keys": {
            "username": {"config": {}}, "password": {"external": {}}}},
    }}, "catalog.yaml")
