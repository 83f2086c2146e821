"""`python -m ops failover`: a stack's replicas promoted in one region, against moto on loopback.

moto 5.2.5 has no StopReplicationToReplica, and its replicas report the primary's key. `moto_promotes_replicas`
gives it what AWS documents (API reference, StopReplicationToReplica: "Removes the link between the replica
secret and the primary secret and promotes the replica to a primary secret in the replica Region. You must call
this operation from the Region in which you want to promote the replica"; the promoted secret keeps its name,
ARN, versions and tags, under the replica's KMS key, and the primary no longer lists that region)."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_harness import Moto, Result

from ops.cli import main

PRIMARY, REPLICA = "ap-southeast-2", "ap-southeast-1"
ACCOUNT = "123456789012"
REPLICA_KEY = f"arn:aws:kms:{REPLICA}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture
def moto_promotes_replicas(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Regions StopReplicationToReplica was called in, in order."""
    from moto.secretsmanager import models, responses
    from moto.secretsmanager.exceptions import InvalidParameterException

    called: list[str] = []

    def stop_replication_to_replica(self: Any, secret_id: str) -> str:
        replica = self.describe_secret(secret_id)
        if not isinstance(replica, models.ReplicaSecret):
            raise InvalidParameterException("The secret is not a replica secret.")
        called.append(self.region_name)
        source = replica.source
        promoted = copy.copy(source)
        promoted.versions = copy.deepcopy(source.versions)
        promoted.tags = copy.deepcopy(source.tags)
        promoted.arn, promoted.region = replica.arn, replica.region
        promoted.kms_key_id = replica.config["KmsKeyId"]
        promoted.replicas = []
        source.replicas = [r for r in source.replicas if r is not replica]
        dict.pop(self.secrets, replica.arn)
        self.secrets[promoted.name] = promoted  # moto keys its own secrets by name
        return promoted.arn

    def response(self: Any) -> str:
        arn = self.backend.stop_replication_to_replica(self._get_param("SecretId"))
        return json.dumps({"ARN": arn})

    original = models.ReplicaSecret.to_dict

    def replica_to_dict(self: Any) -> dict[str, Any]:
        # AWS reports the replica's own key in its region.
        return {**original(self), "KmsKeyId": self.config["KmsKeyId"]}

    monkeypatch.setattr(models.SecretsManagerBackend, "stop_replication_to_replica", stop_replication_to_replica,
                        raising=False)
    monkeypatch.setattr(responses.SecretsManagerResponse, "stop_replication_to_replica", response, raising=False)
    monkeypatch.setattr(models.ReplicaSecret, "to_dict", replica_to_dict)
    yield called


def _deploy(moto: Moto, names: list[str], replicate: set[str]) -> dict[str, str]:
    """The stack's secrets as `pulumi up` leaves them: in the primary region, replicated where asked."""
    from moto.secretsmanager.models import secretsmanager_backends

    sm = moto.client("secretsmanager", PRIMARY)
    arns = {}
    for name in names:
        full = f"filot/production/{name}"
        kwargs: dict[str, Any] = {}
        if name in replicate:
            kwargs["AddReplicaRegions"] = [{"Region": REPLICA, "KmsKeyId": REPLICA_KEY}]
        arns[name] = sm.create_secret(
            Name=full, SecretString=moto.value(), Tags=[{"Key": "app", "Value": "filot"},
                                                        {"Key": "environment", "Value": "production"}],
            **kwargs)["ARN"]
        primary: Any = secretsmanager_backends[ACCOUNT][PRIMARY].secrets[arns[name]]
        for replica in primary.replicas:
            replica.config["KmsKeyId"] = REPLICA_KEY
    return arns


def _clear_replica_region(moto: Moto) -> None:
    """Both regions without the stack's secrets: replication removed first (moto refuses to delete a replica),
    then the primaries and the promoted secrets."""
    from moto.secretsmanager.models import ReplicaSecret, secretsmanager_backends

    primary = moto.client("secretsmanager", PRIMARY)
    for page in primary.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for entry in page["SecretList"]:
            if entry["Name"].startswith("filot/"):
                # moto's ListSecrets leaves ReplicationStatus out: remove the region whatever it says.
                primary.remove_regions_from_replication(SecretId=entry["ARN"], RemoveReplicaRegions=[REPLICA])
                primary.delete_secret(SecretId=entry["ARN"], ForceDeleteWithoutRecovery=True)
    store = secretsmanager_backends[ACCOUNT][REPLICA].secrets
    for key, secret in list(dict.items(store)):
        if secret.name.startswith("filot/"):
            if isinstance(secret, ReplicaSecret):
                dict.pop(store, key)
            else:
                replica_sm = moto.client("secretsmanager", REPLICA)
                replica_sm.delete_secret(SecretId=secret.arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def replicated(moto: Moto, moto_promotes_replicas: list[str]) -> Iterator[tuple[Moto, dict[str, str], list[str]]]:
    from ops.stack import load_stack

    names = list(load_stack("production").secrets)
    _clear_replica_region(moto)
    arns = _deploy(moto, names, replicate=set(names[1:]))
    yield moto, arns, names
    _clear_replica_region(moto)


def test_every_replica_is_promoted_in_its_region_and_adopted_by_a_recovery_stack(
        replicated: tuple[Moto, dict[str, str], list[str]], ops: Callable[..., Result],
        moto_promotes_replicas: list[str], tmp_path: Path) -> None:
    moto, arns, names = replicated
    result = ops("failover", "--stack", "production", "--region", REPLICA, "--yes", "--out", str(tmp_path))
    assert result.code == 0, result.err
    assert moto_promotes_replicas == [REPLICA] * (len(names) - 1)
    replica_sm = moto.client("secretsmanager", REPLICA)
    for name in names[1:]:
        described = replica_sm.describe_secret(SecretId=f"filot/production/{name}")
        assert "PrimaryRegion" not in described and described["KmsKeyId"] == REPLICA_KEY
    # The secret that was never replicated is named: its consumers have no value in that region.
    missing = f"Not replicated to {REPLICA} (their consumers have no value there): filot/production/{names[0]}"
    assert missing in result.out
    config = yaml.safe_load((tmp_path / f"Pulumi.production-{REPLICA}.yaml").read_text())["config"]
    assert config["aws:region"] == REPLICA and "secrets-platform:replicaRegions" not in config
    adopt = config["secrets-platform:adopt"]
    assert set(adopt) == set(names[1:])
    # The recovery stack runs on the key the promoted secrets are under (components/recovery.py).
    assert config["secrets-platform:recoveryOf"] == {"stack": "production", "region": PRIMARY, "kmsKeyArn": REPLICA_KEY}
    for name, entry in adopt.items():
        assert entry["arn"] == arns[name].replace(PRIMARY, REPLICA) and entry["kmsKeyId"] == REPLICA_KEY
        assert f"{arns[name]}\n    -> {entry['arn']}" in result.out


def test_replicas_under_two_keys_give_no_recovery_key(replicated: tuple[Moto, dict[str, str], list[str]],
                                                      ops: Callable[..., Result], tmp_path: Path) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    _, arns, names = replicated
    other = REPLICA_KEY[:-12] + "666666666666"
    for replica in secretsmanager_backends[ACCOUNT][PRIMARY].secrets[arns[names[1]]].replicas:
        replica.config["KmsKeyId"] = other
    result = ops("failover", "--stack", "production", "--region", REPLICA, "--yes", "--out", str(tmp_path))
    assert result.code == 0, result.err
    assert f"No recoveryOf written: the promoted secrets are not under one key of {REPLICA}" in result.out
    assert other in result.out and REPLICA_KEY in result.out
    config = yaml.safe_load((tmp_path / f"Pulumi.production-{REPLICA}.yaml").read_text())["config"]
    assert "secrets-platform:recoveryOf" not in config


def test_a_dry_run_changes_nothing(replicated: tuple[Moto, dict[str, str], list[str]],
                                   ops: Callable[..., Result], moto_promotes_replicas: list[str],
                                   tmp_path: Path) -> None:
    moto, _, names = replicated
    result = ops("failover", "--stack", "production", "--region", REPLICA, "--dry-run", "--out", str(tmp_path))
    assert result.code == 0 and "dry run: nothing changed" in result.out
    assert moto_promotes_replicas == [] and list(tmp_path.iterdir()) == []
    described = moto.client("secretsmanager", REPLICA).describe_secret(SecretId=f"filot/production/{names[1]}")
    assert described["PrimaryRegion"] == PRIMARY


def test_production_asks_first(replicated: tuple[Moto, dict[str, str], list[str]],
                               moto_promotes_replicas: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["failover", "--stack", "production", "--region", REPLICA], out=out, err=err, stdin=io.StringIO(""))
    assert code == 2 and "needs --yes" in err.getvalue() and moto_promotes_replicas == []


@pytest.mark.parametrize(("region", "words"), [
    (PRIMARY, "is the stack's own region"),
    ("mars-north-1", "is not a region"),
    ("eu-west-1\nx", "is not a region"),
])
def test_a_wrong_region_is_one_line(replicated: tuple[Moto, dict[str, str], list[str]], ops: Callable[..., Result],
                                    region: str, words: str, moto_promotes_replicas: list[str]) -> None:
    result = ops("failover", "--stack", "production", "--region", region, "--yes")
    assert result.code == 2 and words in result.err and len(result.err.splitlines()) == 1
    assert moto_promotes_replicas == []


def test_an_existing_recovery_file_is_never_overwritten(replicated: tuple[Moto, dict[str, str], list[str]],
                                                        ops: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / f"Pulumi.production-{REPLICA}.yaml"
    target.write_text("theirs\n")
    result = ops("failover", "--stack", "production", "--region", REPLICA, "--yes", "--out", str(tmp_path))
    assert result.code == 2 and "exists" in result.err and target.read_text() == "theirs\n"


def test_a_hundred_secrets_fail_over_in_few_calls(moto: Moto, moto_promotes_replicas: list[str],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The figure the README gives: calls and seconds for 100 replicated secrets (moto on loopback)."""
    catalog = {"app": "filot", "owner": "platform", "environments": ["production", "staging"], "secrets": {
        f"token-{i:03d}": {"description": "A token", "class": "configuration", "rotation": "manual",
                           "value": {"env": f"TOKEN_{i:03d}", "generate": {"kind": "bytes", "bytes": 32,
                                                                           "encoding": "hex"}}}
        for i in range(100)}}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "Pulumi.yaml").write_text((repo / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.production.yaml").write_text(yaml.safe_dump({"config": {
        "aws:region": PRIMARY, "secrets-platform:accountId": ACCOUNT, "secrets-platform:replicaRegions": [REPLICA]}}))
    _clear_replica_region(moto)
    _deploy(moto, list(catalog["secrets"]), set(catalog["secrets"]))
    try:
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        code = main(["failover", "--stack", "production", "--project-dir", str(tmp_path), "--region", REPLICA,
                     "--yes", "--out", str(tmp_path / "out")], out=out, err=err)
        elapsed = time.monotonic() - started
        assert code == 0, err.getvalue()
        assert len(moto_promotes_replicas) == 100
        first = out.getvalue().splitlines()[0]
        calls = int(first.split(" calls in ")[0].rsplit(" ", 1)[1])
        # One ListSecrets page per 100 secrets, then a promotion and a check per secret.
        assert calls == 1 + 100 * 2
        print(f"failover of 100 secrets: {calls} calls, {elapsed:.1f} s")
    finally:
        _clear_replica_region(moto)
