"""A recovery stack: the environment of another stack, run in one of its replica regions after a failover.

`python -m ops failover` promotes the primary stack's replicas in a replica region and writes the recovery
stack's file with `secrets-platform:recoveryOf` (the primary stack, its region, and the KMS key the promoted
secrets are encrypted under). Under that setting the program, in the replica region:

- creates no KMS key and no alias: the key is the primary stack's replica key in this region, which already
  holds `alias/<app>/<env>/secrets` (an alias name is unique per account and region: CreateAlias answers
  AlreadyExistsException), and which the primary stack's state manages. The recovery stack names it by ARN
  and never changes it, so the primary stack finds it as it left it at failback;
- creates no IAM role and no access policy of the primary's names (IAM names are global to the account:
  CreateRole/CreatePolicy answer EntityAlreadyExists). The rotation functions run as the primary's rotation
  roles, looked up by name: the replica key's policy already lets exactly those roles store values, and
  their policies already cover the secrets and the key of every replica region. The read, CI and service
  policies of the primary stack already grant this region's secrets too. Each rotation function gets one
  policy of its own, named after its region, for its logs here;
- adopts the promoted secrets through `secrets-platform:adopt` (components/adopt.py), as `ops failover`
  writes them, and creates the rotation functions, their schedules and the rotation alerts in this region.

Two stacks never run on the same environment: the primary stack refuses to run while a stack file of the
project declares `recoveryOf` naming it (components/stack_claims.py), and the recovery stack refuses to run
while any of its secrets in this region is still a replica (ListSecrets reports `PrimaryRegion`: it was
never promoted, so the primary still writes it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from components.errors import ConfigurationError

KEY = "secrets-platform:recoveryOf"
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
"""Pulumi's grammar of stack names (as `ops` checks `--stack`)."""
KEY_ARN = re.compile(r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):key/(?P<id>[A-Za-z0-9-]{1,128})$")
"""A KMS key ARN: `arn:aws:kms:<region>:<account>:key/<key id>` (KMS developer guide, "Key ARN")."""
FIELDS = ("stack", "region", "kmsKeyArn")


@dataclass(frozen=True)
class RecoveryOf:
    """The stack whose environment this stack runs in a replica region, and what it takes over as it is."""

    stack: str
    """The primary stack (`Pulumi.<stack>.yaml` in the same project)."""
    region: str
    """The primary stack's region (down, or not written to until failback)."""
    kms_key_arn: str
    """The primary stack's replica key in this region: the promoted secrets stay encrypted under it."""


def parse_recovery(raw: Any, file: str, account_id: str, region: str, stack: str) -> RecoveryOf | None:
    """`recoveryOf` of a stack config, or None; every mistake is one line naming the file and the field."""
    if raw is None:
        return None

    def fail(message: str, sub: str | None = None) -> ConfigurationError:
        return ConfigurationError(file, message, field=f"{KEY}.{sub}" if sub else KEY)

    if not isinstance(raw, dict):
        raise fail("must be a mapping with stack, region and kmsKeyArn, as `python -m ops failover` writes it")
    unknown = sorted(str(k) for k in set(raw) - set(FIELDS))
    if unknown:
        raise fail(f"unknown field (allowed: {', '.join(FIELDS)})", unknown[0][:64])
    primary = raw.get("stack")
    if not isinstance(primary, str) or not STACK_NAME.fullmatch(primary):
        raise fail("must be the primary stack's name (1-100 letters, digits and _.-)", "stack")
    if primary == stack:
        raise fail("names this stack itself; a recovery stack runs another stack's environment", "stack")
    from components.regions import PARTITION, known_regions

    primary_region = raw.get("region")
    if not isinstance(primary_region, str) or primary_region not in known_regions():
        raise fail(f"must be the primary stack's region (a region of the {PARTITION} partition)", "region")
    if primary_region == region:
        raise fail(f"is this stack's own region {region}: a recovery stack runs in a replica region", "region")
    key = raw.get("kmsKeyArn")
    match = KEY_ARN.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise fail("must be the ARN of the primary stack's replica key in this region "
                   "(arn:aws:kms:<region>:<account>:key/<id>), as `python -m ops failover` writes it", "kmsKeyArn")
    if match.group("account") != account_id:
        raise fail(f"the key is in account {match.group('account')}, not this stack's {account_id}", "kmsKeyArn")
    if match.group("region") != region:
        # A secret can only be encrypted under a key of its own region.
        raise fail(f"the key is in {match.group('region')}, not this stack's region {region}", "kmsKeyArn")
    return RecoveryOf(stack=primary, region=primary_region, kms_key_arn=str(key))


def check_promoted(recovery: RecoveryOf, listed: Iterable[Any], file: str, region: str) -> None:
    """Refuse to run while a secret of the environment in this region is still a replica of the primary:
    the primary still writes it (a replica is read-only), and `pulumi up` here would fail on it half-way.
    `listed`: ListSecrets' entries under the environment's prefix in this region (components/account.py)."""
    replicas = sorted(s.name for s in listed if getattr(s, "primary_region", None) not in (None, region))
    if replicas:
        shown = ", ".join(replicas[:3]) + (f" and {len(replicas) - 3} more" if len(replicas) > 3 else "")
        raise ConfigurationError(
            file, f"{shown} in {region} still replicate from {recovery.region}: the primary stack "
            f"'{recovery.stack}' still manages them. Promote them first: `python -m ops failover --stack "
            f"{recovery.stack} --region {region}`", field=KEY,
        )


@dataclass(frozen=True)
class ExistingRole:
    """An IAM role another stack manages, used by name and ARN and never changed (the primary's rotation roles)."""

    name: str
    arn: str


def existing_role(name: str, file: str, primary: str) -> ExistingRole:
    """The primary stack's role `name`, looked up before the first registration (a plain invoke, as
    components/lookup.py looks up the roles config names): missing, it stops `pulumi up` with one line."""
    import pulumi_aws as aws

    try:
        found = aws.iam.get_role(name=name)
    except Exception as exc:  # noqa: BLE001 - the engine reports a failed invoke as a bare Exception
        cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            file, f"the primary stack '{primary}''s rotation role '{name}' cannot be found ({cause}); the recovery "
            "stack's functions run as it (the replica key's policy names it)", field=KEY,
        ) from None
    return ExistingRole(name=name, arn=str(found.arn))


def policy_name(function: str, region: str) -> str:
    """A recovery stack's rotation policy: the function's name and its region (the primary's is `<function>-policy`)."""
    from components import names

    return names.fit(f"{function}-{region}-policy", names.POLICY)


def waits_for_import(settings: Any, secret: str) -> bool:
    """A recovery stack's rotated secret is imported first without its schedule (RotateSecret with the import
    would rotate, or run testSecret, in the very `pulumi up` that adopts it); `imported: true` adds it."""
    adopted = settings.adopt.get(secret) if settings.recovery is not None else None
    return adopted is not None and not adopted.imported
