"""The catalog: every secret an application needs, declared once for all stacks.

The YAML file is parsed once into frozen, typed objects. Every mistake (syntax, unknown field,
duplicate secret, weak generator, bad reference) becomes one `ConfigurationError` naming the file,
the secret and the field.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.errors import ConfigurationError

SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
ENV_VAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
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
"""The JSON keys each database strategy reads (rotation/README.md)."""
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
    required: bool = True
    """An optional external value may be missing in a stack; the key is then left out."""
    type: Literal["string", "integer", "boolean"] = "string"
    """JSON type of a plain config value inside a JSON secret (a port is a number, `tls` a boolean)."""

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
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        sources = [s for s in SOURCES if getattr(self, s) is not None]
        if len(sources) != 1:
            found = ", ".join(sources) or "none"
            raise ValueError(f"exactly one of {', '.join(SOURCES)} is required (found {found})")
        if not self.required and self.external is None and self.config is None:
            raise ValueError("'required: false' is only meaningful for an external or plain config value")
        if self.type != "string" and self.config is None:
            raise ValueError("'type' applies to plain config values only")
        if self.type != "string" and self.config is not None and self.config.default is not None:
            typed(self.config.default, self.type)
        return self

    @property
    def source(self) -> str:
        for name in SOURCES:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated: one source")


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
    master: str | None = None
    """Catalog name of the secret holding the admin credential that changes this one's password
    (`postgres-alternating-users`, `redis-acl`); its ARN is stored in the secret as `masterarn`."""
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
        if self.schedule is not None and not re.fullmatch(r"(rate|cron)\(.+\)", self.schedule):
            raise ValueError(f"schedule '{self.schedule}' is not a rate(...) or cron(...) expression")
        if self.window is not None and not re.fullmatch(r"([1-9]|1[0-9]|2[0-4])h", self.window):
            raise ValueError(f"window '{self.window}' must be 1h to 24h")
        return self

    @property
    def tag(self) -> str:
        return f"{self.every_days}d" if self.every_days is not None else "scheduled"

    @property
    def signing_key(self) -> bool:
        return self.kind == "signing-key" or (self.kind is None and self.strategy in SIGNING_KEY_STRATEGIES)


class Secret(_Model):
    """One Secrets Manager entry: a single value, or a JSON object of several keys."""

    description: str = Field(min_length=1)
    class_: Literal["critical", "configuration"] = Field(alias="class")
    owner: str | None = None
    """Team that owns the secret; defaults to the catalog's owner."""
    environments: list[str] | None = None
    """Stacks that have this secret; all when omitted."""
    rotation: Rotation | Literal["on-compromise", "manual", "application"] = "manual"
    """A rotation schedule, or the intent for a secret no function rotates; `application`: the
    application itself renews the value and writes it back (an OAuth refresh token)."""
    writers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(default_factory=list)
    """Services that write the value back (`rotation: application`): PutSecretValue on this secret only."""
    weak_reason: str | None = None
    """Why a critical generated value may carry fewer than 256 bits."""
    rotation_reason: str | None = Field(default=None, pattern=r"^[A-Za-z0-9 _.:/=+@-]{10,256}$")
    """Why a critical secret is not rotated by a function (`on-compromise`, `manual`); it becomes the
    `rotation-reason` tag, so it uses the characters AWS allows in tag values."""
    consumers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(default_factory=list)
    """Services (by name: lowercase, digits, '-') that read this secret at run time."""
    value: Value | None = None
    keys: dict[str, Value] | None = None

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

    @property
    def value_renewed(self) -> bool:
        """A rotation function or the application replaces the value after the first deploy."""
        return isinstance(self.rotation, Rotation) or self.rotation == "application"

    @property
    def rotation_tag(self) -> str:
        return self.rotation if isinstance(self.rotation, str) else self.rotation.tag


class CatalogFile(_Model):
    """The top level of a catalog file."""

    app: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    owner: str = Field(min_length=1)
    description: str | None = None
    environments: list[str] = Field(default_factory=lambda: ["production", "staging"], min_length=1)
    """Every environment the catalog is deployed to; a secret's `environments` must name some of these."""
    secrets: dict[str, Secret]


@dataclass(frozen=True)
class Catalog:
    """A parsed, validated catalog."""

    path: str
    app: str
    owner: str
    secrets: Mapping[str, Secret]
    environments: tuple[str, ...] = ("production", "staging")

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


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every read or syntax error into a ConfigurationError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        secret = _secret_at_line(text, mark.line) if mark else None
        raise ConfigurationError(str(path), f"invalid YAML{where}: {problem}", secret=secret) from exc


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


def _locate(loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """Split a pydantic error location into (secret, field), without pydantic's own labels."""
    parts: list[str] = []
    previous = ""
    for raw in (str(p) for p in loc):
        label = any(c in raw for c in "[](),'") or raw in ("Rotation", "function-after")
        # pydantic inserts the discriminator tag right after 'generate'; a later 'bytes' is the field.
        tag = previous == "generate" and raw in ("bytes", "password", "uuid")
        previous = raw
        if not (label or tag):
            parts.append(raw)
    if len(parts) >= 2 and parts[0] == "secrets":
        return parts[1], ".".join(parts[2:]) or None
    return None, ".".join(parts) or None



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
        error = exc.errors()[0]
        secret, field = _locate(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif isinstance(error.get("input"), str | int | float | bool) and f"'{error['input']}'" not in message:
            message = f"{message} (got {_short(error['input'])})"
        raise ConfigurationError(path, message, secret=secret, field=field) from None
    catalog = Catalog(path=path, app=parsed.app, owner=parsed.owner, secrets=dict(parsed.secrets),
                      environments=tuple(parsed.environments))
    for name, entry in catalog.secrets.items():
        _check_secret(path, name, entry, catalog.environments)
    _check_env_unique(catalog)
    _check_config_keys(catalog)
    _check_masters(catalog)
    return catalog


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
                if not values[ref].required:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is optional; a template needs values every "
                        "stack sets", secret=name, field=f"{field}.template",
                    )
                if values[ref].template is not None:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is itself a template", secret=name,
                        field=f"{field}.template",
                    )
    _check_writers(path, name, secret)
    if secret.rotation in ("on-compromise", "manual") and secret.class_ == "critical" and not secret.rotation_reason:
        raise ConfigurationError(
            path, f"a critical secret rotated '{secret.rotation}' needs 'rotation_reason': why no function "
            "rotates it (letters, digits, spaces and _.:/=+-@ only)", secret=name, field="rotation_reason",
        )
    _check_first_value(path, name, secret)
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_MASTER:
        if not secret.rotation.master:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs 'master': the catalog secret holding the "
                "admin credential that changes this password", secret=name, field="rotation.master",
            )
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_KEYS:
        if not secret.grouped:
            raise ConfigurationError(path, f"the '{secret.rotation.strategy}' strategy rotates a JSON secret; use "
                                     "'keys'", secret=name, field="rotation.strategy")
        missing = [k for k in NEEDS_KEYS[secret.rotation.strategy] if k not in values]
        if missing:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs the keys {', '.join(missing)}",
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


def _check_env_unique(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for name, secret in catalog.secrets.items():
        for key, value in secret.values.items():
            where = f"{name}:{key}" if key else name
            for var in value.env:
                if var in seen and _share_environment(catalog, seen[var].split(":")[0], name):
                    raise ConfigurationError(
                        catalog.path, f"environment variable {var} is already fed by '{seen[var]}'",
                        secret=name, field=f"keys.{key}.env" if key else "value.env",
                    )
                seen[var] = where


def _share_environment(catalog: Catalog, first: str, second: str) -> bool:
    a, b = catalog.secrets[first].environments, catalog.secrets[second].environments
    return a is None or b is None or bool(set(a) & set(b))


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file."""
    return parse_catalog(load_yaml(path), str(path))
