"""The stack's settings: everything that differs between `production` and `staging`.

Read once from Pulumi config into a frozen dataclass; a missing or malformed key becomes one
`ConfigurationError` naming `Pulumi.<stack>.yaml` and the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.adopt import Adoption, parse_adoptions
from components.catalog import YAML_MAX_BYTES
from components.errors import ConfigurationError
from components.managed import ManagedMaster, parse_managed_masters
from components.recovery import RecoveryOf, parse_recovery
from components.regions import ENABLED_BY_DEFAULT, PARTITION, known_regions, nearest_region
from components.stack_claims import check_environment_claim

PROJECT = "secrets-platform"
"""The Pulumi project name; also the config namespace of every key below."""
SETTINGS_KEYS = frozenset({
    "accountId", "catalog", "environment", "recoveryWindowDays", "protectSecrets", "kmsDeletionWindowDays",
    "replicaRegions", "allowMissingValues", "ciReadsValues", "rotationSubnetIds", "rotationSecurityGroupIds",
    "principals", "tags", "adopt", "developmentValues", "managedMasters", "recoveryOf",
})
"""The stack's own settings under `secrets-platform:` (Pulumi.yaml declares each); every other key in
that namespace must be a value the catalog names."""

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
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
    """Deployment pipeline roles: manage the environment's secrets (the CI policy is attached to them)."""
    deployers: tuple[Principal, ...] = ()
    """Other identities that run `pulumi up` themselves (an administrator's SSO role): the key policy
    lets them store values; their IAM rights are their own (no policy is attached)."""
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
    """Days a deleted secret stays recoverable (7-30), or 0: deleted at once, without recovery."""
    protect: bool = False
    """Protect secrets and the key from `pulumi destroy` and keep them if removed from the program."""
    kms_deletion_window_days: int = 30
    """Days before a scheduled KMS key deletion happens (7-30)."""
    replica_regions: tuple[str, ...] = ()
    """Regions each secret is replicated to, each replica under a key of its own region."""
    allow_missing_values: bool = False
    """Create secrets whose external value is not set yet without a value (listed as action required),
    instead of failing; nothing else. As the stack file sets it: the offline preview allows missing values
    on its own (components/values.py `offline_stand_ins`)."""
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
    adopt: dict[str, Adoption] = field(default_factory=dict)
    """Catalog secret -> the existing secret it imports (`secrets-platform:adopt`, components/adopt.py)."""
    development_values: bool | None = None
    """`secrets-platform:developmentValues`: whether secret values may start `dev-`/`dev_` (a team's own
    development values); None: only in an environment named as development (components/values.py)."""
    managed_masters: dict[str, ManagedMaster] = field(default_factory=dict)
    """Catalog secret -> its RDS-managed admin credential (`secrets-platform:managedMasters`, components/managed.py)."""
    recovery: RecoveryOf | None = None
    """`secrets-platform:recoveryOf`: this stack runs another stack's environment in one of its replica regions
    after a failover (components/recovery.py); None for an ordinary stack."""
    first_values: str = "program"
    """`secrets-platform:firstValues`: `program` (default) or `aws`, who makes the first value of a rotated token
    or HS256 key whose catalog entry does not say (components/first_values.py)."""

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

    # No setting is a secret: each ends up in ARNs, names or tags in plain text. One set with
    # --secret is refused before its value could be quoted in any message.
    for key in ("aws:region", *sorted(f"{PROJECT}:{k}" for k in SETTINGS_KEYS)):
        if pulumi.runtime.is_config_secret(key):
            raise fail(key, "is set with --secret, but it is not a secret (it appears in ARNs, names and tags in "
                       f"plain text); set it again without --secret: `pulumi config set {key} <value> --stack {stack}`")

    def get(key: str, namespace: pulumi.Config = config) -> str | None:
        return namespace.get(key)

    region = get("region", aws_config)
    if region is None:
        raise fail("aws:region", f"required; set it with `pulumi config set aws:region <region> --stack {stack}`")
    known = known_regions()
    if region not in known:
        raise fail("aws:region", f"'{region}' is not a region of the {PARTITION} partition where Secrets Manager "
                   f"runs ({nearest_region(region, known)})")

    account_id = get("accountId")
    if account_id is None:
        raise fail(f"{PROJECT}:accountId", "required: the 12-digit AWS account id this stack deploys to")
    if not ACCOUNT_ID.fullmatch(account_id):
        raise fail(f"{PROJECT}:accountId", f"'{account_id}' is not a 12-digit AWS account id")

    environment = get("environment") or stack
    if not ENVIRONMENT.fullmatch(environment):
        raise fail(f"{PROJECT}:environment", f"'{environment}' must be lowercase letters, digits and '-'")
    recovery = parse_recovery(structured_raw(get("recoveryOf"), f"{PROJECT}:recoveryOf", fail), file, account_id,
                              region, stack)
    check_environment_claim(stack, environment, account_id, file,
                            recovery_of=recovery.stack if recovery is not None else None)

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
    if not isinstance(replicas, list) or not all(isinstance(r, str) for r in replicas):
        raise fail(f"{PROJECT}:replicaRegions", "must be a list of AWS region names")
    for replica in replicas:
        if replica not in known:
            raise fail(f"{PROJECT}:replicaRegions", f"'{replica}' is not a region of the {PARTITION} partition "
                       f"where Secrets Manager runs ({nearest_region(replica, known)})")
    if region in replicas:
        raise fail(f"{PROJECT}:replicaRegions", f"lists the stack's own region {region}")
    if len(set(replicas)) != len(replicas):
        twice = next(r for r in replicas if replicas.count(r) > 1)
        raise fail(f"{PROJECT}:replicaRegions", f"lists {twice} twice")
    tags = structured("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise fail(f"{PROJECT}:tags", "must be a mapping of tag names to string values")
    _check_tags(tags, fail)

    principals = _principals(structured("principals", {}), account_id, file)
    subnets = structured("rotationSubnetIds", [])
    groups = structured("rotationSecurityGroupIds", [])
    for key, ids, prefix in (("rotationSubnetIds", subnets, "subnet"),
                             ("rotationSecurityGroupIds", groups, "sg")):
        # EC2 ids: the prefix and 8 (older) or 17 hexadecimal digits (EC2 API reference, resource IDs).
        form = re.compile(rf"^{prefix}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})$")
        if not isinstance(ids, list) or not all(isinstance(i, str) and form.fullmatch(i) for i in ids):
            raise fail(f"{PROJECT}:{key}", f"must be a list of ids like '{prefix}-0123456789abcdef0' ({prefix}- "
                       "and 8 or 17 lowercase hexadecimal digits)")
        if len(set(ids)) != len(ids):
            raise fail(f"{PROJECT}:{key}", "lists an id twice")
    if bool(subnets) != bool(groups):
        raise fail(f"{PROJECT}:rotationSubnetIds",
                   "set both rotationSubnetIds and rotationSecurityGroupIds, or neither")

    return StackSettings(
        stack=stack,
        environment=environment,
        account_id=account_id,
        region=region,
        catalog=catalog_path(get("catalog") or "catalog.yaml", fail),
        recovery_window_days=recovery_window(get("recoveryWindowDays"), fail),
        protect=boolean("protectSecrets", False),
        kms_deletion_window_days=integer("kmsDeletionWindowDays", 30, 7, 30),
        replica_regions=tuple(replicas),
        allow_missing_values=boolean("allowMissingValues", False),
        tags=dict(tags),
        principals=principals,
        ci_reads_values=boolean("ciReadsValues", False),
        rotation_subnet_ids=tuple(subnets),
        rotation_security_group_ids=tuple(groups),
        adopt=parse_adoptions(structured("adopt", {}), file, account_id, region),
        development_values=None if get("developmentValues") is None else boolean("developmentValues", False),
        managed_masters=parse_managed_masters(structured("managedMasters", {}), file, account_id, region),
        recovery=recovery,
        first_values=first_values_setting(get("firstValues"), fail),
    )


def structured_raw(raw: str | None, key: str, fail: Any) -> Any:
    """A structured config value (JSON text, as Pulumi config holds YAML), or None when unset."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise fail(key, "is not a YAML list or mapping") from None


def catalog_path(raw: str, fail: Any, project_dir: Path | None = None) -> str:
    """The catalog: a regular file inside the project directory (the program's working directory)."""
    key = f"{PROJECT}:catalog"
    project = (project_dir or Path.cwd()).resolve()
    path = Path(raw)
    if path.is_absolute() or ".." in path.parts:
        raise fail(key, f"'{raw}' must be a path inside the project directory, relative to it")
    resolved = (project / path).resolve()
    if not resolved.is_relative_to(project):
        raise fail(key, f"'{raw}' leads outside the project directory (a link)")
    if not resolved.exists():
        raise fail(key, f"'{raw}' does not exist in the project directory")
    if not resolved.is_file():
        raise fail(key, f"'{raw}' is not a regular file")
    if resolved.stat().st_size > YAML_MAX_BYTES:
        raise fail(key, f"'{raw}' is {resolved.stat().st_size:,} bytes; a catalog may have at most {YAML_MAX_BYTES:,}")
    return raw


TAG_LIMIT = 50
"""Tags per resource (Secrets Manager, KMS, IAM, Lambda: 50)."""
PLATFORM_TAGS = frozenset({
    "app", "environment", "class", "owner", "rotation", "managed-by", "rotation-strategy", "rotation-kind",
    "first-value", "rotation-reason", "access", "rotation-schedule", "missing-values",
})
"""Tags the program sets itself; a stack tag of the same name would be overwritten in silence."""
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")


def _check_tags(tags: dict[str, str], fail: Any) -> None:
    where = f"{PROJECT}:tags"
    if len(tags) > TAG_LIMIT - len(PLATFORM_TAGS):
        raise fail(where, f"{len(tags)} tags; with the platform's own {len(PLATFORM_TAGS)}, a resource may carry "
                   f"at most {TAG_LIMIT}, so at most {TAG_LIMIT - len(PLATFORM_TAGS)} here")
    for key, value in tags.items():
        if key in PLATFORM_TAGS:
            raise fail(f"{where}.{key}", "is a tag the platform sets itself; choose another name (the platform's: "
                       f"{', '.join(sorted(PLATFORM_TAGS))})")
        if key.lower().startswith("aws:"):
            raise fail(f"{where}.{key}", "tag names starting with 'aws:' are reserved for AWS")
        if not 1 <= len(key) <= 128 or not TAG_TEXT.fullmatch(key):
            raise fail(f"{where}.{key[:128]}", "a tag name has 1-128 letters, digits, spaces or _ . : / = + - @")
        if len(value) > 256 or not TAG_TEXT.fullmatch(value):
            raise fail(f"{where}.{key}", "a tag value has at most 256 letters, digits, spaces or _ . : / = + - @")


def opt_in_regions(settings: StackSettings) -> list[str]:
    """The stack's regions that an account must enable before anything can be created there."""
    return [r for r in (settings.region, *settings.replica_regions) if r not in ENABLED_BY_DEFAULT]


def _principals(raw: Any, account_id: str, file: str) -> Principals:
    key = f"{PROJECT}:principals"
    if not isinstance(raw, dict):
        raise ConfigurationError(file, "must be a mapping with runtime, ci, deployers and services", field=key)
    unknown = set(raw) - {"runtime", "ci", "deployers", "services"}
    if unknown:
        raise ConfigurationError(
            file, f"unknown entry '{sorted(unknown)[0]}' (allowed: runtime, ci, deployers, services)",
            field=f"{key}.{sorted(unknown)[0]}",
        )
    # IAM role names are unique in an account whatever their path: one name is one role, so a role
    # given twice (or under two paths) would attach one policy twice, and AWS refuses the second.
    seen: dict[str, tuple[str, str]] = {}

    def roles(value: Any, where: str) -> tuple[Principal, ...]:
        items = value if isinstance(value, list) else [value]
        parsed = tuple(parse_role(v, account_id, file, where) for v in items)
        for principal in parsed:
            first = seen.get(principal.name.lower())
            if first is not None and first[0] == where:
                raise ConfigurationError(file, f"role '{principal.name}' is listed twice", field=where)
            if first is not None and first[1].lower() != principal.arn.lower():
                raise ConfigurationError(
                    file, f"role name '{principal.name}' is given as two ARNs ({first[1]} in {first[0]} and "
                    f"{principal.arn}); IAM role names are unique in an account, whatever the path", field=where,
                )
            seen.setdefault(principal.name.lower(), (where, principal.arn))
        return parsed

    services = raw.get("services") or {}
    if not isinstance(services, dict):
        raise ConfigurationError(file, "must map a consumer name to role ARNs or names", field=f"{key}.services")
    principals = Principals(
        runtime=roles(raw.get("runtime") or [], f"{key}.runtime"),
        ci=roles(raw.get("ci") or [], f"{key}.ci"),
        deployers=roles(raw.get("deployers") or [], f"{key}.deployers"),
        services={name: roles(v, f"{key}.services.{name}") for name, v in services.items()},
    )
    # A reading role's policy denies every write to the environment's secrets, and an explicit Deny
    # wins over any Allow: the same role could never deploy them.
    readers = {p.name.lower(): where for where, group in (
        (f"{key}.runtime", principals.runtime),
        *((f"{key}.services.{n}", g) for n, g in principals.services.items()),
    ) for p in group}
    for where, group in ((f"{key}.ci", principals.ci), (f"{key}.deployers", principals.deployers)):
        for principal in group:
            if principal.name.lower() in readers:
                raise ConfigurationError(
                    file, f"role '{principal.name}' is also in {readers[principal.name.lower()]}, whose policy "
                    "denies every write to this environment's secrets, so it could not deploy them; use "
                    "separate roles for the application and for deployments", field=where,
                )
    _check_attachable(principals, file, key)
    return principals


def recovery_window(raw: str | None, fail: Any) -> int:
    """`recoveryWindowDays` (default 30): 7-30, or 0 for a throwaway stack. The provider sends 0 as DeleteSecret's
    ForceDeleteWithoutRecovery (terraform-provider-aws secret.go, resourceSecretDelete), so a `pulumi destroy`
    frees the names at once; the policy pack refuses 0 in production."""
    if raw is None:
        return 30
    try:
        days = int(raw)
    except ValueError:
        raise fail(f"{PROJECT}:recoveryWindowDays", f"'{raw[:64]}' is not a whole number") from None
    if days != 0 and not 7 <= days <= 30:
        raise fail(f"{PROJECT}:recoveryWindowDays", f"{days} is outside the allowed range 7-30 (or 0: deleted at "
                   "once, without recovery, for a throwaway stack)")
    return days


# `consumption` (how each service reads its secrets) is parsed against the catalog's consumers by
# components/consumers.py.
SETTINGS_KEYS = SETTINGS_KEYS | {"consumption"}


PROTECTED_ROLE_PATHS = ("/aws-reserved/sso.amazonaws.com/", "/aws-service-role/")
"""Paths of roles only AWS may modify: IAM Identity Center's (`AWSReservedSSO_<permission set>_<suffix>`)
and service-linked roles. IAM refuses AttachRolePolicy on them (UnmodifiableEntity)."""
PROTECTED_ROLE_PREFIX = "AWSReservedSSO_"


def _check_attachable(principals: Principals, file: str, key: str) -> None:
    """Refuse a role the stack would attach a policy to when IAM refuses the attachment: `pulumi up` would
    fail half-way. `deployers` get no policy attached (only the key policy names them), so they may be such roles."""
    groups = [(f"{key}.runtime", principals.runtime), (f"{key}.ci", principals.ci),
              *((f"{key}.services.{n}", g) for n, g in principals.services.items())]
    for where, group in groups:
        for principal in group:
            path = "/" + principal.arn.split(":role/", 1)[1]
            if principal.name.startswith(PROTECTED_ROLE_PREFIX) or any(p in path for p in PROTECTED_ROLE_PATHS):
                raise ConfigurationError(
                    file, f"role '{principal.name}' is managed by AWS (IAM Identity Center or a service-linked role) "
                    "and IAM refuses to attach a policy to it (UnmodifiableEntity); attach the stack's policy to its "
                    "permission set as a customer managed policy instead, or name it under principals.deployers",
                    field=where,
                )


# `accessAlerts` (on, off, own-topic) is read and checked by components/access_alerts.py.
SETTINGS_KEYS = SETTINGS_KEYS | {"accessAlerts"}


# `firstValues` (program, aws): who makes the first value of a rotated token or HS256 key by default.
SETTINGS_KEYS = SETTINGS_KEYS | {"firstValues"}
FIRST_VALUES = ("program", "aws")


def first_values_setting(raw: str | None, fail: Any) -> str:
    """`firstValues`: `program` (default) or `aws`. A deployed stack turns `aws` on only after one `pulumi up`
    with a release whose versions are retained on delete (docs/no-value-in-state.md)."""
    if raw is None:
        return "program"
    if raw not in FIRST_VALUES:
        raise fail(f"{PROJECT}:firstValues", f"'{raw[:64]}' is not program or aws (aws: the rotation function makes "
                   "the first value of every rotated token and HS256 key whose catalog entry does not set first_value)")
    return raw
