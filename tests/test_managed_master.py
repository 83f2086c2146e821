"""An RDS-managed master as a PostgreSQL credential's admin (components/managed.py): what the program
declares for it (recorded resources and inputs of the offline preview) and every stack config it refuses.
The rotation itself against PostgreSQL: tests/rotation/test_rotation_managed_master.py."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.catalog import parse_catalog
from components.errors import ConfigurationError
from preview.cli import main as preview_main
from preview.model import CollectedResource, plain
from tests.conftest import MINIMAL_STACK, run_stack

ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
POLICY = "aws:iam/policy:Policy"
ACCOUNT, REGION = "210987654321", "eu-west-1"
CLUSTER = "rds!cluster-5b0f2c1e-8d34-4a7b-9e21-3c4d5e6f7a80"
ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{CLUSTER}-Xy12Ab"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
STACK = MINIMAL_STACK + """\
  secrets-platform:rotationSubnetIds: [subnet-0a1b2c3d4e5f60718]
  secrets-platform:rotationSecurityGroupIds: [sg-0a1b2c3d4e5f60718]
  secrets-platform:databaseHost: db.internal
"""


def catalog(strategy: str = "postgres-alternating-users", master: str = "{managed: rds}") -> str:
    return f"""\
app: shop
owner: platform
environments: [production, staging]
secrets:
  database:
    description: Application role
    class: critical
    rotation: {{strategy: {strategy}, every_days: 30, master: {master}}}
    consumers: [api]
    keys:
      engine: {{config: {{default: postgres}}}}
      host: {{env: PGHOST, config: {{}}}}
      port: {{env: PGPORT, config: {{default: "5432"}}, type: integer}}
      dbname: {{config: {{default: shop}}}}
      username: {{env: PGUSER, config: {{default: shop_app}}}}
      password: {{env: PGPASSWORD, generate: {{kind: password, length: 48}}}}
"""


def managed(entry: str) -> str:
    return STACK + f"  secrets-platform:managedMasters:\n    database: {entry}\n"


def _one(resources: list[CollectedResource], type_: str, name_part: str) -> CollectedResource:
    found = [r for r in resources if r.type == type_ and name_part in r.name]
    assert len(found) == 1, [r.urn for r in found]
    return found[0]


def _rotation_policy(resources: list[CollectedResource]) -> list[dict[str, Any]]:
    policy = _one(resources, POLICY, "rotate-postgres-alternating-users-policy")
    return list(json.loads(policy.inputs["policy"])["Statement"])


def test_the_managed_master_is_the_credential_s_masterarn_and_it_installs_at_deploy(
        make_project: Callable[..., Path]) -> None:
    report = run_stack("staging", make_project(catalog(), managed(f'{{arn: "{ARN}"}}')))
    resources = report.run.resources
    value = json.loads(plain(_one(resources, VERSION, "database-value").inputs["secretString"]))
    assert value["masterarn"] == ARN
    # AWS keeps the master's value: nothing to wait for, the first rotation installs the password at once.
    assert report.run.outputs["firstInstalls"][0]["status"] == "at-deploy"
    schedule = _one(resources, ROTATION, "database-schedule")
    assert schedule.inputs["rotateImmediately"] is True and schedule.inputs["rotationLambdaArn"]
    # No schedule is set on the managed secret: RDS keeps its own.
    assert [r.name for r in resources if r.type == ROTATION and "managed-master" in r.name] == []


def test_the_rotation_role_reads_exactly_the_managed_secret(make_project: Callable[..., Path]) -> None:
    statements = _rotation_policy(run_stack("staging", make_project(catalog(), managed(f'"{ARN}"'))).run.resources)
    reads = [s for s in statements if s.get("Sid") == "ReadManagedAdminCredentials"]
    assert reads == [{"Sid": "ReadManagedAdminCredentials", "Effect": "Allow",
                      "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": ARN}]
    # aws/secretsmanager: its key policy already lets the account's principals decrypt through Secrets Manager.
    assert not [s for s in statements if str(s.get("Sid", "")).startswith("DecryptManaged")]


def test_a_customer_managed_key_is_granted_for_that_secret_only(make_project: Callable[..., Path]) -> None:
    entry = f'{{arn: "{ARN}", kmsKeyArn: "{KEY}"}}'
    statements = _rotation_policy(run_stack("staging", make_project(catalog(), managed(entry))).run.resources)
    (decrypt,) = [s for s in statements if s.get("Sid") == "DecryptManagedAdminCredentials"]
    assert decrypt["Action"] in ("kms:Decrypt", ["kms:Decrypt"]) and decrypt["Resource"] == KEY
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
                                                     "kms:EncryptionContext:SecretARN": ARN}}


def test_the_stack_sets_the_managed_secret_s_schedule_without_a_function(make_project: Callable[..., Path]) -> None:
    entry = f'{{arn: "{ARN}", schedule: "cron(0 3 ? * SUN *)", window: 2h}}'
    resources = run_stack("staging", make_project(catalog(), managed(entry))).run.resources
    rotation = _one(resources, ROTATION, "database-managed-master-schedule")
    assert rotation.inputs["secretId"] == ARN
    assert "rotationLambdaArn" not in rotation.inputs  # Secrets Manager rotates a service-managed secret itself
    assert rotation.inputs["rotationRules"] == {"scheduleExpression": "cron(0 3 ? * SUN *)", "duration": "2h"}
    assert rotation.inputs["rotateImmediately"] is False


def test_the_stack_turns_the_managed_secret_s_rotation_off(make_project: Callable[..., Path]) -> None:
    resources = run_stack("staging", make_project(catalog(), managed(f'{{arn: "{ARN}", schedule: off}}'))).run.resources
    rotation = _one(resources, ROTATION, "database-managed-master-schedule")
    assert rotation.inputs["rotationEnabled"] is False and "rotationRules" not in rotation.inputs
    assert "rotationLambdaArn" not in rotation.inputs


OTHER = "arn:aws:secretsmanager:{region}:{account}:secret:{name}"
HOSTILE = [
    (f'"{ARN.replace(ACCOUNT, "123456789012")}"', "arn", "in account 123456789012, not this stack's 210987654321"),
    (f'"{ARN.replace(REGION, "eu-central-1")}"', "arn", "in eu-central-1, not this stack's region eu-west-1"),
    (f'"{OTHER.format(region=REGION, account=ACCOUNT, name="shop/staging/db-admin-AbCdEf")}"', "arn",
     "must be the full ARN of the secret RDS manages"),
    (f'"{ARN[:-7]}"', "arn", "must be the full ARN"),                      # a partial ARN: no suffix
    (f'"{ARN}*"', "arn", "must be the full ARN"),
    ('"' + "a" * 100_000 + '"', "arn", "must be the full ARN"),
    ("[1, 2]", None, "must be the managed secret's ARN, or a mapping"),
    (f'{{arn: "{ARN}", kmsKeyArn: "arn:aws:kms:{REGION}:{ACCOUNT}:alias/rds"}}', "kmsKeyArn", "not an alias"),
    (f'{{arn: "{ARN}", kmsKeyArn: "{KEY.replace(REGION, "us-east-1")}"}}', "kmsKeyArn", "secret's own region"),
    (f'{{arn: "{ARN}", rotation: off}}', "rotation", "unknown field"),
    (f'{{arn: "{ARN}", schedule: "rate(2 hours)"}}', "schedule", "rate(2 hours)"),
    (f'{{arn: "{ARN}", schedule: 7}}', "schedule", "must be a rate(...) or cron(...) expression, or off"),
    (f'{{arn: "{ARN}", window: 4h}}', "window", "a window needs a schedule"),
    (f'{{arn: "{ARN}\\u0000"}}', "arn", "must be the full ARN"),
]


@pytest.mark.parametrize(("entry", "field", "message"), HOSTILE)
def test_a_hostile_managed_master_entry_is_one_line(entry: str, field: str | None, message: str,
                                                    make_project: Callable[..., Path]) -> None:
    project = make_project(catalog(), managed(entry))
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", project)
    where = "secrets-platform:managedMasters.database"
    assert caught.value.field == (f"{where}.{field}" if field else where)
    assert message in caught.value.reason and caught.value.secret == "database"
    assert caught.value.file == "Pulumi.staging.yaml" and "\n" not in str(caught.value)
    err = io.StringIO()
    assert preview_main(["staging", "--project-dir", str(project)], out=io.StringIO(), err=err) == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


def test_a_missing_entry_and_an_entry_for_another_secret_are_refused(make_project: Callable[..., Path]) -> None:
    with pytest.raises(ConfigurationError, match=r"give its ARN under secrets-platform:managedMasters\.database"):
        run_stack("staging", make_project(catalog(), STACK))
    stray = STACK + f'  secrets-platform:managedMasters:\n    api: "{ARN}"\n'
    with pytest.raises(ConfigurationError, match="'api' is not a secret of this environment whose catalog"):
        run_stack("staging", make_project(catalog(), stray + f'    database: "{ARN}"\n'))


def test_two_schedules_for_one_managed_secret_are_refused(make_project: Callable[..., Path]) -> None:
    text = catalog().replace("environments: [production, staging]\n", "")
    text += text.split("secrets:\n", 1)[1].replace("  database:", "  reports:", 1).replace("PG", "REPORTS_PG")
    stack = (STACK + "  secrets-platform:managedMasters:\n"
             f'    database: {{arn: "{ARN}", schedule: "rate(30 days)"}}\n'
             f'    reports: {{arn: "{ARN}", schedule: off}}\n')
    with pytest.raises(ConfigurationError, match="another schedule than database does"):
        run_stack("staging", make_project(text, stack))


@pytest.mark.parametrize(("strategy", "master", "message"), [
    ("redis-acl", "{managed: rds}", "the 'redis-acl' strategy cannot use it"),
    ("postgres-alternating-users", "{managed: redshift}", "rotation.master"),
    ("postgres-alternating-users", "{managed: rds, arn: x}", "rotation.master"),
])
def test_the_catalog_refuses_a_managed_master_it_cannot_use(strategy: str, master: str, message: str) -> None:
    import yaml

    data = yaml.safe_load(catalog(strategy, master))
    if strategy == "redis-acl":
        data["secrets"]["database"]["keys"] = {
            "host": {"config": {}}, "port": {"config": {}}, "username": {"config": {}},
            "password": {"generate": {"kind": "password", "length": 48}}}
    with pytest.raises(ConfigurationError) as caught:
        parse_catalog(data, "catalog.yaml")
    assert message in str(caught.value) and caught.value.secret == "database"


def _provider_calls(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The Secrets Manager calls terraform-provider-aws makes for a SecretRotation going from `before` to `after`
    inputs (None: absent), as `internal/service/secretsmanager/secret_rotation.go` makes them: Create and Update
    call CancelRotateSecret when `rotation_enabled` is false and RotateSecret otherwise; Delete calls
    CancelRotateSecret."""
    if after is None:
        return [] if before is None else ["CancelRotateSecret"]
    if before == after:
        return []
    return ["CancelRotateSecret"] if after.get("rotationEnabled") is False else ["RotateSecret"]


def test_removing_the_schedule_turns_the_managed_rotation_off(make_project: Callable[..., Path]) -> None:
    """What the README warns of: the next `pulumi up` deletes the setting, and the provider's Delete cancels the
    managed secret's rotation instead of handing it back to RDS's default."""
    def setting(entry: str) -> dict[str, Any] | None:
        resources = run_stack("staging", make_project(catalog(), managed(entry))).run.resources
        found = [r for r in resources if r.type == ROTATION and "managed-master" in r.name]
        return found[0].inputs if found else None

    weekly = setting(f'{{arn: "{ARN}", schedule: "rate(7 days)"}}')
    assert _provider_calls(None, weekly) == ["RotateSecret"]
    assert _provider_calls(weekly, setting(f'"{ARN}"')) == ["CancelRotateSecret"]
    assert _provider_calls(weekly, setting(f'{{arn: "{ARN}", schedule: off}}')) == ["CancelRotateSecret"]
