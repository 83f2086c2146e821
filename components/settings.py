"""The stack's settings: everything that differs between `production` and `staging`.

Read once from Pulumi config into a frozen dataclass; a missing or malformed key becomes one
`ConfigurationError` naming `Pulumi.<stack>.yaml` and the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.errors import ConfigurationError

PROJECT = "secrets-platform"
"""The Pulumi project name; also the config namespace of every key below."""

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
REGION = re.compile(r"^(?!cn-)[a-z]{2}-[a-z]+-[0-9]$")
"""A region of the standard `aws` partition (every ARN the project builds starts `arn:aws:`)."""
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>[0-9]{12}):role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """An existing IAM role that a policy of this stack is attached to."""

    arn: str
    name: str


def parse_role(value: object, account_id: str, file: str, key: str) -> Principal:
    """A role from stack config: a full role ARN in this account, or a bare role name."""
    if not isinstance(value, str):
        raise ConfigurationError(file, f"{value!r} is not a role ARN or name", field=key)
    match = ROLE_ARN.fullmatch(value)
    if match:
        if match.group("account") != account_id:
            raise ConfigurationError(
                file, f"role '{value}' is in account {match.group('account')}, not this stack's {account_id}",
                field=key,
            )
        return Principal(arn=value, name=match.group("name"))
    if value.startswith("arn:") or not ROLE_NAME.fullmatch(value):
        raise ConfigurationError(
            file, f"'{value}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>) or role name", field=key
        )
    return Principal(arn=f"arn:aws:iam::{account_id}:role/{value}", name=value)


@dataclass(frozen=True)
class Principals:
    """Who gets which access policy (`secrets-platform:principals`)."""

    runtime: tuple[Principal, ...] = ()
    """Application runtime roles: read every secret of the environment."""
    ci: tuple[Principal, ...] = ()
    """Deployment pipeline roles: manage the environment's secrets."""
    services: dict[str, tuple[Principal, ...]] = field(default_factory=dict)
    """Per consumer (the catalog's `consumers`): roles that read exactly that consumer's secrets."""


@dataclass(frozen=True)
class StackSettings:
    """Per-stack settings from `Pulumi.<stack>.yaml`."""

    stack: str
    """The Pulumi stack name."""
    environment: str
    """The environment segment of secret names (`<app>/<env>/<name>`); defaults to the stack name."""
    account_id: str
    """The AWS account the stack deploys to (12 digits); ARN patterns and key policies use it."""
    region: str
    """`aws:region`: where the secrets and the key live."""
    catalog: str = "catalog.yaml"
    """Path of the catalog file, relative to the project directory."""
    recovery_window_days: int = 30
    """Days a deleted secret stays recoverable (7-30)."""
    protect: bool = False
    """Protect secrets and the key from `pulumi destroy` and keep them if removed from the program."""
    kms_deletion_window_days: int = 30
    """Days before a scheduled KMS key deletion happens (7-30)."""
    replica_regions: tuple[str, ...] = ()
    """Regions each secret is replicated to, each replica under a key of its own region."""
    allow_missing_values: bool = False
    """Create secrets whose external value is not set yet without a value (listed as action required),
    instead of failing. The offline preview turns this on; `pulumi up` leaves it off."""
    tags: dict[str, str] = field(default_factory=dict)
    """Extra tags put on every resource (cost centre and the like)."""
    principals: Principals = field(default_factory=Principals)
    """Roles the access policies attach to."""
    ci_reads_values: bool = False
    """Whether the CI policy may call GetSecretValue (Pulumi reads a SecretVersion after writing it)."""
    rotation_subnet_ids: tuple[str, ...] = ()
    """Subnets for rotation functions that must reach a database or Redis inside a VPC."""
    rotation_security_group_ids: tuple[str, ...] = ()
    """Security groups of those functions."""

    @property
    def file(self) -> str:
        return f"Pulumi.{self.stack}.yaml"


def load_settings() -> StackSettings:
    """Read the current stack's settings through pulumi.Config."""
    stack = pulumi.get_stack()
    file = f"Pulumi.{stack}.yaml"
    config = pulumi.Config(PROJECT)
    aws_config = pulumi.Config("aws")

    def fail(key: str, message: str) -> ConfigurationError:
        return ConfigurationError(file, message, field=key)

    def get(key: str, namespace: pulumi.Config = config) -> str | None:
        return namespace.get(key)

    region = get("region", aws_config)
    if region is None:
        raise fail("aws:region", f"required; set it with `pulumi config set aws:region <region> --stack {stack}`")
    if not REGION.fullmatch(region):
        raise fail("aws:region", f"'{region}' is not an AWS region name")

    account_id = get("accountId")
    if account_id is None:
        raise fail(f"{PROJECT}:accountId", "required: the 12-digit AWS account id this stack deploys to")
    if not ACCOUNT_ID.fullmatch(account_id):
        raise fail(f"{PROJECT}:accountId", f"'{account_id}' is not a 12-digit AWS account id")

    environment = get("environment") or stack
    if not ENVIRONMENT.fullmatch(environment):
        raise fail(f"{PROJECT}:environment", f"'{environment}' must be lowercase letters, digits and '-'")

    def integer(key: str, default: int, low: int, high: int) -> int:
        raw = get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise fail(f"{PROJECT}:{key}", f"'{raw}' is not a whole number") from None
        if not low <= value <= high:
            raise fail(f"{PROJECT}:{key}", f"{value} is outside the allowed range {low}-{high}")
        return value

    def boolean(key: str, default: bool) -> bool:
        raw = get(key)
        if raw is None:
            return default
        if raw.lower() not in ("true", "false"):
            raise fail(f"{PROJECT}:{key}", f"'{raw}' is not true or false")
        return raw.lower() == "true"

    def structured(key: str, default: Any) -> Any:
        raw = get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise fail(f"{PROJECT}:{key}", "is not a YAML list or mapping") from None

    replicas = structured("replicaRegions", [])
    if not isinstance(replicas, list) or not all(isinstance(r, str) and REGION.fullmatch(r) for r in replicas):
        raise fail(f"{PROJECT}:replicaRegions", "must be a list of AWS region names")
    if region in replicas:
        raise fail(f"{PROJECT}:replicaRegions", f"lists the stack's own region {region}")
    tags = structured("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise fail(f"{PROJECT}:tags", "must be a mapping of tag names to string values")

    principals = _principals(structured("principals", {}), account_id, file)
    subnets = structured("rotationSubnetIds", [])
    groups = structured("rotationSecurityGroupIds", [])
    for key, ids, prefix in (("rotationSubnetIds", subnets, "subnet-"),
                             ("rotationSecurityGroupIds", groups, "sg-")):
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.startswith(prefix) for i in ids):
            raise fail(f"{PROJECT}:{key}", f"must be a list of ids starting with '{prefix}'")
    if bool(subnets) != bool(groups):
        raise fail(f"{PROJECT}:rotationSubnetIds",
                   "set both rotationSubnetIds and rotationSecurityGroupIds, or neither")

    return StackSettings(
        stack=stack,
        environment=environment,
        account_id=account_id,
        region=region,
        catalog=get("catalog") or "catalog.yaml",
        recovery_window_days=integer("recoveryWindowDays", 30, 7, 30),
        protect=boolean("protectSecrets", False),
        kms_deletion_window_days=integer("kmsDeletionWindowDays", 30, 7, 30),
        replica_regions=tuple(replicas),
        allow_missing_values=boolean("allowMissingValues", False),
        tags=dict(tags),
        principals=principals,
        ci_reads_values=boolean("ciReadsValues", False),
        rotation_subnet_ids=tuple(subnets),
        rotation_security_group_ids=tuple(groups),
    )


def _principals(raw: Any, account_id: str, file: str) -> Principals:
    key = f"{PROJECT}:principals"
    if not isinstance(raw, dict):
        raise ConfigurationError(file, "must be a mapping with runtime, ci and services", field=key)
    unknown = set(raw) - {"runtime", "ci", "services"}
    if unknown:
        raise ConfigurationError(file, f"unknown entry '{sorted(unknown)[0]}' (allowed: runtime, ci, services)",
                                 field=f"{key}.{sorted(unknown)[0]}")

    def roles(value: Any, where: str) -> tuple[Principal, ...]:
        items = value if isinstance(value, list) else [value]
        return tuple(parse_role(v, account_id, file, where) for v in items)

    services = raw.get("services") or {}
    if not isinstance(services, dict):
        raise ConfigurationError(file, "must map a consumer name to role ARNs or names", field=f"{key}.services")
    return Principals(
        runtime=roles(raw.get("runtime") or [], f"{key}.runtime"),
        ci=roles(raw.get("ci") or [], f"{key}.ci"),
        services={name: roles(v, f"{key}.services.{name}") for name, v in services.items()},
    )
