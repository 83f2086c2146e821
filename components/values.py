"""Values a person supplies per stack: external secrets (`pulumi config set --secret`) and plain config.

External values are read with `require_secret`/`get_secret` and stay Outputs marked secret; their
checks run inside `apply`, so a bad value fails `pulumi up` with a message that names the key but
never the value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import pulumi

from components.catalog import Catalog, Secret, config_key, typed
from components.errors import ConfigurationError
from components.settings import PROJECT, SETTINGS_KEYS, StackSettings

PLACEHOLDERS = (
    (re.compile(r"YOUR_[A-Z0-9_]*(HERE)?", re.IGNORECASE), "a 'YOUR_..._HERE' placeholder"),
    (re.compile(r"<[^<>]*>"), "a '<...>' placeholder"),
    (re.compile(r"change[-_ ]?me", re.IGNORECASE), "'changeme'"),
    (re.compile(r"^dev[-_]", re.IGNORECASE), "a development value ('dev-...')"),
    (re.compile(r"^(test|example|placeholder|todo|xxx+|replace[-_ ]?me|secret|password)$", re.IGNORECASE),
     "a placeholder word"),
)

SECRET_STRING_LIMIT = 65536
"""Bytes a SecretString may hold (CreateSecret / PutSecretValue: SecretStringType max 65536)."""

MIN_SUPPLIED_LENGTH = {"critical": 16, "configuration": 1}
"""Shortest value a person may supply for each class."""


def placeholder_problem(value: str, secret_class: str) -> str | None:
    """Why a supplied value looks like a placeholder or development value, or None if it does not.

    The message describes the kind of problem only; it never quotes the value.
    """
    for pattern, what in PLACEHOLDERS:
        if pattern.search(value):
            return f"the value is {what}, not a real value"
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

    @property
    def command(self) -> str:
        flag = " --secret" if self.secret_value else ""
        value = "" if self.secret_value else " <value>"
        return f"pulumi config set{flag} {PROJECT}:{self.config_key}{value} --stack <stack>"


@dataclass(frozen=True)
class SuppliedValues:
    """The stack's supplied values for one secret, by key (`""` for a single-value secret)."""

    secret: dict[str, pulumi.Output[str]]
    plain: dict[str, str | int | bool]
    missing: list[MissingValue]


def read_supplied(catalog: Catalog, name: str, entry: Secret, settings: StackSettings) -> SuppliedValues:
    """Read the external and plain config values of one catalog secret from the stack's config."""
    config = pulumi.Config(PROJECT)
    secret_values: dict[str, pulumi.Output[str]] = {}
    plain: dict[str, str | int | bool] = {}
    missing: list[MissingValue] = []
    supplied_bytes = 0
    contributing: list[str] = []
    for key, value in entry.values.items():
        if value.external is not None:
            ckey = config_key(name, key, value.external.config)
            full_key = f"{PROJECT}:{ckey}"
            # The plaintext is what get_secret would wrap; reading it here lets every check run before
            # the program registers anything (a bad value never leaves a half-applied stack).
            supplied = pulumi.runtime.get_config(full_key)
            if supplied is None:
                gap = MissingValue(name, key, ckey, value.required)
                if value.required and not settings.allow_missing_values:
                    raise ConfigurationError(
                        settings.file,
                        "the external value is not set; set it with "
                        f"`{gap.command.replace('<stack>', settings.stack)}`",
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
            problem = placeholder_problem(supplied, entry.class_)
            if problem:
                raise ConfigurationError(settings.file, problem, secret=name, field=full_key)
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
            if raw is None and not value.required:
                missing.append(MissingValue(name, key, ckey, required=False, secret_value=False))
                continue
            if raw is None:
                raise ConfigurationError(
                    settings.file, f"not set; set it with `pulumi config set {PROJECT}:{ckey} <value> "
                    f"--stack {settings.stack}`", secret=name, field=f"{PROJECT}:{ckey}",
                )
            problem = placeholder_problem(raw, "configuration")
            if problem:
                raise ConfigurationError(settings.file, problem, secret=name, field=f"{PROJECT}:{ckey}")
            try:
                plain[key] = typed(raw, value.type)
            except ValueError as exc:
                raise ConfigurationError(settings.file, str(exc), secret=name, field=f"{PROJECT}:{ckey}") from None
            supplied_bytes += len(raw.encode())
            contributing.append(f"{PROJECT}:{ckey}")
    if supplied_bytes > SECRET_STRING_LIMIT:
        # A lower bound of the stored value (JSON and generated values add to it): AWS refuses it anyway.
        raise ConfigurationError(
            settings.file, f"the supplied values add up to {supplied_bytes:,} bytes; a secret holds at most "
            f"{SECRET_STRING_LIMIT:,} (SecretString)", secret=name, field=", ".join(contributing),
        )
    return SuppliedValues(secret=secret_values, plain=plain, missing=missing)


def catalog_config_keys(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Every stack config key a catalog value reads -> (secret, key), over all environments."""
    keys: dict[str, tuple[str, str]] = {}
    for name, entry in catalog.secrets.items():
        for key, value in entry.values.items():
            source = value.external or value.config
            if source is not None:
                keys[config_key(name, key, source.config)] = (name, key)
    return keys


def check_config_keys(catalog: Catalog, settings: StackSettings) -> None:
    """Refuse a key under `secrets-platform:` that neither the project nor the catalog knows: a typo
    (`recoveryWindowDayz`, a misspelled external value) would otherwise be ignored in silence."""
    known = SETTINGS_KEYS | set(catalog_config_keys(catalog))
    given = {*pulumi.runtime.config.CONFIG.get(), *pulumi.runtime.config.get_config_env()}
    prefix = f"{PROJECT}:"
    for full in sorted(k for k in given if k.startswith(prefix)):
        key = full.removeprefix(prefix)
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f"did you mean {prefix}{close[0]}?" if close else "remove it, or add the value it sets to the catalog"
        raise ConfigurationError(settings.file, f"unknown key: neither a setting nor a value of {catalog.path} "
                                 f"({hint})", field=full)
