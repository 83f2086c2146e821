"""Values a person supplies per stack: external secrets (`pulumi config set --secret`) and plain config.

External values are read with `require_secret`/`get_secret` and stay Outputs marked secret; their
checks run inside `apply`, so a bad value fails `pulumi up` with a message that names the key but
never the value.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import hmac
import itertools
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import pulumi

from components.catalog import Catalog, Secret, Value, config_key, typed
from components.errors import ConfigurationError
from components.settings import PROJECT, SETTINGS_KEYS, StackSettings

PLACEHOLDERS = (
    # Anywhere in the value only in one case throughout (`YOUR_KEY_HERE`, `your-api-key-here`), else at its
    # start: a random url-safe token of 35,000 characters holds a `yOuR_` in any case once in ~2,000.
    (re.compile(r"YOUR_[A-Z0-9_]*HERE|your[-_][a-z0-9_-]*here"), "a 'YOUR_..._HERE' placeholder"),
    (re.compile(r"^your[-_ ]", re.IGNORECASE), "a 'YOUR_..._HERE' placeholder"),
    (re.compile(r"<[^<>]*>"), "a '<...>' placeholder"),
    (re.compile(r"change[-_ ]?me", re.IGNORECASE), "'changeme'"),
    (re.compile(r"^(test|example|placeholder|todo|xxx+|replace[-_ ]?me|secret|password)$", re.IGNORECASE),
     "a placeholder word"),
)
DEVELOPMENT_VALUE = (re.compile(r"^dev[-_]", re.IGNORECASE), "a development value ('{marker}...')")
"""Refused in secret values only: a plain identifier may well be `dev_user` in a dev stack."""

_RUN_KEY = secrets.token_bytes(32)
"""Keys the digests of supplied values; made per process, never stored."""

SECRET_STRING_LIMIT = 65536
"""Bytes a SecretString may hold (CreateSecret / PutSecretValue: SecretStringType max 65536)."""

MIN_SUPPLIED_LENGTH = {"critical": 16, "configuration": 1}
"""Shortest value a person may supply for each class."""


def placeholder_problem(value: str, secret_class: str, *, secret: bool = True,
                        development: bool = False) -> str | None:
    """Why a supplied value looks like a placeholder (or, for a secret value outside a stack that accepts
    development values, a development value), or None if it does not.

    The message describes the kind of problem only; it never quotes the value.
    """
    for pattern, what in (*PLACEHOLDERS, *((DEVELOPMENT_VALUE,) if secret and not development else ())):
        found = pattern.search(value)
        if found:
            # Only the development marker is quoted, as written (`dev_`, `DEV-`): it is the marker, not the value.
            return f"the value is {what.format(marker=found.group())}, not a real value"
    shortest = MIN_SUPPLIED_LENGTH[secret_class]
    if len(value.strip()) < shortest:
        return f"the value has {len(value.strip())} characters; a {secret_class} value needs at least {shortest}"
    return None


@dataclass(frozen=True)
class MissingValue:
    """An external value the stack does not set yet: the 'action required' list."""

    secret: str
    key: str
    config_key: str
    required: bool
    secret_value: bool = True
    """False for an optional plain config value."""
    put_by_ops: bool = False
    """Put out of band (`external: {put: ops}`): `python -m ops put` writes it; the program never knows whether
    it has, so it is always listed, and never stops `pulumi up`."""

    @property
    def command(self) -> str:
        if self.put_by_ops:
            return f"python -m ops put --stack <stack> {self.secret}{' ' + self.key if self.key else ''}"
        flag = " --secret" if self.secret_value else ""
        value = "" if self.secret_value else " <value>"
        return f"pulumi config set{flag} {PROJECT}:{self.config_key}{value} --stack <stack>"


@dataclass(frozen=True)
class SuppliedValues:
    """The stack's supplied values for one secret, by key (`""` for a single-value secret)."""

    secret: dict[str, pulumi.Output[str]]
    plain: dict[str, str | int | bool]
    missing: list[MissingValue]
    digests: dict[str, bytes] = field(default_factory=dict, repr=False)
    """HMAC-SHA256 of each external value under a key made for this run: equal values have equal
    digests, and nothing of the value is kept."""


def read_supplied(catalog: Catalog, name: str, entry: Secret, settings: StackSettings,
                  needed: Mapping[str, str] | None = None) -> SuppliedValues:
    """Read the external and plain config values of one catalog secret from the stack's config.

    `needed` (key -> why, catalog.needed_keys) are keys a rotation of this stack cannot do without: one
    the catalog leaves optional here is treated as required, so that the credential waits for it."""
    needed = {**_set_together(name, entry, settings), **(needed or {})}
    # Missing values may be missing (listed as action required) where the stack says so or in the offline
    # preview; nothing else relaxes a check.
    missing_allowed = settings.allow_missing_values or offline_preview()
    development = development_values(settings)
    config = pulumi.Config(PROJECT)
    secret_values: dict[str, pulumi.Output[str]] = {}
    plain: dict[str, str | int | bool] = {}
    missing: list[MissingValue] = []
    supplied_bytes = 0
    contributing: list[str] = []
    digests: dict[str, bytes] = {}
    for key, value in entry.values.items():
        if value.external is not None and value.external.put == "ops":
            ckey = config_key(name, key, value.external.config)
            if pulumi.runtime.get_config(f"{PROJECT}:{ckey}") is not None:
                # It would pass through Pulumi (and its state), which is what `put: ops` exists to avoid.
                raise ConfigurationError(
                    settings.file, "the catalog says this value is put out of band (external: {put: ops}); remove it "
                    f"from the stack config (`pulumi config rm {PROJECT}:{ckey} --stack {settings.stack}`) and put it "
                    f"with `python -m ops put --stack {settings.stack} {name}{' ' + key if key else ''}`",
                    secret=name, field=f"{PROJECT}:{ckey}")
            # Required, so the program writes no version and keeps the key's bindings; never a stop.
            missing.append(MissingValue(name, key, ckey, required=True, put_by_ops=True))
            continue
        if value.external is not None:
            ckey = config_key(name, key, value.external.config)
            full_key = f"{PROJECT}:{ckey}"
            # The plaintext is what get_secret would wrap; reading it here lets every check run before
            # the program registers anything (a bad value never leaves a half-applied stack).
            supplied = pulumi.runtime.get_config(full_key)
            required = value.required_in(settings.environment) or key in needed
            if supplied is None:
                gap = MissingValue(name, key, ckey, required)
                if required and not missing_allowed:
                    raise ConfigurationError(
                        settings.file,
                        f"the external value is not set{_needed_because(value, key, needed, settings)}; set it "
                        f"with `{gap.command.replace('<stack>', settings.stack)}`",
                        secret=name, field=full_key,
                    )
                missing.append(gap)
                continue
            if not pulumi.runtime.is_config_secret(full_key):
                # Committed in plain text in the stack file: refuse it rather than store it.
                raise ConfigurationError(
                    settings.file, "an external secret value is set in plain text; remove it from the file and "
                    f"set it with `pulumi config set --secret {full_key} --stack {settings.stack}`",
                    secret=name, field=full_key,
                )
            # The offline preview holds random stand-ins for secure values: their length and form say
            # nothing, so min_length and pattern wait for `pulumi up` (listed as deploy checks). A stack's
            # own allowMissingValues changes nothing here: this value is set.
            problem = placeholder_problem(supplied, entry.class_, development=development) or (
                None if full_key in _stand_ins() else _too_short(supplied, value.min_length)
                or _mismatch(supplied, value, settings.environment))
            if problem:
                raise ConfigurationError(settings.file, problem, secret=name, field=full_key)
            # A keyed digest, never the value, to compare with the values this one must differ from.
            digests[key] = hmac.new(_RUN_KEY, supplied.encode(), hashlib.sha256).digest()
            supplied_bytes += len(supplied.encode())
            contributing.append(full_key)
            secret_values[key] = pulumi.Output.secret(supplied)
        elif value.config is not None:
            ckey = config_key(name, key, value.config.config)
            if pulumi.runtime.is_config_secret(f"{PROJECT}:{ckey}"):
                # Plain config goes into the secret's JSON and the preview as it is; a secret belongs in
                # an `external` value (and must never be quoted by a message below).
                raise ConfigurationError(
                    settings.file, "is set with --secret, but the catalog declares it as plain config; declare it "
                    "`external` in the catalog if it is secret, or set it without --secret",
                    secret=name, field=f"{PROJECT}:{ckey}",
                )
            raw = config.get(ckey)
            if raw is None:
                raw = value.config.default
            if raw is None and not value.required_in(settings.environment):
                if key not in needed:
                    missing.append(MissingValue(name, key, ckey, required=False, secret_value=False))
                    continue
                if missing_allowed:  # a rotation needs it: the credential waits for it, as for a required value
                    missing.append(MissingValue(name, key, ckey, required=True, secret_value=False))
                    continue
            if raw is None:
                raise ConfigurationError(
                    settings.file, f"not set{_needed_because(value, key, needed, settings)}; set it with "
                    f"`pulumi config set {PROJECT}:{ckey} <value> --stack {settings.stack}`",
                    secret=name, field=f"{PROJECT}:{ckey}",
                )
            problem = placeholder_problem(raw, "configuration", secret=False) or _too_short(raw, value.min_length) \
                or _mismatch(raw, value, settings.environment)
            if problem:
                raise ConfigurationError(settings.file, problem, secret=name, field=f"{PROJECT}:{ckey}")
            try:
                plain[key] = typed(raw, value.type)
            except ValueError as exc:
                raise ConfigurationError(settings.file, str(exc), secret=name, field=f"{PROJECT}:{ckey}") from None
            if value.env and (problem := bound_number_problem(plain[key])):
                raise ConfigurationError(settings.file, problem, secret=name, field=f"{PROJECT}:{ckey}")
            supplied_bytes += len(raw.encode())
            contributing.append(f"{PROJECT}:{ckey}")
    if supplied_bytes > SECRET_STRING_LIMIT:
        # A lower bound of the stored value (JSON and generated values add to it): AWS refuses it anyway.
        raise ConfigurationError(
            settings.file, f"the supplied values add up to {supplied_bytes:,} bytes; a secret holds at most "
            f"{SECRET_STRING_LIMIT:,} (SecretString)", secret=name, field=", ".join(contributing),
        )
    return SuppliedValues(secret=secret_values, plain=plain, missing=missing, digests=digests)


def catalog_config_keys(catalog: Catalog, environment: str | None = None) -> set[str]:
    """Every stack config key a catalog value reads, over all environments or in one."""
    keys: set[str] = set()
    secrets_ = catalog.secrets if environment is None else catalog.for_environment(environment)
    for name, entry in secrets_.items():
        for key, value in entry.values.items():
            source = value.external or value.config
            if source is not None:
                keys.add(config_key(name, key, source.config))
    return keys


def check_config_keys(catalog: Catalog, settings: StackSettings) -> None:
    """Refuse a key under `secrets-platform:` that neither the project nor the catalog knows: a typo
    (`recoveryWindowDayz`, a misspelled external value) would otherwise be ignored in silence."""
    known = SETTINGS_KEYS | catalog_config_keys(catalog, settings.environment)
    elsewhere = _readers_elsewhere(catalog, settings.environment)
    given = {*pulumi.runtime.config.CONFIG.get(), *pulumi.runtime.config.get_config_env()}
    prefix = f"{PROJECT}:"
    for full in sorted(k for k in given if k.startswith(prefix)):
        key = full.removeprefix(prefix)
        if key in known:
            continue
        if key in elsewhere:
            # A value for a secret this environment does not have would be ignored in silence.
            name, environments = elsewhere[key]
            raise ConfigurationError(
                settings.file, f"is a value of secret '{name}', which {settings.environment} does not have (its "
                f"environments: {', '.join(environments)}); remove it from this stack file, or add "
                f"{settings.environment} to the secret's environments in {catalog.path}", secret=name, field=full)
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f"did you mean {prefix}{close[0]}?" if close else "remove it, or add the value it sets to the catalog"
        raise ConfigurationError(settings.file, f"unknown key: neither a setting nor a value of {catalog.path} "
                                 f"({hint})", field=full)


DEVELOPMENT_ENVIRONMENT = re.compile(r"^(dev|development)(-[a-z0-9-]+)?$")
"""An environment named as development: `dev`, `development`, or one of them and a suffix (`dev-alice`)."""


def development_values(settings: StackSettings) -> bool:
    """Whether this stack accepts secret values that start `dev-`/`dev_` (the team's own development values):
    `developmentValues` where the stack file sets it, else only an environment named as development."""
    if settings.development_values is None:
        return DEVELOPMENT_ENVIRONMENT.fullmatch(settings.environment) is not None
    if settings.development_values and settings.environment == "production":
        raise ConfigurationError(settings.file, "production may not hold development values; remove "
                                 "developmentValues from this stack file", field=f"{PROJECT}:developmentValues")
    return settings.development_values


def _set_together(name: str, entry: Secret, settings: StackSettings) -> dict[str, str]:
    """Key -> why: the unset keys of a `together` group of which this stack sets some (both or neither)."""
    if not entry.together:
        return {}
    config = pulumi.Config(PROJECT)

    def is_set(key: str) -> bool:
        value = entry.values[key]
        if value.external is not None:
            return pulumi.runtime.get_config(f"{PROJECT}:{config_key(name, key, value.external.config)}") is not None
        assert value.config is not None  # the catalog allows only supplied keys in a group
        return config.get(config_key(name, key, value.config.config)) is not None or value.config.default is not None

    found: dict[str, str] = {}
    for group in entry.together:
        given = [k for k in group if is_set(k)]
        for key in group:
            if given and key not in given:
                found.setdefault(key, f"this stack sets {', '.join(given)}, which goes with it (together: "
                                      f"[{', '.join(group)}])")
    return found


def _readers_elsewhere(catalog: Catalog, environment: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Config key -> (secret, its environments) for the values of secrets `environment` does not have."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, entry in catalog.secrets.items():
        if entry.environments is None or environment in entry.environments:
            continue
        for key, value in entry.values.items():
            source = value.external or value.config
            if source is not None:
                found.setdefault(config_key(name, key, source.config), (name, tuple(entry.environments)))
    return found


def _too_short(value: str, min_length: int | None) -> str | None:
    if min_length is not None and len(value) < min_length:
        return f"the value has {len(value)} characters; the catalog asks for at least {min_length} (min_length)"
    return None


def _mismatch(supplied: str, value: Value, environment: str) -> str | None:
    """Why a supplied value does not match its pattern (the message quotes the pattern as the catalog writes it,
    never the value): `pattern` for every environment, `pattern.<environment>` for one."""
    from components.catalog import compile_pattern  # RE2: linear in the value whatever the pattern

    pattern = value.pattern_in(environment)
    if pattern is not None and compile_pattern(pattern).search(supplied) is None:
        which = f"pattern for {environment}" if isinstance(value.pattern, dict) else "pattern"
        return f"the value does not match the catalog's {which} ('{pattern}'); set the right value"
    return None


def _needed_because(value: Value, key: str, needed: Mapping[str, str], settings: StackSettings) -> str:
    """Why a value the catalog leaves optional in this environment must be set all the same ("" if it need not)."""
    if key not in needed or value.required_in(settings.environment):
        return ""
    return f", and {needed[key]}; the catalog's `required` leaves it optional in {settings.environment}"


def check_differences(secrets_: Mapping[str, Secret], settings: StackSettings,
                      supplied: dict[str, SuppliedValues]) -> None:
    """Values the catalog says must differ (`differs_from`) do, where both are set in this stack."""
    for name, values in supplied.items():
        entry = secrets_[name]
        for key, value in entry.values.items():
            for ref in value.differs_from:
                other_name, _, other_key = ref.partition(".")
                mine = values.digests.get(key)
                theirs = supplied[other_name].digests.get(other_key) if other_name in supplied else None
                if mine is not None and theirs is not None and hmac.compare_digest(mine, theirs):
                    source = value.external
                    assert source is not None
                    raise ConfigurationError(
                        settings.file, f"the value equals {ref}'s, which the catalog says it must differ from "
                        "(differs_from); set a different value", secret=name,
                        field=f"{PROJECT}:{config_key(name, key, source.config)}",
                    )


def deploy_checks(catalog: Catalog, secrets_: dict[str, Secret], environment: str) -> list[str]:
    """The constraints on supplied secret values that only `pulumi up` can check (against real values)."""
    checks: list[str] = []
    for name, entry in secrets_.items():
        for key, value in entry.values.items():
            where = f"{name}.{key}" if key else name
            if value.min_length is not None:
                checks.append(f"{where}: at least {value.min_length} characters")
            pattern = value.pattern_in(environment)
            if pattern is not None and value.external is not None:
                checks.append(f"{where}: matches '{pattern}'")
            checks += [f"{where}: differs from {ref}" for ref in value.differs_from]
    return checks


BOUND_NUMBER_LIMIT = 1_000_000
"""A JSON number bound to a variable reaches an ECS task as Go's `%v` of a float64 (the agent unmarshals the
secret into interface{} and formats the key: aws/amazon-ecs-agent agent/asm/asm.go), which is `%g` with the
shortest precision: from 1e+06 on, an exponent (strconv/ftoa.go `eprec = 6`)."""


def bound_number_problem(value: str | int | bool) -> str | None:
    """Why a plain value bound to an environment variable would not arrive as its own text, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= BOUND_NUMBER_LIMIT:
        return (f"{value} is bound to an environment variable and would arrive in exponent form (1000000 arrives as "
                "1e+06: the ECS agent formats JSON numbers with Go's %v); declare it `type: string` so that it "
                "arrives as written")
    return None


CREDENTIAL_WORDS = frozenset({"password", "passwd", "passphrase", "pwd", "secret", "token", "credential",
                              "credentials", "apikey", "privatekey"})
CREDENTIAL_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("signing", "key")})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def names_a_credential(name: str) -> bool:
    """Whether a key's name says its value is a credential (`password`, `apiKey`, `client_secret`,
    `accessToken`), word by word: `maxTokens` and `tokenizer` do not."""
    words = [w.lower() for w in _WORD.findall(name)]
    return any(w in CREDENTIAL_WORDS for w in words) or any(p in CREDENTIAL_PAIRS for p in itertools.pairwise(words))


PLAIN_DEFAULT = re.compile(r"^(-?[0-9]{1,6}(\.[0-9]{1,6})?|true|false|[a-z][a-z0-9+.-]*://[^/@\s]+(/\S*)?)$",
                           re.IGNORECASE)
"""What a default may still be under such a name: a short number, a flag, a URL without credentials in it
(`tokenUrl: https://auth.example.com/token`)."""
URL_WITH_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


def check_literal_defaults(catalog: Catalog) -> None:
    """Refuse a plain `config` value whose catalog `default` is a credential: the catalog is committed in
    plain text, and the value would reach every stack that does not set the key. A secret-looking key
    (the secret's name for a single value) with a default other than a number, a flag or a plain URL, or
    any default that is a URL with a password in it. The message never quotes the default."""
    for name, entry in catalog.secrets.items():
        for key, value in entry.values.items():
            if value.config is None or value.config.default is None:
                continue
            default = value.config.default
            # The variables a value feeds are not looked at: they carry the secret's name (`DEVICE_TOKEN_KID`).
            names = [n for n in (key or name,) if names_a_credential(n)]
            if (names and not PLAIN_DEFAULT.fullmatch(default)) or URL_WITH_CREDENTIALS.match(default):
                why = f"'{names[0]}' names a credential" if names else "it holds a URL with a password"
                raise ConfigurationError(
                    catalog.path, f"a catalog default may not hold a secret ({why}), and the catalog is committed "
                    "in plain text; declare the value `external: {}` and set it per stack with `pulumi config set "
                    "--secret`, or `generate` it", secret=name,
                    field=f"{'keys.' + key if key else 'value'}.config.default",
                )


_OFFLINE: list[frozenset[str]] = []
"""While the offline preview runs the program: the config keys whose values are its stand-ins (a stack
file cannot say this: only `offline_stand_ins` can, around a run)."""


@contextlib.contextmanager
def offline_stand_ins(keys: Iterable[str]) -> Iterator[None]:
    """Run the program as the offline preview: missing values are listed instead of refused, the rotation
    package may be missing, and the secure values of `keys` are stand-ins whose length and form say nothing."""
    _OFFLINE.append(frozenset(keys))
    try:
        yield
    finally:
        _OFFLINE.pop()


def offline_preview() -> bool:
    """Whether the program runs inside the offline preview."""
    return bool(_OFFLINE)


def _stand_ins() -> frozenset[str]:
    return _OFFLINE[-1] if _OFFLINE else frozenset()
