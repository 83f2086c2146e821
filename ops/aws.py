"""The Secrets Manager client of a stack, and AWS errors turned into one-line OpsErrors."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ops.stack import OpsError, Stack

NOT_FOUND = "ResourceNotFoundException"


def secretsmanager(stack: Stack, endpoint_url: str | None = None) -> Any:
    """A boto3 Secrets Manager client in the stack's region (`--endpoint-url` / AWS_ENDPOINT_URL for tests)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    try:
        return boto3.client("secretsmanager", region_name=stack.region, endpoint_url=endpoint)
    except (ValueError, BotoCoreError) as exc:
        # A malformed endpoint URL ("Invalid endpoint: ...") or region; the message names no value.
        raise OpsError(f"cannot make a Secrets Manager client for stack '{stack.name}': {exc}") from None


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def call(what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call one AWS operation; any AWS or connection error becomes an OpsError naming `what`.

    AWS error messages name resources and parameters, never secret values.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise OpsError(f"{what}: AWS {exc.operation_name} failed: {error.get('Code', 'error')}: "
                       f"{error.get('Message', '').strip()}") from None
    except BotoCoreError as exc:
        raise OpsError(f"{what}: {exc}") from None
