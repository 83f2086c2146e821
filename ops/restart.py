"""Restart the consumers of a secret whose value an operator changed by hand (`ops rollback`).

A rotation restarts the consumers that read at start (ECS services, Lambda cold starts) through the
`RotationSucceeded` event and the restart function (rotation/consumers.py). A rollback moves AWSCURRENT with
UpdateSecretVersionStage, which sends no such event: without this, an ECS service would keep the value rolled
back from until its next deployment. The same Restarter runs here, with the operator's credentials, and the
rollback's time as the change: a consumer deployed since is left alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from components.catalog import Secret
from components.consumers import KEY, parse_consumption, restart_targets
from components.errors import ConfigurationError
from ops.aws import client_config, error_code
from ops.stack import OpsError, Stack
from preview.stackconfig import load_stack_config
from rotation.consumers import Restarter


def targets_of(stack: Stack, name: str, project_dir: Path, config_file: Path | None) -> list[dict[str, str]]:
    """The ECS services and Lambda functions that read `name` at start, from the stack's `consumption`."""
    try:
        config = load_stack_config(project_dir, stack.name, config_file)
        file = str(config_file) if config_file is not None else config.config_file.name
        raw = config.values.get(KEY)
        if raw is None:
            return []
        secrets: dict[str, Secret] = stack.secrets
        consumers = sorted({c for e in secrets.values() for c in e.consumers})
        consumption = parse_consumption(json.loads(raw) if isinstance(raw, str) else raw, file,
                                        config.values.get("secrets-platform:accountId") or "", stack.region,
                                        consumers)
    except ConfigurationError as exc:
        raise OpsError(str(exc)) from None
    except ValueError:
        raise OpsError(f"{stack.name}: field '{KEY}' is not a YAML mapping") from None
    plan = restart_targets({name: secrets[name]}, consumption, stack.catalog.app, stack.environment)
    return [plan["targets"][c] for c in plan["secrets"].get(f"{stack.prefix}{name}", [])]


def describe(target: dict[str, str]) -> str:
    return (f"ECS service {target['cluster']}/{target['service']}" if target["kind"] == "ecs"
            else f"Lambda function {target['function']}")


def by_hand(target: dict[str, str]) -> str:
    """The command that restarts one consumer, for the operator when this could not."""
    if target["kind"] == "ecs":
        return (f"aws ecs update-service --cluster {target['cluster']} --service {target['service']} "
                "--force-new-deployment")
    return f"a configuration change of Lambda function {target['function']} (any variable)"


def restart(stack: Stack, targets: list[dict[str, str]], changed_at: dt.datetime, out: TextIO, err: TextIO, *,
            endpoint_url: str | None, clients: Callable[[str, str | None], tuple[Any, Any]] | None = None) -> int:
    """Restart each of `targets` (from `targets_of`, read before the change so that a mistake in the stack file
    stops the command before it) that has not started since `changed_at`; the number that failed."""
    if not targets:
        out.write("  no consumer of this secret reads it only at start (secrets-platform:consumption): "
                  "nothing to restart\n")
        return 0
    ecs, lambda_ = (clients or _clients)(stack.region, endpoint_url)
    restarter = Restarter(ecs, lambda_)
    failed = 0
    for target in targets:
        try:
            if target["kind"] == "ecs":
                done = restarter.ecs_service(target["cluster"], target["service"], changed_at)
            else:
                done = restarter.function(target["function"], changed_at)
        except Exception as exc:  # noqa: BLE001 - each consumer is reported, the others still restarted
            failed += 1
            reason = error_code(exc) or type(exc).__name__
            err.write(f"  {describe(target)} not restarted ({reason}); restart it yourself: {by_hand(target)}\n")
            continue
        out.write(f"  {describe(target)}: {'restarted' if done else 'started after the change already'}\n")
    return failed


def _clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return (boto3.client("ecs", region_name=region, endpoint_url=endpoint, config=client_config()),
            boto3.client("lambda", region_name=region, endpoint_url=endpoint, config=client_config()))
