"""Which stack deploys which environment: no stack takes over another stack's environment.

`secrets-platform:environment` defaults to the stack's name and may be set to another one (a `dev-alice`
stack in a sandbox account deploying `dev`). Set to the environment another stack of the project deploys
in the same account, it would write that environment's secret names, tags, key alias and policies: a
`staging` stack saying `environment: production` manages production's secrets with staging's
settings and staging's pipeline (the pack then reports only advisory findings, staging's level).

The rule: two stack files of the project (`Pulumi.<stack>.yaml` beside `Pulumi.yaml`) may not deploy the
same environment in the same account, except that the stack named after the environment owns it (the
other is refused). Stacks in other accounts are not concerned (each developer's sandbox account may have
its own `dev`), nor is a stack file that cannot be read (its own run reports it).

A recovery stack (`secrets-platform:recoveryOf`, components/recovery.py) is the exception: it runs the
environment of the stack it names, in a replica region, after a failover. Then the named stack is the one
refused, for as long as the recovery stack's file is in the project.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.errors import ConfigurationError

PROJECT = "secrets-platform"
KEY = f"{PROJECT}:environment"
ACCOUNT = f"{PROJECT}:accountId"
MAX_BYTES = 1_000_000
"""Another stack's file larger than this is not read (nor is one that is not a regular file in the project)."""


def _scalars(node: yaml.Node | None, wanted: tuple[str, ...]) -> dict[str, yaml.Node]:
    """The values of `wanted` keys of a mapping node (the nodes themselves: nothing is constructed, so
    aliases are never expanded)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value in wanted}


def _stack_file(path: Path, project: Path) -> yaml.Node | None:
    """Another stack file's YAML tree, or None when it is not a regular file of the project under the size cap
    or not YAML (a link out of the project, a FIFO, a huge or binary file is skipped, never read)."""
    try:
        resolved = path.resolve()
        if not resolved.is_relative_to(project) or not resolved.is_file() or resolved.stat().st_size > MAX_BYTES:
            return None
        return yaml.compose(resolved.read_bytes(), Loader=yaml.CSafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _claim(path: Path, project: Path) -> tuple[str, str] | None:
    """(environment, account) another stack file declares, or None when it cannot be read as one."""
    stack = path.name[len("Pulumi."):-len(".yaml")]
    root = _stack_file(path, project)
    if root is None:
        return None
    config = _scalars(root, ("config",)).get("config")
    values = _scalars(config, (KEY, ACCOUNT))
    environment, account = values.get(KEY), values.get(ACCOUNT)
    if not isinstance(account, yaml.ScalarNode) or (environment is not None
                                                    and not isinstance(environment, yaml.ScalarNode)):
        return None
    return (environment.value if environment is not None and environment.value else stack), account.value


def check_environment_claim(stack: str, environment: str, account_id: str, file: str,
                            project_dir: Path | None = None, recovery_of: str | None = None) -> None:
    """Refuse `environment` when another stack of the project deploys it in the same account and this
    stack is not the one named after it, unless this stack is that stack's recovery stack (`recovery_of`);
    and refuse the owner itself while a recovery stack runs its environment (components/recovery.py)."""
    project = (project_dir or Path.cwd()).resolve()
    if recovery_of is not None:
        _check_recovery(stack, environment, account_id, file, project, recovery_of)
    else:
        _check_not_recovering(stack, account_id, file, project)
    if environment == stack:
        return  # the stack named after an environment owns it
    for path in sorted(project.glob("Pulumi.*.yaml")):
        other = path.name[len("Pulumi."):-len(".yaml")]
        if other == stack or other == recovery_of:
            continue
        claim = _claim(path, project)
        if claim == (environment, account_id):
            raise ConfigurationError(
                file, f"'{environment}' is the environment stack '{other}' deploys in account {account_id} "
                f"({path.name}); a second stack would take over its secrets, key and policies. Remove "
                f"{KEY} (it defaults to the stack name, '{stack}') or name an environment of its own",
                field=KEY,
            )


RECOVERY = f"{PROJECT}:recoveryOf"


def _recovering(path: Path, project: Path) -> tuple[str, str] | None:
    """(primary stack, account) a stack file's `recoveryOf` names, or None."""
    root = _stack_file(path, project)
    if root is None:
        return None
    values = _scalars(_scalars(root, ("config",)).get("config"), (RECOVERY, ACCOUNT))
    primary = _scalars(values.get(RECOVERY), ("stack",)).get("stack")
    account = values.get(ACCOUNT)
    if not isinstance(primary, yaml.ScalarNode) or not isinstance(account, yaml.ScalarNode):
        return None
    return primary.value, account.value


def _check_not_recovering(stack: str, account_id: str, file: str, project: Path) -> None:
    """A stack whose environment a recovery stack runs does not run: both would write the same secrets'
    names, and the primary's `pulumi up` would put its replicas back over the promoted secrets."""
    for path in sorted(project.glob("Pulumi.*.yaml")):
        other = path.name[len("Pulumi."):-len(".yaml")]
        if other != stack and _recovering(path, project) == (stack, account_id):
            raise ConfigurationError(
                file, f"stack '{other}' ({path.name}) runs this stack's environment in another region since a "
                "failover; fail back first (docs/failover.md, \"Failback\"), then remove that stack file",
                field=RECOVERY,
            )


def _check_recovery(stack: str, environment: str, account_id: str, file: str, project: Path,
                    primary: str) -> None:
    """A recovery stack names a stack of the project that deploys this very environment in this account."""
    path = project / f"Pulumi.{primary}.yaml"
    if _claim(path, project) != (environment, account_id):
        raise ConfigurationError(
            file, f"'{primary}' is no stack of this project deploying environment '{environment}' in account "
            f"{account_id} (Pulumi.{primary}.yaml); a recovery stack runs the environment of the stack it names",
            field=f"{RECOVERY}.stack",
        )
    if stack == environment:
        raise ConfigurationError(
            file, f"a stack named after environment '{environment}' owns it and cannot be a recovery stack",
            field=RECOVERY,
        )
