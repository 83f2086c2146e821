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


def _claim(path: Path, project: Path) -> tuple[str, str] | None:
    """(environment, account) another stack file declares, or None when it cannot be read as one."""
    stack = path.name[len("Pulumi."):-len(".yaml")]
    try:
        resolved = path.resolve()
        if not resolved.is_relative_to(project) or not resolved.is_file() or resolved.stat().st_size > MAX_BYTES:
            return None
        root = yaml.compose(resolved.read_bytes(), Loader=yaml.CSafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    config = _scalars(root, ("config",)).get("config")
    values = _scalars(config, (KEY, ACCOUNT))
    environment, account = values.get(KEY), values.get(ACCOUNT)
    if not isinstance(account, yaml.ScalarNode) or (environment is not None
                                                    and not isinstance(environment, yaml.ScalarNode)):
        return None
    return (environment.value if environment is not None and environment.value else stack), account.value


def check_environment_claim(stack: str, environment: str, account_id: str, file: str,
                            project_dir: Path | None = None) -> None:
    """Refuse `environment` when another stack of the project deploys it in the same account and this
    stack is not the one named after it."""
    if environment == stack:
        return  # the stack named after an environment owns it
    project = (project_dir or Path.cwd()).resolve()
    for path in sorted(project.glob("Pulumi.*.yaml")):
        other = path.name[len("Pulumi."):-len(".yaml")]
        if other == stack:
            continue
        claim = _claim(path, project)
        if claim == (environment, account_id):
            raise ConfigurationError(
                file, f"'{environment}' is the environment stack '{other}' deploys in account {account_id} "
                f"({path.name}); a second stack would take over its secrets, key and policies. Remove "
                f"{KEY} (it defaults to the stack name, '{stack}') or name an environment of its own",
                field=KEY,
            )
