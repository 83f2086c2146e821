"""A stack's config as the Pulumi engine would hand it to the program, read from the YAML files.

`secure:` values are ciphertext that only the stack's secrets provider can open; the offline
preview replaces each with a stand-in generated at run time and marks the key secret, so the
program takes the same path (`require_secret`) and nothing real is ever decrypted or printed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.catalog import load_yaml
from components.errors import ConfigurationError


@dataclass(frozen=True)
class StackConfig:
    """What the program sees through `pulumi.Config`."""

    project: str
    stack: str
    values: dict[str, str]
    """Fully qualified key (`namespace:key`) -> string (JSON for lists and mappings)."""
    secret_keys: list[str]
    """Keys whose values were `secure:` in the file."""
    config_file: Path
    secrets_provider: str = "default"
    """What encrypts the stack's `secure:` values and secret outputs in its state, as the stack file says:
    an `awskms://...` (or other KMS) URL, `passphrase`, or `default` (the file names none: Pulumi Cloud's
    per-stack key, or a passphrase under a self-managed backend)."""


def secrets_provider(document: dict[str, Any]) -> str:
    """The secrets provider a stack file records: `secretsprovider` (written by `pulumi stack init
    --secrets-provider` and `change-secrets-provider`), or `encryptionsalt`, which only the passphrase
    provider writes (pulumi/pulumi `pkg/secrets/passphrase`)."""
    named = document.get("secretsprovider")
    if isinstance(named, str) and named.strip():
        return "passphrase" if named.strip() == "passphrase" else named.strip()
    if document.get("encryptionsalt"):
        return "passphrase"
    return "default"


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_stack_config(project_dir: Path, stack: str, config_file: Path | None = None) -> StackConfig:
    """Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` (or an explicit config file)."""
    project_file = project_dir / "Pulumi.yaml"
    project = load_yaml(project_file)
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise ConfigurationError(str(project_file), "has no project 'name'", field="name")
    name: str = project["name"]
    path = config_file or project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                       for p in path.parent.glob("Pulumi.*.yaml"))
        raise ConfigurationError(
            str(path), f"no such stack config: stack '{stack}' is not defined here "
            f"(stacks: {', '.join(known) or 'none'})",
        )
    document = load_yaml(path) or {}
    if not isinstance(document, dict):
        raise ConfigurationError(str(path), "must be a mapping with a 'config' section")
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigurationError(str(path), "'config' must be a mapping", field="config")

    values: dict[str, str] = {}
    secret_keys: list[str] = []
    # Project-level defaults first (Pulumi.yaml `config:`), then the stack file overrides them.
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(spec, dict) and "default" in spec:
            values[full] = _as_config_string(spec["default"])
        elif not isinstance(spec, dict):
            values[full] = _as_config_string(spec)
    for key, value in raw.items():
        full = key if ":" in str(key) else f"{name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # A stand-in of realistic length; generated here so that it is never a committed value.
            values[full] = secrets.token_urlsafe(32)
            secret_keys.append(full)
        else:
            values[full] = _as_config_string(value)
    return StackConfig(project=name, stack=stack, values=values, secret_keys=secret_keys, config_file=path,
                       secrets_provider=secrets_provider(document))
