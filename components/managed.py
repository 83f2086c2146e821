"""AWS-managed rotation: an RDS or Aurora master credential that Secrets Manager keeps for the database
(`manage_master_user_password`), named as the admin credential of a PostgreSQL secret.

RDS owns that secret (`rds!db-<uuid>` or `rds!cluster-<uuid>`), rotates it itself (every 7 days unless
told otherwise) and stores only {"username", "password"}; the host, port and database come from the
rotated secret's own keys (rotation/strategies/postgres.py `master_connection`). The stack config gives
its ARN per catalog secret, since the catalog is shared by every stack:

    secrets-platform:managedMasters:
      database: {arn: "arn:aws:secretsmanager:<region>:<account>:secret:rds!db-<uuid>-AbCdEf",
                 kmsKeyArn: "arn:aws:kms:...",      # optional: its key, when not aws/secretsmanager
                 schedule: "rate(30 days)", window: 4h}   # optional: its own rotation; or schedule: off
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pulumi
import pulumi_aws as aws

from components import grants, iam, names, schedule
from components.catalog import ManagedExternal, ManagedMasterRef, Rotation, Secret
from components.errors import ConfigurationError
from components.recovery import ExistingRole

KEY = "secrets-platform:managedMasters"
FIELDS = ("arn", "kmsKeyArn", "schedule", "window")
MANAGED_SECRET_ARN = re.compile(
    r"^arn:aws:secretsmanager:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):secret:"
    r"(?P<name>rds!(?:db|cluster)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-[A-Za-z0-9]{6}$"
)
"""A secret RDS creates for a master password: `rds!db-<uuid>` (an instance) or `rds!cluster-<uuid>` (an
Aurora or Multi-AZ cluster), with the 6 characters Secrets Manager appends to every ARN. A full ARN: a
partial one would let a lookup match another secret."""
KMS_KEY_ARN = re.compile(
    r"^arn:aws:kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):key/"
    r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
"""A key ARN (not an alias: IAM matches kms:Decrypt against the key's ARN)."""
OFF = "off"


@dataclass(frozen=True)
class ManagedMaster:
    """The AWS-managed admin credential of one catalog secret, from the stack config."""

    secret: str
    """The catalog secret whose password it installs."""
    arn: str
    """Full ARN of the `rds!...` secret."""
    kms_key_arn: str | None = None
    """Its customer-managed key; None: the account's `aws/secretsmanager` key."""
    schedule: str | None = None
    """Its own rotation, set by this stack: a rate/cron expression, `off`, or None (RDS's default)."""
    window: str | None = None
    """The rotation window with `schedule` (e.g. `4h`)."""

    @property
    def label(self) -> str:
        """How messages name it: never a value, only the secret's name."""
        match = MANAGED_SECRET_ARN.fullmatch(self.arn)
        return f"the RDS-managed master {match.group('name') if match else self.arn}"


def managed_ref(entry: Secret) -> ManagedMasterRef | None:
    """The catalog's `master: {managed: rds}`, if this secret names one."""
    if isinstance(entry.rotation, Rotation) and isinstance(entry.rotation.master, ManagedMasterRef):
        return entry.rotation.master
    return None


def parse_managed_masters(raw: Any, file: str, account_id: str, region: str) -> dict[str, ManagedMaster]:
    """The `managedMasters` mapping of a stack config; every mistake is one line naming the file and entry."""
    if not isinstance(raw, dict):
        raise ConfigurationError(file, "must map a catalog secret to the ARN of its RDS-managed master secret",
                                 field=KEY)
    masters: dict[str, ManagedMaster] = {}
    for secret, entry in raw.items():
        where = f"{KEY}.{secret}"

        def fail(message: str, sub: str | None = None, secret: str = str(secret), where: str = where) -> NoReturn:
            raise ConfigurationError(file, message, secret=secret, field=f"{where}.{sub}" if sub else where)

        if isinstance(entry, str):
            entry = {"arn": entry}
        if not isinstance(entry, dict):
            fail(f"must be the managed secret's ARN, or a mapping with {', '.join(FIELDS)}")
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            fail(f"unknown field (allowed: {', '.join(FIELDS)})", unknown[0])
        arn = entry.get("arn")
        match = MANAGED_SECRET_ARN.fullmatch(arn) if isinstance(arn, str) and len(arn) <= 2048 else None
        if match is None:
            fail("must be the full ARN of the secret RDS manages for the master password (arn:aws:secretsmanager:"
                 "<region>:<account>:secret:rds!db-<uuid>-<6 characters>, or rds!cluster-...), as "
                 "`aws rds describe-db-instances` gives it under MasterUserSecret.SecretArn", "arn")
        if match.group("account") != account_id:
            fail(f"the secret is in account {match.group('account')}, not this stack's {account_id}", "arn")
        if match.group("region") != region:
            fail(f"the secret is in {match.group('region')}, not this stack's region {region}", "arn")
        key = entry.get("kmsKeyArn")
        if key is not None:
            key_match = KMS_KEY_ARN.fullmatch(key) if isinstance(key, str) else None
            if key_match is None:
                fail("must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias: the key "
                     "RDS encrypts the master secret with (MasterUserSecret.KmsKeyId); omit it for "
                     "aws/secretsmanager", "kmsKeyArn")
            if key_match.group("region") != region:
                fail(f"the key is in {key_match.group('region')}; Secrets Manager uses a key of the secret's own "
                     f"region {region}", "kmsKeyArn")
        rate, window = entry.get("schedule"), entry.get("window")
        if rate is False:
            rate = OFF  # YAML's `off` is a boolean
        if rate is not None and not isinstance(rate, str):
            fail("must be a rate(...) or cron(...) expression, or off", "schedule")
        if window is not None and (not isinstance(window, str) or rate in (None, OFF)):
            fail("a window needs a schedule to start from ('schedule: rate(...)' or 'cron(...)')", "window")
        if rate not in (None, OFF):
            try:
                schedule.check(None, rate, window)
            except schedule.ScheduleError as exc:
                fail(str(exc), exc.field)
        masters[str(secret)] = ManagedMaster(secret=str(secret), arn=match.group(0), kms_key_arn=key, schedule=rate,
                                             window=window)
    schedules: dict[str, tuple[str, tuple[str | None, str | None]]] = {}
    for master in masters.values():
        if master.schedule is None:
            continue
        first = schedules.setdefault(master.arn, (master.secret, (master.schedule, master.window)))
        if first[1] != (master.schedule, master.window):
            raise ConfigurationError(file, f"gives {master.label} another schedule than {first[0]} does; one "
                                     "secret has one schedule", secret=master.secret, field=f"{KEY}.{master.secret}")
    return masters


def check_managed_masters(masters: Mapping[str, ManagedMaster], secrets: Mapping[str, Secret], file: str,
                          catalog_path: str, adopted: Mapping[str, object]) -> None:
    """Every secret whose catalog master is AWS-managed has an ARN in this stack, and every ARN belongs to one."""
    # An adopted secret is imported with its rotation off (components/adopt.py); its master comes with the
    # follow-up step (`imported: true`), not before.
    waiting = {n for n, a in adopted.items() if not getattr(a, "imported", False)}
    for name, entry in secrets.items():
        if managed_ref(entry) is not None and name not in masters and name not in waiting:
            raise ConfigurationError(
                file, f"the catalog names an RDS-managed master for '{name}': give its ARN under {KEY}.{name} "
                "(MasterUserSecret.SecretArn of the database)", secret=name, field=f"{KEY}.{name}")
    for name in masters:
        found = secrets.get(name)
        if found is None or managed_ref(found) is None:
            raise ConfigurationError(
                file, f"'{name}' is not a secret of this environment whose catalog rotation names "
                f"'master: {{managed: rds}}' ({catalog_path})", secret=name, field=f"{KEY}.{name}")
        if name in waiting:
            raise ConfigurationError(
                file, "an adopted secret keeps its rotation off until the follow-up step; name its managed "
                "master then", secret=name, field=f"{KEY}.{name}")


def managed_rotations(name: str, masters: Mapping[str, ManagedMaster],
                      opts: pulumi.ResourceOptions) -> dict[str, aws.secretsmanager.SecretRotation]:
    """The managed secrets whose rotation this stack sets: rotation rules without a function (RDS rotates
    it), or rotation turned off. One per managed secret, whichever catalog secrets share it."""
    rotations: dict[str, aws.secretsmanager.SecretRotation] = {}
    done: set[str] = set()
    for secret, master in sorted(masters.items()):
        if master.schedule is None or master.arn in done:
            continue
        done.add(master.arn)
        if master.schedule == OFF:
            # terraform-provider-aws: rotation_enabled=false calls CancelRotateSecret; rules must be omitted.
            rotations[secret] = aws.secretsmanager.SecretRotation(
                f"{name}-{secret}-managed-master-schedule", secret_id=master.arn, rotation_enabled=False,
                rotate_immediately=False, opts=opts)
            continue
        rules = schedule.rotation_rules(None, master.schedule, master.window)
        rotations[secret] = aws.secretsmanager.SecretRotation(
            f"{name}-{secret}-managed-master-schedule",
            secret_id=master.arn,
            # No function: Secrets Manager rotates a service-managed secret itself.
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                schedule_expression=rules.schedule_expression, duration=rules.duration,
            ),
            # Changing the schedule must not rotate the database's master password there and then.
            rotate_immediately=False,
            opts=opts,
        )
    return rotations


# Managed external secrets: a partner's credential that Secrets Manager rotates itself ---------------------

def managed_external(secrets: Mapping[str, Secret]) -> dict[str, ManagedExternal]:
    """Catalog name -> its `rotation: {managed_external: <partner>}`."""
    return {n: e.rotation for n, e in secrets.items() if isinstance(e.rotation, ManagedExternal)}


def managed_external_role(name: str, app: str, environment: str, account_id: str, tags: Mapping[str, str],
                          opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The role Secrets Manager assumes to rotate the environment's managed external secrets (created before the
    key, whose policy names it)."""
    return aws.iam.Role(
        name,
        name=names.rotation_function(app, environment, "managed-external"),
        description=f"Assumed by Secrets Manager to rotate {app}/{environment}'s managed external secrets",
        assume_role_policy=iam.trust_policy("secretsmanager.amazonaws.com", account_id),
        tags={**tags, "access": "rotation"},
        opts=opts,
    )


def managed_external_rotations(
        name: str, role: aws.iam.Role | ExistingRole, role_name: str, scope: Callable[[list[str]], grants.Scope],
        key_arns: Sequence[pulumi.Input[str]], secrets: Mapping[str, tuple[ManagedExternal, pulumi.Input[str],
                                                                           pulumi.Resource | None]],
        tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> dict[str, aws.secretsmanager.SecretRotation]:
    """The role's policy and one SecretRotation per secret (`secrets`: name -> (rotation, ARN, its value or None)):
    the partner's metadata and the role, no function. A secret without a value waits for it."""
    typed = [(n, r.secret_type) for n, (r, _, _) in sorted(secrets.items())]

    def render(values: list[str]) -> str:
        return iam.document(grants.managed_external_statements(scope(values), typed),
                            where=f"managed external rotation policy {name}")

    policy = aws.iam.Policy(
        f"{name}-policy", name=names.rotation_policy(role_name),
        description="Secrets Manager's rotation of managed external secrets",
        policy=pulumi.Output.all(*key_arns).apply(render), tags={**tags, "access": "rotation"}, opts=opts,
    )
    attachment = aws.iam.RolePolicyAttachment(f"{name}-policy-attachment", role=role.name, policy_arn=policy.arn,
                                              opts=opts)
    rotations: dict[str, aws.secretsmanager.SecretRotation] = {}
    for secret, (rotation, arn, version) in sorted(secrets.items()):
        if version is None:
            continue  # no value yet: the partner's rotation would fail on an empty secret; it comes with the value
        rules = schedule.rotation_rules(rotation.every_days, rotation.schedule, rotation.window)
        rotations[secret] = aws.secretsmanager.SecretRotation(
            f"{name}-{secret}-schedule",
            secret_id=arn,
            external_secret_rotation_role_arn=role.arn,
            external_secret_rotation_metadatas=[
                aws.secretsmanager.SecretRotationExternalSecretRotationMetadataArgs(key=k, value=v)
                for k, v in sorted(rotation.metadata.items())] or None,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=rules.automatically_after_days,
                schedule_expression=rules.schedule_expression, duration=rules.duration,
            ),
            # The supplied value is the partner's current one: the schedule takes over from there.
            rotate_immediately=False,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[attachment, version])),
        )
    return rotations
