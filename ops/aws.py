"""The Secrets Manager client of a stack, and AWS errors turned into one-line OpsErrors.

Every client `ops` makes is bounded: a connect and a read timeout and a few retries (botocore's
`Config`; the defaults, 60 s per read and up to 5 legacy attempts, hold a command for minutes against
an endpoint that accepts the connection and never answers), and every listing stops after MAX_PAGES
pages (an endpoint that always returns a new NextToken would otherwise be paged for ever).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from ops.stack import OpsError, Stack

NOT_FOUND = "ResourceNotFoundException"
CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection to the endpoint."""
READ_TIMEOUT = 15.0
"""Seconds to wait for an answer once a request is sent (Secrets Manager answers in well under a second)."""
MAX_RETRIES = 2
"""Retries after the first attempt (botocore Config `retries.max_attempts` counts retries only: botocore/config.py;
`standard` mode retries throttling, 5xx and connection errors with jittered backoff)."""
MAX_PAGES = 1000
"""Pages a listing may take: 1,000 pages of 100 are 100,000 secrets under one prefix, or 100,000 versions."""
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, OverflowError, RuntimeError)
"""What botocore raises parsing an answer of an unexpected shape (a date past year 9999: ValueError or, from
dateutil, RuntimeError; a list where a map belongs: AttributeError)."""


def client_config() -> Any:
    """The botocore Config every `ops` client uses (read at call time, so a test may shorten the bounds)."""
    from botocore.config import Config

    return Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                  retries={"max_attempts": MAX_RETRIES, "mode": "standard"})


def make_client(region: str, endpoint_url: str | None) -> Any:
    """A bounded boto3 Secrets Manager client (`--endpoint-url` / AWS_ENDPOINT_URL for tests)."""
    import boto3

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint, config=client_config())


def secretsmanager(stack: Stack, endpoint_url: str | None = None) -> Any:
    """A boto3 Secrets Manager client in the stack's region (`--endpoint-url` / AWS_ENDPOINT_URL for tests)."""
    from botocore.exceptions import BotoCoreError

    try:
        return make_client(stack.region, endpoint_url)
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

    AWS error messages name resources and parameters, never secret values. An answer botocore cannot
    parse is reported without its text (it may be a GetSecretValue answer).
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = " ".join(str(error.get("Message", "")).split())[:300]
        raise OpsError(f"{what}: AWS {exc.operation_name} failed: {' '.join(str(error.get('Code', 'error')).split())}"
                       f": {message}") from None
    except BotoCoreError as exc:
        raise OpsError(f"{what}: {' '.join(str(exc).split())[:300]}") from None
    except (ResponseParserError, *MALFORMED) as exc:
        raise OpsError(f"{what}: the endpoint's answer is not what the API returns ({type(exc).__name__})") from None


def pages(what: str, fn: Callable[..., Any], max_pages: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every page of a listing (NextToken), each call bounded; at most `max_pages` (MAX_PAGES) pages."""
    limit = MAX_PAGES if max_pages is None else max_pages
    token: str | None = None
    seen: set[str] = set()
    for _ in range(limit):
        page = call(what, fn, **kwargs, **({"NextToken": token} if token else {}))
        if not isinstance(page, dict):
            raise OpsError(f"{what}: the endpoint's answer is not what the API returns")
        yield page
        token = page.get("NextToken")
        if not token:
            return
        if not isinstance(token, str) or token in seen:
            raise OpsError(f"{what}: the endpoint returned the same NextToken twice; stopped")
        seen.add(token)
    raise OpsError(f"{what}: more than {limit:,} pages of results; stopped (an endpoint that never ends a listing?)")


def describe(client: Any, name: str) -> dict[str, Any] | None:
    """DescribeSecret, or None when the secret does not exist."""
    from botocore.exceptions import ClientError

    try:
        return dict(client.describe_secret(SecretId=name))
    except ClientError as exc:
        if error_code(exc) == NOT_FOUND:
            return None
        raise
