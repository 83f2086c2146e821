"""Regional failover end to end: the primary stack deployed, `ops failover`, the recovery stack's two `pulumi up`s,
a rotation in the recovery region, and the failback runbook of docs/failover.md, all against moto on loopback.

The program runs offline (the mock runtime); its Secrets Manager resources are played by the life engine
(tests/life/engine.py: the provider's create, import, update, refresh), and its keys, aliases, roles, policies,
log groups and functions are created with AWS's create-time name rules (recovery_harness.py). moto 5.2.5 lacks
StopReplicationToReplica and a replica's own key: test_failover.py's `moto_promotes_replicas` adds both as AWS
documents them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from ops_harness import Moto, Result
from recovery_harness import Account, with_subnets
from test_failover import _clear_replica_region, moto_promotes_replicas  # noqa: F401 - a fixture

from components.errors import ConfigurationError
from preview.model import CollectedResource
from preview.runtime import ProgramRun
from tests.conftest import REPO, run_stack
from tests.life.engine import ROTATION, SECRET, VERSION, Engine
from tests.servers import lambda_invokes_routed, moto_rotates_empty_secrets

PRIMARY, REPLICA = "ap-southeast-2", "ap-southeast-1"
ACCOUNT = "123456789012"
RECOVERY = f"production-{REPLICA}"
ALIAS = "alias/filot/production/secrets"
ROTATED = "filot/production/session-secret"
"""A token-rotated secret whose first value the program writes (so its replica has one to promote)."""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "catalog.yaml", "Pulumi.production.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    monkeypatch.chdir(tmp_path)  # the program reads its catalog from its working directory
    return tmp_path


@pytest.fixture
def account(moto: Moto, moto_promotes_replicas: list[str]) -> Iterator[Account]:  # noqa: F811 - the fixture
    _clear_replica_region(moto)
    made = Account(moto, ACCOUNT)
    # The roles Pulumi.production.yaml names exist before the stack (the program looks them up).
    for role in ("filot-production-app", "filot-production-deploy", "filot-production-api", "filot-production-worker"):
        moto.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        made.created.append(("aws:iam/role:Role", "global", role))
    try:
        yield made
    finally:
        made.clean()
        _clear_replica_region(moto)


def _run(stack: str, project: Path) -> ProgramRun:
    return run_stack(stack, project).run


def _secrets(run: ProgramRun, *, rotations: bool = True) -> list[CollectedResource]:
    kinds = (SECRET, VERSION, ROTATION) if rotations else (SECRET, VERSION)
    return [r for r in run.resources if r.custom and r.type in kinds]


def _deploy_primary(moto: Moto, account: Account, project: Path) -> tuple[Engine, ProgramRun]:
    """`pulumi up --stack production`: keys, aliases, roles, policies, functions, then the secrets replicated
    under the replica key (the provider's `replica` block: ReplicateSecretToRegions with its KmsKeyId)."""
    from moto.secretsmanager.models import secretsmanager_backends

    run = _run("production", project)
    account.apply(run.resources, PRIMARY)
    engine = Engine(moto.client("secretsmanager", PRIMARY), dict(account.real))
    # The schedules are left out here: the primary's rotations are not what this test is about.
    engine.up(_secrets(run, rotations=False))
    sm = moto.client("secretsmanager", PRIMARY)
    by_urn = {r.urn: r for r in run.resources}
    for entry in (e for e in engine.state.values() if e.type == SECRET):
        replicas = by_urn[entry.urn].inputs.get("replicas") or []
        for replica in replicas:
            key = account.real[replica["kmsKeyId"]]
            sm.replicate_secret_to_regions(SecretId=entry.id, AddReplicaRegions=[
                {"Region": replica["region"], "KmsKeyId": key}])
            for held in secretsmanager_backends[ACCOUNT][PRIMARY].secrets[entry.id].replicas:
                held.config["KmsKeyId"] = key  # AWS keeps the key asked for; moto records its default
    return engine, run


def _imported(path: Path) -> None:
    """The follow-up step of docs/adopt.md: `imported: true` on every adopt entry."""
    data = yaml.safe_load(path.read_text())
    for entry in data["config"]["secrets-platform:adopt"].values():
        entry["imported"] = True
    path.write_text(json.dumps(data))


def test_failover_then_recovery_stack_then_rotation_there_then_failback(
        moto: Moto, account: Account, project: Path, ops: Callable[..., Result]) -> None:
    primary, primary_run = _deploy_primary(moto, account, project)
    replica_key = account.real[next(r.inputs["replicas"][0]["kmsKeyId"] for r in primary_run.resources
                                    if r.type == SECRET and r.inputs.get("replicas"))]
    kms_b, iam = moto.client("kms", REPLICA), moto.client("iam")
    rotation_role = "filot-production-rotate-token"
    # What the recovery stack would have done before: the emulator refuses both, as AWS does.
    other_key = kms_b.create_key()["KeyMetadata"]["KeyId"]
    account.created.append(("aws:kms/key:Key", REPLICA, other_key))
    with pytest.raises(ClientError, match="AlreadyExists"):
        kms_b.create_alias(AliasName=ALIAS, TargetKeyId=other_key)
    with pytest.raises(ClientError, match="EntityAlreadyExists"):
        iam.create_role(RoleName=rotation_role, AssumeRolePolicyDocument="{}")

    # ---- the primary region is down: fail over
    result = ops("failover", "--stack", "production", "--project-dir", str(project), "--region", REPLICA, "--yes",
                 "--out", str(project))
    assert result.code == 0, result.err
    recovery_file = project / f"Pulumi.{RECOVERY}.yaml"
    written = yaml.safe_load(recovery_file.read_text())["config"]
    assert written["secrets-platform:recoveryOf"] == {"stack": "production", "region": PRIMARY,
                                                      "kmsKeyArn": replica_key}
    with_subnets(recovery_file)
    # Two stacks never run one environment: the primary refuses while the recovery stack file names it.
    with pytest.raises(ConfigurationError, match=f"stack '{RECOVERY}'.*fail back first"):
        _run("production", project)

    # ---- the recovery stack, first `pulumi up`: the promoted secrets imported as they are, nothing refused
    mark = len(account.created)  # what the recovery stack creates from here on
    first = _run(RECOVERY, project)
    made = {r.type for r in first.resources if r.custom}
    assert not made & {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:iam/role:Role"}, made
    account.apply(first.resources, REPLICA)
    recovery = Engine(moto.client("secretsmanager", REPLICA))
    steps = recovery.up(_secrets(first))
    assert steps and {s.op for s in steps} == {"import"}, steps

    # ---- the follow-up step: `imported: true` brings the rotation functions and schedules in this region
    _imported(recovery_file)
    second = _run(RECOVERY, project)
    account.apply(second.resources, REPLICA)  # no name refused: no alias, role or policy of the primary's names
    with moto_rotates_empty_secrets():  # the secrets whose first value the primary's rotation would have made
        steps = recovery.up(_secrets(second))
    # The secrets stay (a replace would be a new secret): recoveryWindowInDays alone, which only Pulumi holds.
    assert {s.changed for s in steps if f"${SECRET}::" in s.urn} == {("recoveryWindowInDays",)}, steps
    assert {s.op for s in steps if f"${ROTATION}::" in s.urn} == {"create"}
    lam = moto.client("lambda", REPLICA)
    function = lam.get_function(FunctionName="filot-production-rotate-token")["Configuration"]
    assert function["FunctionArn"].split(":")[3] == REPLICA
    assert function["Role"].endswith(f":role/{rotation_role}")  # the primary's role, named in the replica key's policy
    sm_b = moto.client("secretsmanager", REPLICA)
    described = sm_b.describe_secret(SecretId=ROTATED)
    assert described["RotationLambdaARN"] == function["FunctionArn"] and "PrimaryRegion" not in described

    # ---- a rotation during the outage runs in the recovery region, with the real handler
    from rotation import handler

    before = sm_b.get_secret_value(SecretId=ROTATED, VersionStage="AWSCURRENT")["SecretString"]

    def run(event: dict[str, Any], environ: Any) -> None:
        handler.handle(event, environ, sm_b)

    with lambda_invokes_routed(run) as router:
        # The function the schedule names (moto forgets it when RotateSecret leaves it out; AWS keeps it).
        sm_b.rotate_secret(SecretId=ROTATED, RotationLambdaARN=described["RotationLambdaARN"])
    assert [c.error for c in router.calls] == [None] * 4, router.calls
    rotated = sm_b.get_secret_value(SecretId=ROTATED, VersionStage="AWSCURRENT")["SecretString"]
    assert rotated != before
    moto.planted.add(rotated)

    # ---- failback (docs/failover.md, "Failback"), step by step
    # 1. The recovery stack's schedules and functions go (`pulumi destroy --exclude-protected`): the provider
    #    cancels each rotation; the protected secrets stay.
    for entry in [e for e in recovery.state.values() if e.type == ROTATION]:
        recovery.sm.cancel_rotate_secret(SecretId=entry.outputs["secretId"])
        del recovery.state[entry.urn]
    account.clean(since=mark)
    # 2. The current values go home: each promoted secret replicates to the primary region over the stale
    #    primary (ForceOverwriteReplicaSecret), and `ops failover` on the recovery stack promotes it there.
    sm_a = moto.client("secretsmanager", PRIMARY)
    primary_key = account.real[next(r.inputs["kmsKeyId"] for r in primary_run.resources
                                    if r.type == SECRET and r.inputs.get("kmsKeyId"))]
    adopted = {e.id for e in recovery.state.values() if e.type == SECRET}
    for arn in sorted(adopted):
        sm_b.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=[{"Region": PRIMARY, "KmsKeyId": primary_key}],
                                         ForceOverwriteReplicaSecret=True)
    result = ops("failover", "--stack", RECOVERY, "--project-dir", str(project), "--region", PRIMARY, "--yes")
    assert result.code == 0, result.err
    home = sm_a.describe_secret(SecretId=ROTATED)
    assert "PrimaryRegion" not in home
    # The ARN the primary stack's state holds: a replica's ARN is its primary's, with the region changed.
    assert home["ARN"] in {e.id for e in primary.state.values() if e.type == SECRET}
    assert sm_a.get_secret_value(SecretId=ROTATED, VersionStage="AWSCURRENT")["SecretString"] == rotated
    # 3. The promoted copies in the replica region go, or the primary cannot replicate there again: AWS
    #    reports the replica Failed ("already exists") without ForceOverwriteReplicaSecret.
    probe = sm_a.replicate_secret_to_regions(SecretId=ROTATED, AddReplicaRegions=[
        {"Region": REPLICA, "KmsKeyId": replica_key}])
    assert probe["ReplicationStatus"][0]["Status"] == "Failed"
    sm_a.remove_regions_from_replication(SecretId=ROTATED, RemoveReplicaRegions=[REPLICA])
    for arn in sorted(adopted):
        sm_b.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    recovery_file.unlink()  # and `pulumi stack rm --force production-ap-southeast-1`: its state goes, not AWS's
    # 4. The primary stack runs again: refresh and up change no value; its replicas come back under the replica
    #    key, which kept its alias throughout.
    again = _run("production", project)
    primary.refresh()
    steps = primary.up(_secrets(again, rotations=False))
    assert not [s for s in steps if s.op in ("create", "replace")], steps
    assert sm_a.get_secret_value(SecretId=ROTATED, VersionStage="AWSCURRENT")["SecretString"] == rotated
    back = sm_a.replicate_secret_to_regions(SecretId=ROTATED, AddReplicaRegions=[
        {"Region": REPLICA, "KmsKeyId": replica_key}])
    assert back["ReplicationStatus"][0]["Status"] == "InSync"
    assert kms_b.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"] == replica_key
