"""The catalog's typed model: every secret an application needs, as frozen pydantic objects.

What one field accepts on its own (types, ranges, choices, a generator's entropy) is checked here; the
rules across fields and secrets are in `components.catalog.checks`, reading YAML with source locations in
`components.catalog.loading`. `catalog.schema.json` is generated from these models
(`components/catalog_schema.py`).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from components.sharing import SharedWith, check_unique
from rotation import template as templates

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


ENV_NAMES_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": ENV_VAR.pattern},
    {"type": "array", "items": {"type": "string", "pattern": ENV_VAR.pattern}},
]})
"""What `env` accepts as written: one name or a list (the model keeps a list); the schema editors check."""


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


EnvNames = Annotated[list[str], BeforeValidator(_one_or_list), ENV_NAMES_SCHEMA]
"""Environment variable names, written as one name or a list."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True)


# The limits below are the rotation function's (rotation/generate.py), so that a generator the
# catalog accepts is one the function can repeat.


class BytesSpec(_Model):
    """Random bytes rendered as text: `openssl rand -hex N` / `openssl rand -base64 N`."""

    kind: Literal["bytes"]
    """`bytes`: random bytes, written out in `encoding`."""
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
    """`password`: random characters of `alphabet`."""
    length: int = Field(ge=16, le=4096)
    """Number of characters."""
    alphabet: Literal["alphanumeric", "hex", "custom"] = "alphanumeric"
    """Letters and digits, lowercase hex digits, or the characters of `chars`."""
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
    """`uuid`: a random version-4 UUID."""

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
    put: Literal["ops"] | None = None
    """`ops`: the value never passes through Pulumi. The secret is created empty and `python -m ops put --stack
    <stack> <secret> [<key>]` writes it, read from a hidden prompt or stdin; `pulumi up` never writes it. Its
    secret holds only such values and generated ones (no function rotates it): the first-value function writes
    those at deploy, and `ops put` keeps them."""


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

    env: EnvNames = Field(default_factory=list)
    """Environment variables this value feeds."""
    generate: GenerateSpec | None = None
    """Generated: random bytes, a password or a UUID (made inside AWS where a rotation function makes it)."""
    external: ExternalSource | None = None
    """Supplied per stack with `pulumi config set --secret` (a third party's key, an admin password)."""
    config: ConfigSource | None = None
    """Plain, non-secret stack config (a host, a port, a bucket name)."""
    rotation: RotationSource | None = None
    """Written by the rotation function (`first_value: rotation`): the program declares the key, never its value."""
    template: str | None = None
    """Built from sibling keys, e.g. `postgresql://{username}:{password}@{host}:{port}/{dbname}`;
    substituted values are percent-encoded so that a password cannot break the URL. A part in square
    brackets is written only when every key inside it has a value in the stack (`redis://[:{password}@]{host}`);
    `[[` and `]]` are literal brackets (`[[::1]]`)."""
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

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                templates.parse(value)
            except templates.TemplateError as exc:
                raise ValueError(str(exc)) from None
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
    """The rotation function's strategy: `token`, `postgres-single-user`, `postgres-alternating-users`,
    `redis-acl`, `jwt-hs256` or `jwt-rs256`."""
    every_days: int | None = Field(default=None, ge=1, le=1000)
    """Days between rotations (1-1000), or `schedule`."""
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
    previous_accepted: bool = False
    """`token` only: whatever checks the token also accepts the previous value (AWSPREVIOUS, read at run time;
    Django's SECRET_KEY_FALLBACKS, a webhook checked against two secrets), so the old value keeps working until
    the next rotation and a consumer holding it fails nothing."""
    first_value: Literal["program", "rotation"] = "program"
    """Who makes the first value: the program (pulumi-random; the value is kept, encrypted, in Pulumi
    state) or the rotation function, run at once by the first deploy, so that the value never enters
    Pulumi state or CI logs (token and JWT strategies). Left unset on a token or jwt-hs256 secret, the stack's
    `secrets-platform:firstValues` decides (`program` by default, `aws`: the rotation function)."""

    @property
    def first_value_by_rotation(self) -> bool:
        return self.first_value == "rotation"

    @model_validator(mode="after")
    def _schedule(self) -> Rotation:
        if (self.every_days is None) == (self.schedule is None):
            raise ValueError("give exactly one of every_days or schedule")
        if self.bits is not None and self.strategy != "jwt-rs256":
            raise ValueError("'bits' is the RSA key size of a jwt-rs256 key pair only")
        if self.previous_accepted and self.strategy != "token":
            raise ValueError("'previous_accepted' is for token secrets only: the other strategies keep the previous "
                             "credential themselves, or cannot (postgres-single-user changes the password in place)")
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
    env: EnvNames = Field(default_factory=list)
    """Environment variables the JWKS (`<name>-public-key:jwks`) feeds."""
    pem_env: EnvNames = Field(default_factory=list)
    """Environment variables the PEM of the newest key (`<name>-public-key:pem`) feeds, for a verifier that takes
    one PEM rather than a JWKS. It changes when a rotation publishes the new key, before that key signs; from then
    on such a verifier rejects tokens signed by the previous key (docs/catalog.md, public keys)."""

    @field_validator("env", "pem_env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return Value._env_names(value)


class Secret(_Model):
    """One Secrets Manager entry: a single value, or a JSON object of several keys."""

    description: str = Field(min_length=1, max_length=2048)
    """At most 2,048 characters (CreateSecret's Description)."""
    class_: Literal["critical", "configuration"] = Field(alias="class")
    """`critical` (a credential or key: entropy, rotation and policy rules apply) or `configuration`."""
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
    """`jwt-rs256` only: publish the public half (JWKS, and the newest key's PEM) where verifiers read it without
    the private key."""
    rotate_every_days: int | None = Field(default=None, ge=1, le=1000)
    """`rotation: manual` only: the period a person rotates it on; `python -m ops due` reports it due
    from the current version's creation date in AWS."""
    value: Value | None = None
    """A single value (the secret string itself); give `value` or `keys`, not both."""
    keys: dict[str, Value] | None = None
    """The keys of a JSON secret, each a value of its own."""
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
        if value.template is not None:  # its optional parts ([...]) may be left out
            return all(self.values[ref].required_in(environment) for ref in templates.parse(value.template).required)
        return value.required_in(environment)

    @property
    def put_by_ops(self) -> bool:
        """Some value is put out of band with `python -m ops put`: the program writes no version; every other value
        is put too, or generated by the first-value function (components/catalog/checks.py `_check_put_by_ops`)."""
        return any(v.external is not None and v.external.put == "ops" for v in self.values.values())

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
    """The application: the first segment of every secret name (`<app>/<env>/<name>`) and the `app` tag."""
    owner: str = Field(min_length=1, max_length=256)
    """Becomes the `owner` tag of every secret: at most 256 characters of what a tag value may hold."""
    description: str | None = None
    """What the application is (for people; not sent to AWS)."""
    environments: list[str] = Field(default_factory=lambda: ["production", "staging"], min_length=1)
    """Every environment the catalog is deployed to; a secret's `environments` must name some of these."""
    services: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] | None = None
    """The application's services; when given, every `consumers` and `writers` entry must be one."""
    secrets: dict[str, Secret]
    """Every secret, by name (lowercase letters, digits and `-`): `<app>/<env>/<name>` in Secrets Manager."""

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
    (NEEDS_KEYS, with the required parts of a template among them) and its master's login."""
    needed: dict[str, dict[str, str]] = {}
    for name, entry in secrets.items():
        if not isinstance(entry.rotation, Rotation) or entry.rotation.strategy not in NEEDS_KEYS:
            continue
        strategy, values = entry.rotation.strategy, entry.values
        mine = needed.setdefault(name, {})
        for key in NEEDS_KEYS[strategy]:
            template = values[key].template if key in values else None
            for part in (key, *(templates.parse(template).required if template else ())):
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

