"""The recovery stack (`secrets-platform:recoveryOf`, components/recovery.py), offline: what it registers, what it
refuses, and how it and its primary stack keep off each other's environment.

AWS's create-time rules it relies on (each emulated against moto in tests/ops/test_recovery_sequence.py): an
alias name is unique per account and region (KMS API reference, CreateAlias: AlreadyExistsException); role and
managed policy names are unique per account, every region together (IAM API reference, CreateRole and
CreatePolicy: EntityAlreadyExists); ListSecrets reports `PrimaryRegion` on a replica (Secrets Manager API
reference, ListSecrets, SecretListEntry.PrimaryRegion).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.account import AwsAccountLookup, ListedSecret
from components.errors import ConfigurationError
from components.values import offline_stand_ins
from ops.failover import Promotion, recovery_config
from ops.stack import load_stack
from preview.mocks import AwsMocks, adopted_arns, configured_roles
from preview.runtime import ProgramRun, run_program
from preview.stackconfig import load_stack_config
from tests.conftest import REPO
from tests.servers import MotoServer, moto_server

PRIMARY, REPLICA, ACCOUNT = "ap-southeast-2", "ap-southeast-1", "123456789012"
RECOVERY = f"production-{REPLICA}"
KEY_ARN = f"arn:aws:kms:{REPLICA}:{ACCOUNT}:key/{uuid.UUID(int=7)}"
FIELD = "secrets-platform:recoveryOf"


def _recovery_file(project: Path, *, imported: bool = False, **changes: Any) -> Path:
    """The file `ops failover --out` writes for every catalog secret promoted under the replica key, with this
    region's subnets set (as its message asks), and `changes` applied to its config."""
    stack = load_stack("production", project)
    promotions = [Promotion(name=n, full_name=stack.full_name(n), status="promoted", kms_key_id=KEY_ARN,
                            arn=f"arn:aws:secretsmanager:{REPLICA}:{ACCOUNT}:secret:{stack.full_name(n)}-AbCdEf",
                            tags={"app": "filot", "environment": "production"}) for n in stack.secrets]
    source = yaml.safe_load((project / "Pulumi.production.yaml").read_text())
    config = recovery_config(stack, REPLICA, ACCOUNT, source, promotions)["config"]
    config["secrets-platform:rotationSubnetIds"] = ["subnet-0a1b2c3d4e5f60718"]
    config["secrets-platform:rotationSecurityGroupIds"] = ["sg-0a1b2c3d4e5f60718"]
    for entry in config["secrets-platform:adopt"].values():
        entry["imported"] = imported
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path = project / f"Pulumi.{RECOVERY}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "catalog.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(project: Path, stack: str, listed: tuple[ListedSecret, ...] = ()) -> ProgramRun:
    """The offline preview of a stack (values not set are stood in for); `listed`: what ListSecrets holds."""
    config = load_stack_config(project, stack)
    values = config.values
    mocks = AwsMocks(values["aws:region"], ACCOUNT, configured_roles(values.get("secrets-platform:principals")),
                     adopted_arns(values.get("secrets-platform:adopt")))
    mocks.listed = listed
    with offline_stand_ins(config.secret_keys):
        return run_program(config, project, str(REPO / "__main__.py"), mocks=mocks)


def _names(run: ProgramRun) -> set[tuple[str, str, str]]:
    """(type, scope, name) of every resource whose name AWS keeps unique: IAM per account, the rest per region."""
    out = set()
    for r in run.resources:
        name = r.inputs.get("name")
        if not r.custom or not isinstance(name, str):
            continue
        if r.type.startswith("aws:iam/"):
            out.add((r.type, "account", name))
        elif r.type in ("aws:kms/alias:Alias", "aws:lambda/function:Function", "aws:cloudwatch/logGroup:LogGroup",
                        "aws:secretsmanager/secret:Secret"):
            out.add((r.type, r.inputs.get("region") or run.stack.values["aws:region"], name))
    return out


def test_the_recovery_stack_takes_over_no_name_the_primary_stack_holds(project: Path) -> None:
    primary = _run(project, "production")
    _recovery_file(project, imported=True)
    recovery = _run(project, RECOVERY)
    clash = _names(primary) & _names(recovery)
    assert clash == set(), sorted(clash)
    kinds = {r.type for r in recovery.resources if r.custom}
    assert not kinds & {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:iam/role:Role"}, kinds
    # The primary's replica key encrypts the secrets; the primary's rotation roles run the functions here.
    secrets = [r for r in recovery.resources if r.type == "aws:secretsmanager/secret:Secret"]
    assert secrets and {r.inputs["kmsKeyId"] for r in secrets} == {KEY_ARN}
    functions = [r for r in recovery.resources if r.type == "aws:lambda/function:Function"]
    roles = {r.inputs["name"] for r in primary.resources if r.type == "aws:iam/role:Role"}
    assert functions and all(f.inputs["role"] == f"arn:aws:iam::{ACCOUNT}:role/{f.inputs['name']}"
                             and f.inputs["name"] in roles for f in functions)
    # Each function's own policy covers its logs in this region.
    policies = {r.inputs["name"]: json.loads(r.inputs["policy"]) for r in recovery.resources
                if r.type == "aws:iam/policy:Policy"}
    assert set(policies) == {f"{f.inputs['name']}-{REPLICA}-policy" for f in functions}
    for document in policies.values():
        logs = next(s for s in document["Statement"] if s.get("Sid") == "WriteOwnLogs")
        resources = [logs["Resource"]] if isinstance(logs["Resource"], str) else logs["Resource"]
        assert resources and all(f":logs:{REPLICA}:" in arn for arn in resources), logs


def test_the_first_up_imports_the_rotated_secrets_without_their_schedules(project: Path) -> None:
    _recovery_file(project)
    run = _run(project, RECOVERY)
    secrets = [r for r in run.resources if r.type == "aws:secretsmanager/secret:Secret"]
    assert secrets and all(r.import_id.startswith(f"arn:aws:secretsmanager:{REPLICA}:") for r in secrets)
    kinds = {r.type for r in run.resources if r.custom}
    assert not kinds & {"aws:secretsmanager/secretRotation:SecretRotation", "aws:lambda/function:Function",
                        "aws:secretsmanager/secretVersion:SecretVersion"}, kinds


def test_the_primary_stack_does_not_run_while_a_recovery_stack_names_it(project: Path) -> None:
    _recovery_file(project)
    with pytest.raises(ConfigurationError) as caught:
        _run(project, "production")
    assert caught.value.registered == 0
    assert f"stack '{RECOVERY}'" in str(caught.value) and "fail back first" in str(caught.value)
    # Another stack of the project is not concerned; nor is the primary once the file is gone.
    assert _run(project, "staging").resources
    (project / f"Pulumi.{RECOVERY}.yaml").unlink()
    assert _run(project, "production").resources


def test_a_recovery_stack_of_another_account_does_not_stop_the_primary(project: Path) -> None:
    _recovery_file(project, **{"secrets-platform:accountId": "210987654321"})
    assert _run(project, "production").resources


def test_a_stack_of_the_environment_without_recovery_of_is_refused_as_before(project: Path) -> None:
    _recovery_file(project, **{FIELD: None})
    with pytest.raises(ConfigurationError, match="'production' is the environment stack 'production' deploys"):
        _run(project, RECOVERY)


@pytest.mark.parametrize(("value", "field", "words"), [
    ("production", FIELD, "is not a YAML list or mapping"),
    (["production"], FIELD, "must be a mapping"),
    ({"stack": "production", "region": PRIMARY, "kmsKeyArn": KEY_ARN, "force": True}, f"{FIELD}.force",
     "unknown field"),
    ({"stack": "prod/uction", "region": PRIMARY, "kmsKeyArn": KEY_ARN}, f"{FIELD}.stack", "primary stack's name"),
    ({"stack": "x" * 101, "region": PRIMARY, "kmsKeyArn": KEY_ARN}, f"{FIELD}.stack", "primary stack's name"),
    ({"stack": RECOVERY, "region": PRIMARY, "kmsKeyArn": KEY_ARN}, f"{FIELD}.stack", "names this stack itself"),
    ({"stack": "staging", "region": PRIMARY, "kmsKeyArn": KEY_ARN}, f"{FIELD}.stack",
     "no stack of this project deploying environment 'production'"),
    ({"stack": "nosuch", "region": PRIMARY, "kmsKeyArn": KEY_ARN}, f"{FIELD}.stack", "no stack of this project"),
    ({"stack": "production", "region": "mars-north-1", "kmsKeyArn": KEY_ARN}, f"{FIELD}.region", "region"),
    ({"stack": "production", "region": REPLICA, "kmsKeyArn": KEY_ARN}, f"{FIELD}.region", "own region"),
    ({"stack": "production", "region": PRIMARY, "kmsKeyArn": "alias/filot/production/secrets"},
     f"{FIELD}.kmsKeyArn", "ARN of the primary stack's replica key"),
    ({"stack": "production", "region": PRIMARY, "kmsKeyArn": KEY_ARN + "\n"}, f"{FIELD}.kmsKeyArn", "ARN"),
    ({"stack": "production", "region": PRIMARY, "kmsKeyArn": KEY_ARN.replace(ACCOUNT, "210987654321")},
     f"{FIELD}.kmsKeyArn", "not this stack's"),
    ({"stack": "production", "region": PRIMARY, "kmsKeyArn": KEY_ARN.replace(REPLICA, PRIMARY)},
     f"{FIELD}.kmsKeyArn", f"not this stack's region {REPLICA}"),
])
def test_a_bad_recovery_of_is_one_line_naming_the_field(project: Path, value: Any, field: str, words: str) -> None:
    _recovery_file(project, **{FIELD: value})
    with pytest.raises(ConfigurationError) as caught:
        _run(project, RECOVERY)
    message = str(caught.value)
    assert caught.value.registered == 0 and len(message.splitlines()) == 1
    assert caught.value.field == field and words in message, message
    assert f"Pulumi.{RECOVERY}.yaml" in message


def test_a_stack_named_after_the_environment_cannot_be_a_recovery_stack(project: Path) -> None:
    path = _recovery_file(project)
    (project / "Pulumi.production.yaml").rename(project / "Pulumi.primary.yaml")
    data = yaml.safe_load(path.read_text())
    data["config"][FIELD]["stack"] = "primary"
    (project / "Pulumi.primary.yaml").write_text((project / "Pulumi.primary.yaml").read_text().replace(
        "config:\n", "config:\n  secrets-platform:environment: production\n", 1))
    path.unlink()
    (project / "Pulumi.production.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigurationError, match="owns it and cannot be a recovery stack"):
        _run(project, "production")


def test_the_recovery_stack_refuses_secrets_still_replicating_from_the_primary(project: Path) -> None:
    _recovery_file(project)
    listed = (ListedSecret("filot/production/redis", primary_region=PRIMARY),
              ListedSecret("filot/production/temporal"))
    with pytest.raises(ConfigurationError) as caught:
        _run(project, RECOVERY, listed)
    message = str(caught.value)
    assert caught.value.registered == 0 and caught.value.field == FIELD
    assert f"filot/production/redis in {REPLICA} still replicate from {PRIMARY}" in message
    assert f"python -m ops failover --stack production --region {REPLICA}" in message
    assert "temporal" not in message
    promoted = (ListedSecret("filot/production/redis", primary_region=REPLICA),
                ListedSecret("filot/production/temporal"))
    assert _run(project, RECOVERY, promoted).resources


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def test_the_lookup_reads_which_secrets_are_replicas(moto: MotoServer) -> None:
    """ListSecrets in the replica region: PrimaryRegion on a replica, none on a standalone secret."""
    import boto3

    def sm(region: str) -> Any:
        return boto3.client("secretsmanager", endpoint_url=moto.endpoint_url, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    app = "app" + uuid.uuid4().hex[:8]
    sm(PRIMARY).create_secret(Name=f"{app}/production/a", SecretString=uuid.uuid4().hex,
                              AddReplicaRegions=[{"Region": REPLICA}])
    sm(REPLICA).create_secret(Name=f"{app}/production/b", SecretString=uuid.uuid4().hex)
    found = AwsAccountLookup(REPLICA, access_key="testing", secret_key="testing", endpoint_url=moto.endpoint_url)
    listed = {s.name: s.primary_region for s in found.secrets_under(f"{app}/production/")}
    assert listed == {f"{app}/production/a": PRIMARY, f"{app}/production/b": None}


def test_the_pack_takes_the_recovery_key_for_the_environment_key(project: Path) -> None:
    """secret-uses-environment-key asks for a key created in the stack; a recovery stack's is the primary's replica
    key that recoveryOf names (the engine passes the stack config to the pack in PULUMI_CONFIG)."""
    from preview.cli import preview

    _recovery_file(project, imported=True)
    report = preview(RECOVERY, project, policies=True)
    report.wait()
    rules = {getattr(v, "policy", None) for v in report.violations}
    assert "secret-uses-environment-key" not in rules, rules
    assert report.run.resources


def _promoted(project: Path, keys: list[str | None]) -> list[Promotion]:
    stack = load_stack("production", project)
    return [Promotion(name=n, full_name=stack.full_name(n), status="promoted", kms_key_id=key,
                      arn=f"arn:aws:secretsmanager:{REPLICA}:{ACCOUNT}:secret:{stack.full_name(n)}-AbCdEf")
            for n, key in zip(stack.secrets, keys, strict=False)]


def test_the_recovery_file_names_the_one_key_of_the_region_and_no_encrypted_value(project: Path) -> None:
    stack = load_stack("production", project)
    source = {"config": {"aws:region": PRIMARY, "secrets-platform:accountId": ACCOUNT,
                         "secrets-platform:openaiApiKey": {"secure": "v1:" + uuid.uuid4().hex}}}
    config = recovery_config(stack, REPLICA, ACCOUNT, source, _promoted(project, [KEY_ARN, KEY_ARN]))["config"]
    assert config[FIELD] == {"stack": "production", "region": PRIMARY, "kmsKeyArn": KEY_ARN}
    assert "secrets-platform:openaiApiKey" not in config
    # Two keys, or only a key of another region, or the AWS managed key: no single key to run on, no recoveryOf
    # (the stack is then refused as a second stack of the environment, and the failover's problems say why).
    other = KEY_ARN.replace(str(uuid.UUID(int=7)), str(uuid.UUID(int=8)))
    for keys in ([KEY_ARN, other], [KEY_ARN.replace(REPLICA, PRIMARY)], [None]):
        assert FIELD not in recovery_config(stack, REPLICA, ACCOUNT, source, _promoted(project, keys))["config"]


def test_a_second_recovery_stack_of_the_environment_is_refused(project: Path) -> None:
    first = _recovery_file(project)
    second = project / "Pulumi.production-eu-west-1.yaml"
    second.write_text(first.read_text())
    with pytest.raises(ConfigurationError, match="'production' is the environment stack 'production-eu-west-1'"):
        _run(project, RECOVERY)


@pytest.mark.parametrize("hostile", ["binary", "huge", "link", "not-a-mapping"])
def test_a_hostile_stack_file_beside_the_primary_neither_stops_nor_breaks_it(project: Path, tmp_path_factory: Any,
                                                                            hostile: str) -> None:
    """Another stack file that cannot be read as one is not a recovery stack: the primary runs (its own run
    reports that file's problems)."""
    path = project / "Pulumi.other.yaml"
    recovering = yaml.safe_dump({"config": {"secrets-platform:accountId": ACCOUNT, FIELD: {"stack": "production"}}})
    if hostile == "binary":
        path.write_bytes(b"\x00\xff" * 1000)
    elif hostile == "huge":
        path.write_text(recovering + "#" * 1_000_001)
    elif hostile == "link":  # a recovery file outside the project does not count: only the project's stacks do
        outside = tmp_path_factory.mktemp("outside") / "Pulumi.other.yaml"
        outside.write_text(recovering)
        path.symlink_to(outside)
    else:
        path.write_text(yaml.safe_dump({"config": {"secrets-platform:accountId": ACCOUNT, FIELD: ["production"]}}))
    assert _run(project, "production").resources


EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/Pulumi.production.yaml")
                  if "replicaRegions" in p.read_text())


@pytest.mark.parametrize("app", EXAMPLES)
def test_every_examples_recovery_stack_takes_over_no_name_of_its_primary(app: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example with replicas, its recovery stack after the follow-up step (rotation, managed external
    rotation, sharing, consumer restarts as each example has them)."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(REPO / "examples" / app, tmp_path / "examples" / app)
    shutil.copy(REPO / "examples" / app / "Pulumi.production.yaml", tmp_path / "Pulumi.production.yaml")
    monkeypatch.chdir(tmp_path)
    primary_config = yaml.safe_load((tmp_path / "Pulumi.production.yaml").read_text())["config"]
    account = primary_config["secrets-platform:accountId"]
    replica = primary_config["secrets-platform:replicaRegions"][0]
    key = f"arn:aws:kms:{replica}:{account}:key/{uuid.UUID(int=9)}"
    stack = load_stack("production", tmp_path)
    promotions = [Promotion(name=n, full_name=stack.full_name(n), status="promoted", kms_key_id=key,
                            arn=f"arn:aws:secretsmanager:{replica}:{account}:secret:{stack.full_name(n)}-AbCdEf")
                  for n in stack.secrets]
    config = recovery_config(stack, replica, account, {"config": primary_config}, promotions)["config"]
    config["secrets-platform:rotationSubnetIds"] = ["subnet-0a1b2c3d4e5f60718"]
    config["secrets-platform:rotationSecurityGroupIds"] = ["sg-0a1b2c3d4e5f60718"]
    name = f"production-{replica}"
    # The first `pulumi up`: everything imported as it is, rotations (and managed masters) wait.
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    first = _run(tmp_path, name)
    assert {r.import_id for r in first.resources if r.type == "aws:secretsmanager/secret:Secret"} == {
        p.arn for p in promotions}
    for entry in config["secrets-platform:adopt"].values():
        entry["imported"] = True
    assert "secrets-platform:managedMasters" not in config  # RDS's secrets of the primary region's databases
    if "secrets-platform:managedMasters" in primary_config:
        # What the operator names: the managed master of the database that serves the replica region.
        primary_region = primary_config["aws:region"]
        config["secrets-platform:managedMasters"] = json.loads(json.dumps(
            primary_config["secrets-platform:managedMasters"]).replace(f":{primary_region}:", f":{replica}:"))
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    recovery = _run(tmp_path, name)
    (tmp_path / f"Pulumi.{name}.yaml").unlink()
    primary = _run(tmp_path, "production")
    assert _names(primary) & _names(recovery) == set()
    kinds = {r.type for r in recovery.resources if r.custom}
    assert not kinds & {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:iam/role:Role"}, kinds
    assert {r.inputs["kmsKeyId"] for r in recovery.resources if r.type == "aws:secretsmanager/secret:Secret"} == {key}
