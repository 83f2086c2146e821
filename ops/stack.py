"""A deployed stack as the day-2 commands see it: region, environment and catalog secrets.

Everything comes from this repository's own files (`Pulumi.yaml`, `Pulumi.<stack>.yaml`, the
catalog), read with the same functions the program and the offline preview use, so that a secret
name here is exactly the name `pulumi up` gave it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.adopt import load_adoptions
from components.catalog import Catalog, Rotation, Secret, load_catalog, load_yaml
from components.errors import ConfigurationError
from components.public_key import with_public_keys
from components.regions import known_regions
from components.settings import catalog_path
from preview.stackconfig import load_stack_config

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = "production"


class OpsError(Exception):
    """A user mistake or a refused operation: one line on stderr, exit status 2, no traceback."""


@dataclass(frozen=True)
class Stack:
    """One stack of the project, resolved from its config files."""

    name: str
    """The Pulumi stack name."""
    project: str
    """The Pulumi project name (config namespace)."""
    environment: str
    """The environment segment of secret names; `secrets-platform:environment` or the stack name."""
    region: str
    """`aws:region` of the stack."""
    catalog: Catalog
    """The parsed catalog."""
    protected: bool
    """Whether the stack's secrets are protected (`protectSecrets: true`)."""
    adopted: dict[str, str] = field(default_factory=dict)
    """Catalog name -> existing name of each adopted secret (`secrets-platform:adopt`): it keeps its name."""

    @property
    def prefix(self) -> str:
        return f"{self.catalog.app}/{self.environment}/"

    @property
    def is_production(self) -> bool:
        """Production (by stack or environment name) or a protected stack: destructive steps need confirming."""
        return PRODUCTION in (self.name, self.environment) or self.protected

    @property
    def secrets(self) -> dict[str, Secret]:
        """The catalog secrets this stack has, in catalog order, with the published public keys
        (components/public_key.py) that the program derives from them."""
        from components.public_key import with_public_keys

        return with_public_keys(self.catalog.for_environment(self.environment))

    def full_name(self, name: str) -> str:
        return self.adopted.get(name) or f"{self.prefix}{name}"

    def resolve(self, given: str) -> tuple[str, Secret]:
        """A catalog secret by catalog name (`redis`) or full name (`filot/staging/redis`)."""
        short = next((n for n, full in self.adopted.items() if full == given), given.removeprefix(self.prefix))
        entry = self.secrets.get(short)
        if entry is None:
            known = ", ".join(self.secrets) or "none"
            raise OpsError(f"unknown secret '{given}': stack '{self.name}' has no such catalog secret "
                           f"(known: {known})")
        return short, entry


def rotation_days(entry: Secret) -> int | None:
    """The catalog's rotation interval in days, if the secret rotates on an `every_days` schedule."""
    return entry.rotation.every_days if isinstance(entry.rotation, Rotation) else None


def load_stack(stack: str, project_dir: Path = REPO, config_file: Path | None = None) -> Stack:
    """Resolve a stack from `Pulumi.yaml`, `Pulumi.<stack>.yaml` (or `config_file`) and the catalog they name."""
    try:
        config = load_stack_config(project_dir, stack, config_file)
        values = config.values
        file = str(config_file) if config_file is not None else config.config_file.name
        region = values.get("aws:region")
        if not region:
            raise OpsError(f"{file}: stack '{stack}' has no aws:region")
        if region not in known_regions():
            # botocore would build a client for any string and fail on the first call.
            raise OpsError(f"{file}, field 'aws:region': '{region}' is not a region of the aws partition where "
                           "Secrets Manager runs")
        environment = values.get(f"{config.project}:environment") or stack

        def fail(key: str, message: str) -> ConfigurationError:
            return ConfigurationError(file, message, field=key)

        catalog = load_catalog(project_dir / catalog_path(
            values.get(f"{config.project}:catalog") or "catalog.yaml", fail, project_dir))
    except ConfigurationError as exc:
        raise OpsError(str(exc)) from None
    protected = values.get(f"{config.project}:protectSecrets", "false").lower() == "true"
    try:
        # Checked exactly as the program checks them: an entry outside `<app>/<env>/` (another app's, another
        # environment's) would make this stack's commands act on that secret.
        adopted = {n: a.name for n, a in load_adoptions(
            values.get(f"{config.project}:adopt"), file, values.get(f"{config.project}:accountId") or "", region,
            catalog.app, environment, with_public_keys(catalog.for_environment(environment))).items()}
    except ConfigurationError as exc:
        raise OpsError(str(exc)) from None
    return Stack(name=stack, project=config.project, environment=environment, region=region,
                 catalog=catalog, protected=protected, adopted=adopted)


def stack_account_id(stack: str, project_dir: Path = REPO, config_file: Path | None = None) -> str | None:
    """`secrets-platform:accountId` of a stack, when its file sets one."""
    try:
        config = load_stack_config(project_dir, stack, config_file)
    except ConfigurationError as exc:
        raise OpsError(str(exc)) from None
    return config.values.get(f"{config.project}:accountId") or None


def stack_file(stack: str, project_dir: Path = REPO, config_file: Path | None = None) -> dict[str, Any]:
    """The stack file as written (a mapping with its `config`), to derive another stack's file from it."""
    path = config_file or project_dir / f"Pulumi.{stack}.yaml"
    try:
        document = load_yaml(path)
    except ConfigurationError as exc:
        raise OpsError(str(exc)) from None
    if not isinstance(document, dict):
        raise OpsError(f"{path}: must be a mapping with a 'config' section")
    return document


STACK_NAME = r"[A-Za-z0-9_.-]{1,100}"
"""Pulumi's grammar of a stack name (pulumi/pulumi pkg/backend/filestate/backend.go, now pkg/backend/diy:
`stackNameAndProjectRegexp`); `Pulumi.<stack>.yaml` is named after it, so a '/' never reaches a path."""


def check_stack_name(name: str) -> None:
    """Refuse a `--stack` that is not a Pulumi stack name (an organisation-qualified name included)."""
    import re

    if not re.fullmatch(STACK_NAME, name) or name in (".", ".."):
        raise OpsError(f"--stack: {json.dumps(name)} is not a stack name (1-100 letters, digits and _.-; Pulumi's "
                       "grammar): give the stack's own name, without an organisation or project")
