"""The catalog: every secret an application needs, declared once for all stacks.

The YAML file is parsed once into frozen, typed objects. Every mistake (syntax, unknown field,
duplicate secret, weak generator, bad reference) becomes one `ConfigurationError` naming the file,
the secret and the field.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components import schedule
from components.errors import ConfigurationError
from components.sharing import SharedWith, check_unique

SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
ENV_VAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
RESERVED_ENV = frozenset({
    "PATH", "HOME", "SHELL", "USER", "TZ", "BASH_ENV", "ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "PERL5LIB", "RUBYOPT", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
RESERVED_ENV_PREFIXES = ("LD_", "DYLD_", "AWS_", "ECS_", "_")
"""Variables that change how the runtime, the loader or the AWS SDK behaves (AWS_* holds credentials,
region and endpoint overrides; Lambda reserves AWS_LAMBDA_* and _HANDLER): a secret must not set them."""
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")
"""What a tag key or value may hold (Secrets Manager and KMS TagResource: letters, numbers, spaces and
_ . : / = + - @)."""
PLACEHOLDER_REF = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")

CRITICAL_MIN_BITS = 256
"""Generated critical values carry at least this much entropy unless the catalog says why not."""

SIGNING_KEY_STRATEGIES = frozenset({"jwt-hs256", "jwt-rs256"})
NEEDS_MASTER = frozenset({"postgres-alternating-users", "redis-acl"})
NEEDS_KEYS = {
    "postgres-single-user": ("engine", "host", "port", "dbname", "username", "password"),
    "postgres-alternating-users": ("engine", "host", "port", "dbname", "username", "password"),
    "redis-acl": ("host", "port", "username", "password"),
}
"""The JSON keys each database strategy reads (rotation/README.md); these strategies log in to a server."""
KEY_EXAMPLES = {
    "engine": "{config: {default: postgres}}",
    "host": "{config: {}}",
    "port": "{config: {}, type: integer}",
    "dbname": "{config: {}}",
    "username": "{config: {default: app}}",
    "password": "{generate: {kind: password, length: 32}}",
}
"""How a missing strategy key is usually declared (the error message's example)."""
FIRST_VALUE_KEYS: dict[str, tuple[str, ...] | None] = {
    "token": None,
    "jwt-hs256": ("alg", "kid", "key"),
    "jwt-rs256": ("alg", "kid", "private_key_pem", "public_key_pem", "jwks"),
}
"""Strategies that can make a secret's first value, and the JSON keys that first value holds (token:
only its one generated value). The others log in with the current credential, so one must exist."""
ROTATION_STRATEGIES = Literal[
    "token", "postgres-single-user", "postgres-alternating-users", "redis-acl", "jwt-hs256", "jwt-rs256"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# The limits below are the rotation function's (rotation/generate.py), so that a generator the
# catalog accepts is one the function can repeat.


class BytesSpec(_Model):
    """Random bytes rendered as text: `openssl rand -hex N` / `openssl rand -base64 N`."""

    kind: Literal["bytes"]
    bytes: int = Field(ge=16, le=1024)
    """Number of random bytes."""
    encoding: Literal["hex", "base64", "base64url"]
    """`base64url` is unpadded URL-safe base64, the form JWT keys take (RFC 7515)."""
    """How the bytes are written out."""

    @property
    def bits(self) -> float:
        return self.bytes * 8.0

    @property
    def length(self) -> int:
        if self.encoding == "hex":
            return self.bytes * 2
        if self.encoding == "base64url":
            return math.ceil(self.bytes * 4 / 3)
        return 4 * math.ceil(self.bytes / 3)


class PasswordSpec(_Model):
    """A random string of `length` characters drawn from an alphabet."""

    kind: Literal["password"]
    length: int = Field(ge=16, le=4096)
    alphabet: Literal["alphanumeric", "hex", "custom"] = "alphanumeric"
    chars: str | None = None
    """The character set when `alphabet` is `custom`."""
    exclude: str = ""
    """Characters removed from the alphabet (e.g. ones that break a URL or a shell)."""

    @model_validator(mode="after")
    def _alphabet(self) -> PasswordSpec:
        if self.alphabet == "custom" and not self.chars:
            raise ValueError("alphabet 'custom' needs 'chars'")
        if self.alphabet != "custom" and self.chars:
            raise ValueError("'chars' is only allowed with alphabet 'custom'")
        if len(self.characters) < 10:
            raise ValueError("the alphabet has fewer than 10 characters left after 'exclude'")
        return self

    @property
    def characters(self) -> str:
        base = {
            "alphanumeric": string.ascii_letters + string.digits,
            "hex": "0123456789abcdef",
            "custom": self.chars or "",
        }[self.alphabet]
        return "".join(sorted(set(base) - set(self.exclude)))

    @property
    def bits(self) -> float:
        return self.length * math.log2(len(self.characters))


class UuidSpec(_Model):
    """A random (version 4) UUID: 122 bits of entropy."""

    kind: Literal["uuid"]

    @property
    def bits(self) -> float:
        return 122.0


SOURCES = ("generate", "external", "config", "rotation", "template")
"""Where a value comes from; exactly one per value."""

GenerateSpec = Annotated[BytesSpec | PasswordSpec | UuidSpec, Field(discriminator="kind")]


class ExternalSource(_Model):
    """A value supplied by a person per stack with `pulumi config set --secret`."""

    config: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")
    """The stack config key; defaults to the camelCase of `<secret>-<key>`."""


class RotationSource(_Model):
    """A value the rotation function writes (a JWT's kid or key pair) in a secret whose first value it
    makes (`rotation.first_value: rotation`); the program declares the key, never its value."""


class ConfigSource(_Model):
    """A plain, non-secret value from stack config (bucket names, endpoints, account ids)."""

    config: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")
    """The stack config key; defaults to the camelCase of `<secret>-<key>`."""
    default: str | None = None
    """Used when the stack does not set the key (never for anything secret)."""


PATTERN_MAX = 512
"""Longest `pattern` accepted."""


class Value(_Model):
    """One value: generated, external, plain config, or derived from sibling values."""

    env: list[str] = Field(default_factory=list)
    """Environment variables this value feeds."""
    generate: GenerateSpec | None = None
    external: ExternalSource | None = None
    config: ConfigSource | None = None
    rotation: RotationSource | None = None
    template: str | None = None
    """Built from sibling keys, e.g. `postgresql://{username}:{password}@{host}:{port}/{dbname}`;
    substituted values are percent-encoded so that a password cannot break the URL."""
    required: bool | Annotated[list[str], Field(min_length=1)] = True
    """An optional external or config value may be missing in a stack; the key is then left out. A
    list of environments makes it required there and optional elsewhere (`required: [production]`)."""
    min_length: int | None = Field(default=None, ge=1, le=65536)
    """Shortest value a person may supply (external or config), checked at `pulumi up`."""
    differs_from: list[str] = Field(default_factory=list)
    """Other external values (`<secret>` or `<secret>.<key>`) this one must not equal, checked at
    `pulumi up` (a session secret must not be the token-signing key)."""
    type: Literal["string", "integer", "boolean"] = "string"
    """JSON type of a plain config value inside a JSON secret (a port is a number, `tls` a boolean)."""
    pattern: str | dict[str, str] | None = None
    """A regular expression a supplied value must match (`re.search`: anchor it), for every environment or
    per environment (`{production: '^sk_live_', staging: '^sk_test_'}`, so that a test key never reaches
    production); checked at `pulumi up` for external values, at every run for plain config."""

    @field_validator("env", mode="before")
    @classmethod
    def _env_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not ENV_VAR.fullmatch(name):
                raise ValueError(f"'{name}' is not an environment variable name (UPPER_SNAKE_CASE)")
            if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES):
                raise ValueError(f"'{name}' would override the runtime, the loader or the AWS SDK of the consumer; "
                                 "name the variable after the application's own setting")
        return value

    @field_validator("pattern")
    @classmethod
    def _patterns(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for expression in (value.values() if isinstance(value, dict) else () if value is None else (value,)):
            if not 1 <= len(expression) <= PATTERN_MAX:
                raise ValueError(f"a pattern has 1 to {PATTERN_MAX} characters")
            compile_pattern(expression)  # RE2: linear time; refuses what it cannot run so
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        sources = [s for s in SOURCES if getattr(self, s) is not None]
        if len(sources) != 1:
            found = ", ".join(sources) or "none"
            raise ValueError(f"exactly one of {', '.join(SOURCES)} is required (found {found})")
        if self.required is not True and self.external is None and self.config is None:
            raise ValueError("'required' other than true is only meaningful for an external or plain config value")
        if self.min_length is not None and self.external is None and self.config is None:
            raise ValueError("'min_length' applies to a supplied value (external or plain config)")
        if self.differs_from and self.external is None:
            raise ValueError("'differs_from' applies to external values (generated ones always differ)")
        if self.type != "string" and self.config is None:
            raise ValueError("'type' applies to plain config values only")
        if self.pattern is not None and self.external is None and self.config is None:
            raise ValueError("'pattern' applies to a supplied value (external or plain config)")
        if self.type != "string" and self.config is not None and self.config.default is not None:
            typed(self.config.default, self.type)
        return self

    def required_in(self, environment: str) -> bool:
        """Whether a stack of `environment` must set this value."""
        return self.required if isinstance(self.required, bool) else environment in self.required

    def pattern_in(self, environment: str) -> str | None:
        """The pattern a stack of `environment` holds this value to, if any."""
        return self.pattern.get(environment) if isinstance(self.pattern, dict) else self.pattern

    @property
    def source(self) -> str:
        for name in SOURCES:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated: one source")


def tag_value(value: str) -> str:
    """A tag value as AWS accepts it (pydantic reports the ValueError with the field's location)."""
    if not TAG_TEXT.fullmatch(value):
        raise ValueError("may hold only letters, digits, spaces and _ . : / = + - @ (it becomes a tag value)")
    return value


def typed(raw: str, kind: str) -> str | int | bool:
    """A plain config string as the JSON type the catalog declares (ValueError quotes only plain config)."""
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a whole number") from None
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"'{raw}' is not true or false")
        return raw.lower() == "true"
    return raw


class ManagedMasterRef(_Model):
    """An admin credential AWS manages for the database itself (RDS/Aurora `manage_master_user_password`):
    the stack config gives its ARN under `managedMasters` (components/managed.py)."""

    managed: Literal["rds"]
    """`rds`: the `rds!db-...`/`rds!cluster-...` secret RDS keeps and rotates for an instance or cluster."""


class Rotation(_Model):
    """How often a secret's value is replaced, and by which rotation function."""

    strategy: ROTATION_STRATEGIES
    every_days: int | None = Field(default=None, ge=1, le=1000)
    schedule: str | None = None
    """A `rate(...)` or `cron(...)` expression, instead of `every_days`."""
    window: str | None = None
    """How long the rotation may take once started, e.g. `4h`."""
    kind: Literal["credential", "signing-key"] | None = None
    """What is rotated: a signing key may rotate more slowly (policy default 365 days, 90 for a
    credential); JWT strategies are signing keys unless this says otherwise."""
    master: str | ManagedMasterRef | None = None
    """Catalog name of the secret holding the admin credential that changes this one's password
    (`postgres-alternating-users`, `redis-acl`); its ARN is stored in the secret as `masterarn`. Or
    `{managed: rds}`: an RDS-managed master whose ARN the stack config gives (PostgreSQL strategies)."""
    acl: str | None = Field(default=None, min_length=1, max_length=512)
    """`redis-acl` only: the ACL rules of the user, applied when the rotation function creates it on a
    server that does not have it yet (default `~* &* +@all -@dangerous`)."""
    bits: Literal[2048, 3072, 4096] | None = None
    """RSA key size of a `jwt-rs256` key pair (default 4096); the function makes every new pair this size."""
    first_value: Literal["program", "rotation"] = "program"
    """Who makes the first value: the program (pulumi-random; the value is kept, encrypted, in Pulumi
    state) or the rotation function, run at once by the first deploy, so that the value never enters
    Pulumi state or CI logs (token and JWT strategies)."""

    @property
    def first_value_by_rotation(self) -> bool:
        return self.first_value == "rotation"

    @model_validator(mode="after")
    def _schedule(self) -> Rotation:
        if (self.every_days is None) == (self.schedule is None):
            raise ValueError("give exactly one of every_days or schedule")
        if self.bits is not None and self.strategy != "jwt-rs256":
            raise ValueError("'bits' is the RSA key size of a jwt-rs256 key pair only")
        return self  # what AWS accepts as a schedule and window: _check_schedule, naming the field

    @property
    def tag(self) -> str:
        return f"{self.every_days}d" if self.every_days is not None else "scheduled"

    @property
    def schedule_tag(self) -> str | None:
        """A `schedule` in the characters a tag value may hold (letters, digits, spaces, `_ . : / = + - @`), for
        the policy pack to judge while the SecretRotation waits: `cron(0 4 ? * SUN *)` -> `cron:0 4 _ @ SUN @`
        (`?`, `*`, `,`, `#` never occur as `_`, `@`, `.`, `+` in a schedule, so the pack reads it back)."""
        if self.schedule is None:
            return None
        kind, _, body = self.schedule.partition("(")
        return f"{kind}:{body.removesuffix(')').translate(_TO_TAG)}"

    @property
    def signing_key(self) -> bool:
        return self.kind == "signing-key" or (self.kind is None and self.strategy in SIGNING_KEY_STRATEGIES)


_TO_TAG = str.maketrans({"?": "_", "*": "@", ",": ".", "#": "+"})


MANAGED_EXTERNAL_TYPES = {
    "salesforce": "SalesforceClientSecret", "bigid": "BigIDClientSecret", "snowflake": "SnowflakeKeyPairAuthentication",
}
"""Partners whose credential Secrets Manager rotates itself, and the secret `Type` each needs (the values
pulumi-aws 7.51.1's `Secret.type` documents; the user guide's "Managed external secrets Partners")."""
MANAGED_EXTERNAL_KEYS = {"salesforce": ("consumerKey", "consumerSecret", "baseUri", "appId", "consumerId")}
"""The JSON keys a partner's secret must hold (user guide, "Salesforce Client Secret"); others are not checked."""


class ManagedExternal(_Model):
    """A credential a partner holds, rotated by Secrets Manager itself (managed external secret): no function."""

    managed_external: Literal["salesforce", "bigid", "snowflake"]
    """The partner that holds the credential; the secret gets its Type (MANAGED_EXTERNAL_TYPES)."""
    every_days: int | None = Field(default=None, ge=1, le=1000)
    """Days between rotations (or `schedule`)."""
    schedule: str | None = None
    """A `rate(...)` or `cron(...)` expression, instead of `every_days`."""
    window: str | None = None
    """How long the rotation may take once started, e.g. `4h`."""
    metadata: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")],
                   Annotated[str, Field(min_length=1, max_length=2048)]] = Field(default_factory=dict)
    """The partner's rotation metadata (`ExternalSecretRotationMetadata`), e.g. Salesforce `apiVersion`: not
    secret (it is sent with RotateSecret and shown by DescribeSecret)."""

    @model_validator(mode="after")
    def _schedule(self) -> ManagedExternal:
        if (self.every_days is None) == (self.schedule is None):
            raise ValueError("give exactly one of every_days or schedule")
        return self

    @property
    def secret_type(self) -> str:
        return MANAGED_EXTERNAL_TYPES[self.managed_external]

    @property
    def tag(self) -> str:
        return f"{self.every_days}d" if self.every_days is not None else "scheduled"


class PublicKey(_Model):
    """The public half of a `jwt-rs256` key pair, published in a secret of its own
    (`<name>-public-key`) that verifiers read without the private key (components/public_key.py)."""

    verifiers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(default_factory=list)
    """Services that only verify tokens: they read the public secret and are denied the private one."""
    env: list[str] = Field(default_factory=list)
    """Environment variables the JWKS (`<name>-public-key:jwks`) feeds."""

    @field_validator("env", mode="before")
    @classmethod
    def _env_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return Value._env_names(value)


class Secret(_Model):
    """One Secrets Manager entry: a single value, or a JSON object of several keys."""

    description: str = Field(min_length=1, max_length=2048)
    """At most 2,048 characters (CreateSecret's Description)."""
    class_: Literal["critical", "configuration"] = Field(alias="class")
    owner: str | None = Field(default=None, min_length=1, max_length=256)
    """Team that owns the secret; defaults to the catalog's owner."""
    environments: list[str] | None = None
    """Stacks that have this secret; all when omitted."""
    rotation: Rotation | ManagedExternal | Literal["on-compromise", "manual", "application"] = "manual"
    """A rotation schedule, or the intent for a secret no function rotates; `application`: the
    application itself renews the value and writes it back (an OAuth refresh token)."""
    writers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(default_factory=list)
    """Services that write the value back (`rotation: application`): PutSecretValue on this secret only."""
    weak_reason: str | None = None
    """Why a critical generated value may carry fewer than 256 bits."""
    rotation_reason: str | None = Field(default=None, min_length=10, max_length=256)
    """Why a critical secret is not rotated by a function (`on-compromise`, `manual`); it becomes the
    `rotation-reason` tag, so it uses the characters AWS allows in tag values."""
    consumers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(default_factory=list)
    """Services (by name: lowercase, digits, '-') that read this secret at run time."""
    public_key: PublicKey | None = None
    """`jwt-rs256` only: publish the public half (JWKS) where verifiers read it without the private key."""
    rotate_every_days: int | None = Field(default=None, ge=1, le=1000)
    """`rotation: manual` only: the period a person rotates it on; `python -m ops due` reports it due
    from the current version's creation date in AWS."""
    value: Value | None = None
    keys: dict[str, Value] | None = None
    together: list[Annotated[list[str], Field(min_length=2)]] = Field(default_factory=list)
    """Groups of optional keys set both or neither (`[[account_sid, auth_token]]`): a stack that sets some of a
    group must set the rest."""
    shared_with: Annotated[list[SharedWith], AfterValidator(check_unique)] = Field(default_factory=list)
    """Roles of other accounts that may read this secret (components/sharing.py): `{account, role}`."""

    @field_validator("owner")
    @classmethod
    def _owner_tag(cls, value: str | None) -> str | None:
        return None if value is None else tag_value(value)

    @field_validator("rotation_reason")
    @classmethod
    def _reason_tag(cls, value: str | None) -> str | None:
        # Becomes the rotation-reason tag: no commas, apostrophes or semicolons.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9 _.:/=+@-]*", value):
            raise ValueError("may hold only letters, digits, spaces and _ . : / = + - @ (it becomes a tag value); "
                             "no commas or apostrophes")
        return value

    @property
    def grouped(self) -> bool:
        return self.keys is not None

    @property
    def values(self) -> dict[str, Value]:
        """Every value by key; a single-value secret has the one key `""`."""
        if self.keys is not None:
            return dict(self.keys)
        assert self.value is not None
        return {"": self.value}

    def required_in(self, key: str, environment: str) -> bool:
        """Whether a stack of `environment` always has this key: its value is required there, or it is
        a template whose every part is."""
        value = self.values[key]
        if value.template is not None:
            return all(self.values[ref].required_in(environment) for ref in PLACEHOLDER_REF.findall(value.template))
        return value.required_in(environment)

    @property
    def value_renewed(self) -> bool:
        """A rotation function or the application replaces the value after the first deploy."""
        return isinstance(self.rotation, Rotation | ManagedExternal) or self.rotation == "application"

    @property
    def needs_first_install(self) -> bool:
        """A server credential (PostgreSQL, Redis) whose password the program generates: it works only once
        installed on the server, which the first rotation does with the `master` credential."""
        password = self.values.get("password")
        return (isinstance(self.rotation, Rotation) and self.rotation.strategy in NEEDS_KEYS
                and password is not None and password.generate is not None)

    @property
    def rotation_tag(self) -> str:
        return self.rotation if isinstance(self.rotation, str) else self.rotation.tag


class CatalogFile(_Model):
    """The top level of a catalog file."""

    app: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    owner: str = Field(min_length=1, max_length=256)
    """Becomes the `owner` tag of every secret: at most 256 characters of what a tag value may hold."""
    description: str | None = None
    environments: list[str] = Field(default_factory=lambda: ["production", "staging"], min_length=1)
    """Every environment the catalog is deployed to; a secret's `environments` must name some of these."""
    services: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] | None = None
    """The application's services; when given, every `consumers` and `writers` entry must be one."""
    secrets: dict[str, Secret]

    @field_validator("owner")
    @classmethod
    def _owner_tag(cls, value: str) -> str:
        return tag_value(value)

    @field_validator("app")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        # The key alias is alias/<app>/<env>/secrets, and KMS reserves alias/aws/ (CreateAlias).
        if value == "aws":
            raise ValueError("'aws' is reserved: the key alias alias/aws/... belongs to AWS managed keys")
        return value


@dataclass(frozen=True)
class Catalog:
    """A parsed, validated catalog."""

    path: str
    app: str
    owner: str
    secrets: Mapping[str, Secret]
    environments: tuple[str, ...] = ("production", "staging")
    services: tuple[str, ...] | None = None
    """The catalog's `services:` list, when it declares one."""

    def for_environment(self, environment: str) -> dict[str, Secret]:
        """The secrets a stack of this environment has, in catalog order."""
        return {
            name: s
            for name, s in self.secrets.items()
            if s.environments is None or environment in s.environments
        }

    def owner_of(self, secret: Secret) -> str:
        return secret.owner or self.owner


def config_key(secret: str, key: str, explicit: str | None) -> str:
    """The stack config key of an external or config value: explicit, or camelCase of secret-key."""
    if explicit:
        return explicit
    words = re.split(r"[-_]", f"{secret}-{key}" if key else secret)
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:] if w)


# libyaml's parser (in PyYAML's wheels) reads a 1,000-secret catalog about five times faster than the
# pure-Python one; the pure-Python loader remains the fallback where PyYAML was built without it.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A YAML loader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not a {type(key).__name__}", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

YAML_MAX_BYTES = 16 * 1024 * 1024
"""Largest YAML file read: a catalog of 3,000 secrets grouped as JSON with consumers is about 1.2 MB
(bench/generate.py's `cdk` shape), so 16 MiB leaves room for ten times that and still refuses a file
that is no catalog before it is parsed."""
YAML_MAX_DEPTH = 32
"""Deepest nesting accepted: a catalog needs about 8 levels."""
YAML_MAX_NODES = 2_000_000
"""Most values a file may hold once its aliases are expanded (an alias bomb holds billions)."""


def _shape_problem(root: yaml.Node, max_depth: int = YAML_MAX_DEPTH) -> str | None:
    """Why a composed document is too deep, too large once aliases are expanded, or cyclic.

    Walks the node graph once (aliases are shared nodes), without recursion, memoising each node's
    expanded size and depth, so a bomb is measured, never expanded.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > YAML_MAX_NODES:
                return f"the document holds more than {YAML_MAX_NODES:,} values once its aliases are expanded"
            if depth[key] > max_depth:
                return f"the document nests deeper than {YAML_MAX_DEPTH} levels"
            continue
        if key in size:
            continue
        if key in open_nodes:
            return "an alias refers to a value that contains it"
        if len(open_nodes) > max_depth:
            return f"the document nests deeper than {YAML_MAX_DEPTH} levels"
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return None


def _located_problem(node: yaml.Node, path: tuple[str, ...] = ()) -> tuple[str, str | None] | None:
    """The first shape problem and the key (up to two levels: `config` -> `secrets-platform:x`) under
    which it sits, so that the message can name the field."""
    if isinstance(node, yaml.MappingNode) and len(path) < 2:
        for key_node, value_node in node.value:
            label = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            found = _located_problem(value_node, (*path, label))
            if found:
                return found
    problem = _shape_problem(node, YAML_MAX_DEPTH - len(path))
    return (problem, ".".join(path) or None) if problem else None


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every read or syntax error into a ConfigurationError.

    Bounded: a regular file of at most YAML_MAX_BYTES, nested at most YAML_MAX_DEPTH levels, at most
    YAML_MAX_NODES values with aliases expanded; a larger or deeper input is refused, never expanded.
    """
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise ConfigurationError(str(path), what)
        with path.open("rb") as handle:
            raw = handle.read(YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot read the file ({exc.strerror})") from exc
    if len(raw) > YAML_MAX_BYTES:
        raise ConfigurationError(str(path), f"is larger than {YAML_MAX_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        found = _located_problem(node) if node is not None else None
        if found:
            raise ConfigurationError(str(path), f"invalid YAML: {found[0]}", field=found[1])
        return loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ConfigurationError(str(path), f"invalid YAML: the document nests deeper than {YAML_MAX_DEPTH} "
                                 "levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        secret = _secret_at_line(text, mark.line) if mark else None
        raise ConfigurationError(str(path), f"invalid YAML{where}: {problem}", secret=secret) from exc
    finally:
        loader.dispose()


def _secret_at_line(text: str, line: int) -> str | None:
    """The name of the catalog secret whose block contains a line (for error messages)."""
    current = None
    in_secrets = False
    for number, raw in enumerate(text.splitlines()):
        if number > line:
            break
        if re.match(r"^secrets\s*:", raw):
            in_secrets = True
            continue
        if in_secrets:
            match = re.match(r"^  ([A-Za-z0-9_-]+)\s*:", raw)
            if match:
                current = match.group(1)
            elif raw and not raw.startswith(" ") and not raw.startswith("#"):
                in_secrets = False
                current = None
    return current


def _best_error(errors: list[Any]) -> Any:
    """The first error, or, where a union field failed every branch, the branch of the input's own type
    (`required: []` is a too-short list, not an invalid boolean)."""
    first = errors[0]
    kind = {list: "list[", dict: "dict[", str: "str", bool: "bool", int: "int"}.get(type(first.get("input")))
    same_field = [e for e in errors if tuple(e["loc"][:-1]) == tuple(first["loc"][:-1])]
    return next((e for e in same_field if kind and str(e["loc"][-1]).startswith(kind)), first)


def _locate(loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """Split a pydantic error location into (secret, field), without pydantic's own labels."""
    parts: list[str] = []
    previous = ""
    for raw in (str(p) for p in loc):
        label = any(c in raw for c in "[](),'") or raw in ("Rotation", "function-after", "bool", "str", "int")
        # pydantic inserts the discriminator tag right after 'generate'; a later 'bytes' is the field.
        tag = previous == "generate" and raw in ("bytes", "password", "uuid")
        previous = raw
        if not (label or tag):
            parts.append(raw)
    if len(parts) >= 2 and parts[0] == "secrets":
        return parts[1], ".".join(parts[2:]) or None
    return None, ".".join(parts) or None



_MODEL_PLACES = {
    "BytesSpec": "'generate'", "PasswordSpec": "'generate'", "UuidSpec": "'generate'", "ExternalSource": "'external'",
    "ConfigSource": "'config'", "Value": "a value ('value' or 'keys.<key>')", "Rotation": "'rotation'",
    "PublicKey": "'public_key'", "Secret": "a secret", "CatalogFile": "the top of the catalog",
}
"""Where the fields of each catalog model are written, for a field given in the wrong place."""


def _field_places() -> dict[str, list[str]]:
    """Every field name (or alias) of the catalog's models -> where it may be written."""
    places: dict[str, list[str]] = {}
    pending: list[type[BaseModel]] = [_Model]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for name, info in model.model_fields.items():
            place = _MODEL_PLACES.get(model.__name__, model.__name__)
            if place not in places.setdefault(info.alias or name, []):
                places[info.alias or name].append(place)
    return places


def _did_you_mean(field: str) -> str:
    places = _field_places()
    if field in places:  # a real field, in the wrong place
        return f"; '{field}' belongs to {' or '.join(sorted(places[field]))}"
    close = difflib.get_close_matches(field, sorted(places), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_catalog(data: Any, path: str) -> Catalog:
    """Validate parsed YAML into a Catalog; the first problem becomes a ConfigurationError."""
    if not isinstance(data, dict):
        raise ConfigurationError(path, "the catalog must be a mapping with 'app', 'owner' and 'secrets'")
    secrets = data.get("secrets")
    if isinstance(secrets, dict):
        for name in secrets:
            if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
                raise ConfigurationError(
                    path, f"secret name must match {SECRET_NAME.pattern} (lowercase, digits, '-')",
                    secret=str(name), field="name",
                )
    try:
        parsed = CatalogFile.model_validate(data)
    except ValidationError as exc:
        error = _best_error(exc.errors())
        secret, field = _locate(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field" + _did_you_mean(str(error["loc"][-1]))
        elif error["type"] == "missing":
            message = "required field is missing"
        elif isinstance(error.get("input"), str | int | float | bool) and f"'{error['input']}'" not in message:
            message = f"{message} (got {_short(error['input'])})"
        raise ConfigurationError(path, message, secret=secret, field=field) from None
    catalog = Catalog(path=path, app=parsed.app, owner=parsed.owner, secrets=dict(parsed.secrets),
                      environments=tuple(parsed.environments),
                      services=tuple(parsed.services) if parsed.services is not None else None)
    for name, entry in catalog.secrets.items():
        _check_secret(path, name, entry, catalog.environments)
    _check_public_keys(catalog)
    _check_env_unique(catalog)
    _check_config_keys(catalog)
    _check_masters(catalog)
    _check_managed_external(catalog)
    _check_differs_from(catalog)
    _check_services(catalog, parsed.services)
    return catalog


def _check_differs_from(catalog: Catalog) -> None:
    """Each `differs_from` names another external value of the catalog."""
    for name, secret in catalog.secrets.items():
        for key, value in secret.values.items():
            for ref in value.differs_from:
                other_name, _, other_key = ref.partition(".")
                other = catalog.secrets.get(other_name)
                target = other.values.get(other_key) if other is not None else None
                if target is None or target.external is None or (other_name, other_key) == (name, key):
                    raise ConfigurationError(
                        catalog.path, f"differs_from '{ref}' is not another external value of the catalog "
                        "(`<secret>` or `<secret>.<key>`)", secret=name,
                        field=f"{'keys.' + key if key else 'value'}.differs_from",
                    )
                assert other is not None
                # Where the other secret is absent the check has nothing to compare with: it would pass in silence.
                mine = secret.environments if secret.environments is not None else catalog.environments
                absent = [e for e in mine if other.environments is not None and e not in other.environments]
                if absent:
                    raise ConfigurationError(
                        catalog.path, f"differs_from '{ref}' names a secret that {', '.join(absent)} does not have "
                        f"(its environments: {', '.join(other.environments or ())}), where this one is; limit this "
                        "secret to the same environments, or drop the constraint", secret=name,
                        field=f"{'keys.' + key if key else 'value'}.differs_from",
                    )


def _check_services(catalog: Catalog, services: list[str] | None) -> None:
    """With a `services:` list, every consumer and writer must be one of them (a typo would create a
    policy attached to nobody)."""
    if services is None:
        return
    for name, secret in catalog.secrets.items():
        verifiers = secret.public_key.verifiers if secret.public_key is not None else []
        for field, named in (("consumers", secret.consumers), ("writers", secret.writers),
                             ("public_key.verifiers", verifiers)):
            for service in named:
                if service not in services:
                    close = difflib.get_close_matches(service, services, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"services: {', '.join(services)}"
                    raise ConfigurationError(catalog.path, f"'{service}' is not in the catalog's services ({hint})",
                                             secret=name, field=field)


def _check_config_keys(catalog: Catalog) -> None:
    """Two values may not read the same stack config key: one `pulumi config set` would feed both."""
    seen: dict[str, tuple[str, bool]] = {}
    for name, secret in catalog.secrets.items():
        for key, value in secret.values.items():
            source = value.external or value.config
            if source is None:
                continue
            ckey = config_key(name, key, source.config)
            where = f"{name}:{key}" if key else name
            # Plain values may share a key on purpose (a host two secrets use), named explicitly.
            shareable = value.config is not None and source.config is not None
            if ckey in seen and not (shareable and seen[ckey][1]):
                raise ConfigurationError(
                    catalog.path, f"config key '{ckey}' is already read by '{seen[ckey][0]}'; give one of them an "
                    "explicit 'config' key", secret=name, field=f"keys.{key}" if key else "value",
                )
            seen.setdefault(ckey, (where, shareable))


def _check_masters(catalog: Catalog) -> None:
    for name, entry in catalog.secrets.items():
        if not isinstance(entry.rotation, Rotation) or entry.rotation.master is None:
            continue
        if isinstance(entry.rotation.master, ManagedMasterRef):
            _check_managed_master(catalog.path, name, entry.rotation)
            continue
        master = catalog.secrets.get(entry.rotation.master)
        if master is None or entry.rotation.master == name:
            raise ConfigurationError(catalog.path, f"master '{entry.rotation.master}' is not another secret of the "
                                     "catalog", secret=name, field="rotation.master")
        mine = set(entry.environments) if entry.environments is not None else None
        theirs = set(master.environments) if master.environments is not None else None
        if theirs is not None and (mine is None or not mine <= theirs):
            raise ConfigurationError(catalog.path, f"master '{entry.rotation.master}' is not in every environment "
                                     "this secret is in", secret=name, field="rotation.master")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_shape(path: str, name: str, secret: Secret) -> None:
    if (secret.value is None) == (secret.keys is None):
        raise ConfigurationError(path, "give exactly one of 'value' (a single value) or 'keys' (a JSON secret)",
                                 secret=name, field="value" if secret.value is not None else "keys")
    if secret.keys is not None:
        if not secret.keys:
            raise ConfigurationError(path, "'keys' is empty", secret=name, field="keys")
        for key in secret.keys:
            if not KEY_NAME.fullmatch(key):
                raise ConfigurationError(path, f"key name must match {KEY_NAME.pattern}", secret=name,
                                         field=f"keys.{key}")


def _check_secret(path: str, name: str, secret: Secret, environments: tuple[str, ...]) -> None:
    _check_shape(path, name, secret)
    for key, value in secret.values.items():
        for env in value.pattern if isinstance(value.pattern, dict) else ():
            if env not in environments:
                raise ConfigurationError(
                    path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                    secret=name, field=f"{'keys.' + key if key else 'value'}.pattern",
                )
    for env in secret.environments or ():
        if env not in environments:
            raise ConfigurationError(
                path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                secret=name, field="environments",
            )
    values = secret.values
    for key, value in values.items():
        field = f"keys.{key}" if key else "value"
        if value.generate is not None and secret.class_ == "critical" and not secret.weak_reason:
            bits = value.generate.bits
            if bits < CRITICAL_MIN_BITS:
                raise ConfigurationError(
                    path,
                    f"a critical value needs at least {CRITICAL_MIN_BITS} bits of entropy; this generator "
                    f"gives {bits:.0f}. Make it longer, or set 'weak_reason' to say why not",
                    secret=name, field=f"{field}.generate",
                )
        if value.config is not None and secret.class_ == "critical" and not secret.grouped:
            # A critical secret made of one plain value would be a secret kept in plain config.
            raise ConfigurationError(
                path, "a critical single-value secret cannot come from plain config; use 'external' "
                "(pulumi config set --secret)", secret=name, field=f"{field}.config",
            )
        if value.template is not None:
            if not secret.grouped:
                raise ConfigurationError(path, "a template needs sibling keys; use 'keys'", secret=name,
                                         field=f"{field}.template")
            for ref in PLACEHOLDER_REF.findall(value.template):
                if ref not in values or ref == key:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is not another key of this secret",
                        secret=name, field=f"{field}.template",
                    )
                if values[ref].template is not None:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is itself a template", secret=name,
                        field=f"{field}.template",
                    )
    for key, value in values.items():
        field = f"keys.{key}" if key else "value"
        if isinstance(value.required, list):
            for env in value.required:
                if env not in environments:
                    raise ConfigurationError(
                        path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                        secret=name, field=f"{field}.required",
                    )
        # An environment the secret is not in: the constraint would never apply (a dev requirement on a secret
        # that dev does not have leaves it optional everywhere).
        named = {"required": value.required if isinstance(value.required, list) else [],
                 "pattern": list(value.pattern) if isinstance(value.pattern, dict) else []}
        for what, envs in named.items():
            for env in envs:
                if secret.environments is not None and env not in secret.environments:
                    raise ConfigurationError(
                        path, f"'{env}' is not an environment of this secret (environments: "
                        f"{', '.join(secret.environments)}), so this would never apply", secret=name,
                        field=f"{field}.{what}",
                    )
    _check_together(path, name, secret, environments)
    _check_writers(path, name, secret)
    if secret.rotation in ("on-compromise", "manual") and secret.class_ == "critical" and not secret.rotation_reason:
        raise ConfigurationError(
            path, f"a critical secret rotated '{secret.rotation}' needs 'rotation_reason': why no function "
            "rotates it (letters, digits, spaces and _.:/=+-@ only)", secret=name, field="rotation_reason",
        )
    _check_first_value(path, name, secret)
    _check_installed_templates(path, name, secret)
    if isinstance(secret.rotation, Rotation):
        try:
            schedule.check(secret.rotation.every_days, secret.rotation.schedule, secret.rotation.window)
        except schedule.ScheduleError as exc:
            raise ConfigurationError(path, str(exc), secret=name, field=f"rotation.{exc.field}") from None
    if secret.rotate_every_days is not None and secret.rotation != "manual":
        raise ConfigurationError(
            path, "'rotate_every_days' is the period of a secret rotated by hand ('rotation: manual'); a function's "
            "schedule is 'rotation.every_days', and an on-compromise secret has no period", secret=name,
            field="rotate_every_days",
        )
    if secret.public_key is not None and not (
            isinstance(secret.rotation, Rotation) and secret.rotation.strategy == "jwt-rs256"):
        raise ConfigurationError(path, "'public_key' publishes the public half of a jwt-rs256 key pair; this secret "
                                 "is not rotated by jwt-rs256", secret=name, field="public_key")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_MASTER:
        if not secret.rotation.master:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs 'master': the catalog secret holding the "
                "admin credential that changes this password", secret=name, field="rotation.master",
            )
    if isinstance(secret.rotation, Rotation) and secret.rotation.acl is not None:
        if secret.rotation.strategy != "redis-acl":
            raise ConfigurationError(path, "'acl' sets the rules of a Redis user; only the 'redis-acl' strategy "
                                     "has one", secret=name, field="rotation.acl")
        if re.search(r"(^|\s)([<>#!]\S*|nopass|resetpass|reset|on|off)(\s|$)", secret.rotation.acl, re.IGNORECASE):
            raise ConfigurationError(path, "'acl' may not set passwords or switch the user on or off: the rotation "
                                     "function manages those", secret=name, field="rotation.acl")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_KEYS:
        if not secret.grouped:
            raise ConfigurationError(path, f"the '{secret.rotation.strategy}' strategy rotates a JSON secret; use "
                                     "'keys'", secret=name, field="rotation.strategy")
        missing = [k for k in NEEDS_KEYS[secret.rotation.strategy] if k not in values]
        if missing:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs the keys {', '.join(missing)}; for "
                f"example {'; '.join(f'{k}: {KEY_EXAMPLES[k]}' for k in missing if k in KEY_EXAMPLES)}",
                secret=name, field="keys",
            )
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in SIGNING_KEY_STRATEGIES:
        if not secret.grouped:
            raise ConfigurationError(path, "a JWT signing key is a JSON secret (current and previous key); use "
                                     "'keys' with a generated 'key'", secret=name, field="rotation.strategy")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy == "token":
        generated = [k for k, v in values.items() if v.generate is not None]
        if len(generated) != 1:
            raise ConfigurationError(
                path, "the 'token' rotation strategy needs exactly one generated value to replace "
                f"(found {len(generated)})", secret=name, field="rotation.strategy",
            )


def _check_together(path: str, name: str, secret: Secret, environments: tuple[str, ...]) -> None:
    """Each `together` group names two or more distinct supplied keys of this JSON secret, one of them optional
    somewhere (keys required everywhere are always set together: the group would mean nothing)."""
    values = secret.values if secret.grouped else {}
    for index, group in enumerate(secret.together):
        field = f"together.{index}"
        if not secret.grouped:
            raise ConfigurationError(path, "'together' groups keys of a JSON secret; use 'keys'", secret=name,
                                     field="together")
        for key in group:
            if key not in values or (values[key].external is None and values[key].config is None):
                raise ConfigurationError(path, f"'{key}' is not an external or plain config key of this secret",
                                         secret=name, field=field)
        if len(set(group)) != len(group):
            raise ConfigurationError(path, "names a key twice", secret=name, field=field)
        defaulted = [k for k in group if (source := values[k].config) is not None and source.default is not None]
        if defaulted:  # always set, so the rest of the group would be required everywhere
            raise ConfigurationError(path, f"'{defaulted[0]}' has a default, so it is always set; a group holds keys "
                                     "a stack may leave unset", secret=name, field=field)
        mine = secret.environments or environments
        if all(values[key].required_in(env) for key in group for env in mine):
            raise ConfigurationError(path, f"{', '.join(group)} are required in every environment of this secret, "
                                     "so they are always set together; drop the group", secret=name, field=field)


def _check_writers(path: str, name: str, secret: Secret) -> None:
    """An application-written value: the services that write it, each also a reader."""
    if secret.rotation != "application":
        if secret.writers:
            raise ConfigurationError(
                path, "only a value the application renews itself ('rotation: application') has writers",
                secret=name, field="writers",
            )
        return
    if not secret.writers:
        raise ConfigurationError(
            path, "'rotation: application' needs 'writers': the services that write the renewed value back",
            secret=name, field="writers",
        )
    readers_missing = sorted(set(secret.writers) - set(secret.consumers))
    if readers_missing:
        raise ConfigurationError(
            path, f"writer(s) {', '.join(readers_missing)} must also be consumers: a service writes back the "
            "value it reads", secret=name, field="writers",
        )


def _check_first_value(path: str, name: str, secret: Secret) -> None:
    """A first value made by the rotation function: only what the function writes can be declared."""
    if not isinstance(secret.rotation, Rotation) or not secret.rotation.first_value_by_rotation:
        for key, value in secret.values.items():
            if value.rotation is not None:
                raise ConfigurationError(
                    path, "a value comes from 'rotation' only in a secret whose rotation makes the first value "
                    "('rotation: {strategy: ..., first_value: rotation}')", secret=name,
                    field=f"keys.{key}.rotation" if key else "value.rotation",
                )
        return
    strategy = secret.rotation.strategy
    if strategy not in FIRST_VALUE_KEYS:
        raise ConfigurationError(
            path, f"the '{strategy}' strategy logs in with the current credential, so it cannot make the first "
            f"value; 'first_value: rotation' works with {', '.join(sorted(FIRST_VALUE_KEYS))}",
            secret=name, field="rotation.first_value",
        )
    values = secret.values
    for key, value in values.items():
        if value.source not in ("generate", "rotation"):
            field = f"keys.{key}" if key else "value"
            raise ConfigurationError(
                path, f"with 'first_value: rotation' the function writes the whole value, so a value cannot come "
                f"from {value.source}; declare the key with 'rotation: {{}}', or move it to another secret",
                secret=name, field=f"{field}.{value.source}",
            )
    keys = FIRST_VALUE_KEYS[strategy]
    if keys is None:
        others = sorted(k for k, v in values.items() if v.generate is None)
        if others:
            raise ConfigurationError(
                path, "with 'first_value: rotation' the token function writes only the generated value; "
                f"{', '.join(others)} would be missing: move them to another secret", secret=name, field="keys",
            )
        return
    if not secret.grouped:
        return  # refused as a JWT secret that is not JSON
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ConfigurationError(
            path, f"with 'first_value: rotation' the {strategy} function writes the keys {', '.join(keys)}; "
            f"{', '.join(unknown)} would be missing", secret=name, field="keys",
        )


def _check_public_keys(catalog: Catalog) -> None:
    """A published public key's secret name is free, and its verifiers are not also its signers."""
    from components.public_key import public_name  # the derived entries live there

    for name, secret in catalog.secrets.items():
        if secret.public_key is None:
            continue
        derived = public_name(name)
        if derived in catalog.secrets or len(derived) > 63:
            why = "is already a secret of the catalog" if derived in catalog.secrets else "is longer than 63 characters"
            raise ConfigurationError(catalog.path, f"the public key would be published as '{derived}', which {why}",
                                     secret=name, field="public_key")
        both = sorted(set(secret.public_key.verifiers) & set(secret.consumers))
        if both:
            raise ConfigurationError(
                catalog.path, f"{', '.join(both)} read(s) the private key as consumers; a verifier reads only the "
                "public key: list it under one of 'consumers' or 'public_key.verifiers'", secret=name,
                field="public_key.verifiers",
            )


def _check_env_unique(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for name, secret in catalog.secrets.items():
        fed = [(f"keys.{key}.env" if key else "value.env", f"{name}:{key}" if key else name, value.env)
               for key, value in secret.values.items()]
        if secret.public_key is not None:  # the published JWKS feeds variables of the same stacks
            fed.append(("public_key.env", f"{name}:public_key", secret.public_key.env))
        for field, where, variables in fed:
            for var in variables:
                if var in seen and _share_environment(catalog, seen[var].split(":")[0], name):
                    raise ConfigurationError(
                        catalog.path, f"environment variable {var} is already fed by '{seen[var]}'",
                        secret=name, field=field,
                    )
                seen[var] = where


def _share_environment(catalog: Catalog, first: str, second: str) -> bool:
    a, b = catalog.secrets[first].environments, catalog.secrets[second].environments
    return a is None or b is None or bool(set(a) & set(b))


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file."""
    return parse_catalog(load_yaml(path), str(path))



_COMPILED: dict[str, Any] = {}


def compile_pattern(expression: str) -> Any:
    """A catalog `pattern` compiled by RE2 (google-re2), which matches in time linear in the value whatever
    the pattern: `^(a+)+$` against forty `a`s and a `!` would never finish under Python's backtracking `re`.
    RE2 has no backreferences or lookaround (they cannot run in linear time): such a pattern is refused
    with ValueError, as is one RE2 cannot parse. Errors are raised, never logged (`log_errors` off)."""
    import re2

    if expression not in _COMPILED:
        options = re2.Options()
        options.log_errors = False
        try:
            _COMPILED[expression] = re2.compile(expression, options)
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) \
                else str(exc)
            shown = expression.encode("unicode_escape").decode("ascii")
            raise ValueError(f"'{shown}' is not a regular expression RE2 accepts ({reason}; RE2 has no "
                             "backreferences or lookaround)") from None
    return _COMPILED[expression]


MASTER_KEYS = ("username", "password")
"""What a database strategy's function reads from its master secret to log in (rotation/strategies/postgres.py
`master_connection`, redis_acl.py); the master's other keys only override the credential's own."""


def needed_keys(secrets: Mapping[str, Secret]) -> dict[str, dict[str, str]]:
    """Secret -> key -> why: the values a rotation of this stack cannot do without, so that one left optional
    (`required: false`, `required: [dev]`) and unset here makes the credential wait, as a missing required
    value does, instead of scheduling a rotation that can only fail: a database strategy's own keys
    (NEEDS_KEYS, with the parts of a template among them) and its master's login."""
    needed: dict[str, dict[str, str]] = {}
    for name, entry in secrets.items():
        if not isinstance(entry.rotation, Rotation) or entry.rotation.strategy not in NEEDS_KEYS:
            continue
        strategy, values = entry.rotation.strategy, entry.values
        mine = needed.setdefault(name, {})
        for key in NEEDS_KEYS[strategy]:
            template = values[key].template if key in values else None
            for part in (key, *(PLACEHOLDER_REF.findall(template) if template else ())):
                mine.setdefault(part, f"the {strategy} rotation of {name} reads its '{key}', which cannot succeed "
                                "without it")
        master = entry.rotation.master
        # A managed master (`{managed: rds}`) is AWS's: it always has a value, the stack supplies none.
        if isinstance(master, str) and master in secrets:
            theirs = needed.setdefault(master, {})
            for key in MASTER_KEYS if secrets[master].grouped else ("",):
                theirs.setdefault(key, f"the {strategy} rotation of {name} logs in with it (rotation.master), which "
                                  "cannot succeed without it")
    return needed


def _check_installed_templates(path: str, name: str, secret: Secret) -> None:
    """A server credential whose password its first rotation makes: the program's first version leaves out
    every template built from the password, and the function rebuilds only `url`; any other would stay empty."""
    if not secret.needs_first_install or not isinstance(secret.rotation, Rotation) or secret.rotation.master is None:
        return
    for key, value in secret.values.items():
        if key != "url" and value.template is not None and "password" in PLACEHOLDER_REF.findall(value.template):
            raise ConfigurationError(
                path, f"the password is made by the {secret.rotation.strategy} function, which rebuilds only "
                "'url' from it; name this template 'url', or build it in the application from the keys",
                secret=name, field=f"keys.{key}.template",
            )


def _check_managed_master(path: str, name: str, rotation: Rotation) -> None:
    """An RDS-managed master logs in to PostgreSQL: only the PostgreSQL strategies can use it."""
    if rotation.strategy not in ("postgres-single-user", "postgres-alternating-users"):
        raise ConfigurationError(path, f"an RDS-managed master ('managed: rds') installs PostgreSQL passwords; "
                                 f"the '{rotation.strategy}' strategy cannot use it", secret=name,
                                 field="rotation.master")


def _check_managed_external(catalog: Catalog) -> None:
    """A managed external secret: a JSON secret with the partner's keys, on a schedule AWS accepts."""
    for name, entry in catalog.secrets.items():
        rotation = entry.rotation
        if not isinstance(rotation, ManagedExternal):
            continue
        try:
            schedule.check(rotation.every_days, rotation.schedule, rotation.window)
        except schedule.ScheduleError as exc:
            raise ConfigurationError(catalog.path, str(exc), secret=name, field=f"rotation.{exc.field}") from None
        if not entry.grouped:
            raise ConfigurationError(catalog.path, f"a {rotation.managed_external} managed external secret is a JSON "
                                     "secret; use 'keys'", secret=name, field="rotation.managed_external")
        missing = [k for k in MANAGED_EXTERNAL_KEYS.get(rotation.managed_external, ()) if k not in entry.values]
        if missing:
            raise ConfigurationError(catalog.path, f"a {rotation.managed_external} managed external secret needs the "
                                     f"keys {', '.join(missing)}", secret=name, field="keys")
        generated = [k for k, v in entry.values.items() if v.generate is not None]
        if generated:
            raise ConfigurationError(catalog.path, f"'{generated[0]}' is generated, but the partner issues every value "
                                     "of a managed external secret: supply it (external)", secret=name,
                                     field=f"keys.{generated[0]}")
