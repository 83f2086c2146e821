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
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


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
    if not REGION.match(region):
        raise fail("aws:region", f"'{region}' is not an AWS region name")

    account_id = get("accountId")
    if account_id is None:
        raise fail(f"{PROJECT}:accountId", "required: the 12-digit AWS account id this stack deploys to")
    if not ACCOUNT_ID.match(account_id):
        raise fail(f"{PROJECT}:accountId", f"'{account_id}' is not a 12-digit AWS account id")

    environment = get("environment") or stack
    if not ENVIRONMENT.match(environment):
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
    if not isinstance(replicas, list) or not all(isinstance(r, str) and REGION.match(r) for r in replicas):
        raise fail(f"{PROJECT}:replicaRegions", "must be a list of AWS region names")
    if region in replicas:
        raise fail(f"{PROJECT}:replicaRegions", f"lists the stack's own region {region}")
    tags = structured("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise fail(f"{PROJECT}:tags", "must be a mapping of tag names to string values")

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
    )
