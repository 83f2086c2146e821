"""`python -m ops check-connection --stack <s> [<secret>]`: do the stored credentials log in?

For every PostgreSQL and Redis credential of the stack (or the one named), it reads AWSCURRENT and runs the
rotation strategy's own login test against the server the secret names (`SELECT 1` as that user, or Redis
`AUTH` + `PING`), from where the command runs: a server in private subnets answers only inside its VPC
(run it where the rotation function runs, or through a bastion). It prints PASS or FAIL per secret and the
driver's reason with every known value removed, never a value. It needs GetSecretValue on those secrets
(the read-only role of `ops due` has none) and the test packages (`make .venv/.dev`: psycopg, redis).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, TextIO

from components.catalog import Rotation
from ops.aws import NOT_FOUND, error_code
from ops.stack import OpsError, Stack

SERVER_STRATEGIES = ("postgres-single-user", "postgres-alternating-users", "redis-acl")
"""The strategies whose secret is a credential for a server the command can log in to."""


@dataclass(frozen=True)
class Check:
    """One credential's outcome."""

    secret: str
    """The full secret name."""
    strategy: str
    result: str
    """`PASS`, `FAIL` or `NO VALUE`."""
    reason: str = ""


def login(strategy: str, value: str, where: str) -> str | None:
    """None if the credential logs in, else the reason (values redacted by the strategy)."""
    if strategy == "redis-acl":
        from rotation.strategies import redis_acl

        return redis_acl.try_login(redis_acl.parse(value, where))
    from rotation.strategies import postgres

    return postgres.try_login(postgres.parse(value, where))


def check(stack: Stack, client: Any, only: str | None = None) -> list[Check]:
    from rotation.errors import RotationError

    secrets = stack.secrets
    if only is not None:
        name, entry = stack.resolve(only)
        secrets = {name: entry}
    results: list[Check] = []
    for name, entry in secrets.items():
        rotation = entry.rotation
        if not isinstance(rotation, Rotation) or rotation.strategy not in SERVER_STRATEGIES:
            if only is not None:
                raise OpsError(f"{stack.full_name(name)} is not a PostgreSQL or Redis credential: nothing to log in to")
            continue
        full = stack.full_name(name)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = client.get_secret_value(SecretId=full, VersionStage="AWSCURRENT")
        except ClientError as exc:
            if error_code(exc) == NOT_FOUND:
                results.append(Check(full, rotation.strategy, "NO VALUE", "missing in AWS or no AWSCURRENT version"))
                continue
            raise OpsError(f"read {full}: AWS GetSecretValue failed: {error_code(exc)}") from None
        except BotoCoreError as exc:
            raise OpsError(f"read {full}: {exc}") from None
        text = value.get("SecretString")
        if not isinstance(text, str):
            results.append(Check(full, rotation.strategy, "FAIL", "AWSCURRENT holds no JSON text"))
            continue
        try:
            reason = login(rotation.strategy, text, f"{full} (AWSCURRENT)")
        except RotationError as exc:
            # The strategy's own parse refusal: names the key, never the value.
            reason = str(exc)
        results.append(Check(full, rotation.strategy, "FAIL" if reason else "PASS", reason or ""))
    return results


def render(stack: Stack, results: list[Check], out: TextIO) -> None:
    out.write(f"Connection check of stack '{stack.name}' (AWSCURRENT of each PostgreSQL and Redis credential):\n")
    if not results:
        out.write("  no PostgreSQL or Redis credential in this stack\n")
    for r in results:
        out.write(f"  {r.result:8} {r.secret} ({r.strategy}){': ' + r.reason if r.reason else ''}\n")


def failed(results: list[Check]) -> bool:
    return any(r.result != "PASS" for r in results)


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("check-connection", parents=parents,
                                 help="log in with the stored PostgreSQL and Redis credentials (PASS/FAIL, no values)")
    parser.add_argument("secret", nargs="?", default=None, help="one secret (catalog or full name); default all")
