"""Lambda entry point: read the deployment from the environment, build the client, dispatch.

Environment (never secret values):
  ROTATION_STRATEGY  token | postgres-single-user | postgres-alternating-users | redis-acl
                     | jwt-hs256 | jwt-rs256
  ROTATION_TARGETS   JSON object: secret NAME -> per-secret parameters of the strategy.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from rotation import strategies as catalogue
from rotation.errors import ConfigurationError
from rotation.protocol import Strategy, rotate

logger = logging.getLogger("rotation")
logger.setLevel(logging.INFO)

SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
"""The AWS SDK's loggers: at DEBUG, botocore logs every request and response body, so every
GetSecretValue and PutSecretValue of a rotation (12-14 passwords) would reach the function's logs."""


def cap_sdk_logging() -> None:
    """Hold the SDK's loggers at INFO whatever the root level: Lambda's advanced logging controls set the
    root logger to DEBUG with AWS_LAMBDA_LOG_LEVEL=DEBUG, and a child set to DEBUG by anyone is raised too.
    Called at import and on every invocation (the runtime may set the level after the import)."""
    for name in SDK_LOGGERS:
        sdk = logging.getLogger(name)
        if sdk.level < logging.INFO:  # NOTSET inherits the root's level, DEBUG is DEBUG
            sdk.setLevel(logging.INFO)
    prefixes = tuple(f"{name}." for name in SDK_LOGGERS)
    for name, child in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(child, logging.Logger) and logging.NOTSET < child.level < logging.INFO \
                and name.startswith(prefixes):
            child.setLevel(logging.INFO)


cap_sdk_logging()


def load_deployment(environ: Mapping[str, str]) -> dict[str, Strategy]:
    """Secret name -> strategy instance, from ROTATION_STRATEGY and ROTATION_TARGETS."""
    strategy_name = environ.get("ROTATION_STRATEGY", "")
    cls = catalogue.load(strategy_name)
    if cls is None:
        raise ConfigurationError(f"ROTATION_STRATEGY={strategy_name!r} is not one of {list(catalogue.NAMES)}")
    raw = environ.get("ROTATION_TARGETS", "")
    try:
        secrets_map = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError("ROTATION_TARGETS is not valid JSON") from exc
    if not isinstance(secrets_map, dict) or not secrets_map:
        raise ConfigurationError("ROTATION_TARGETS must be a non-empty JSON object: secret name -> parameters")
    strategies: dict[str, Strategy] = {}
    for name, params in secrets_map.items():
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigurationError(f"ROTATION_TARGETS[{name!r}] must be an object, got {type(params).__name__}")
        try:
            strategies[name] = cls(params)
        except ConfigurationError as exc:
            raise ConfigurationError(f"ROTATION_TARGETS[{name!r}]: {exc}") from exc
    return strategies


def handle(event: Mapping[str, Any], environ: Mapping[str, str], client: Any) -> None:
    """One protocol step for `event` with the deployment in `environ` and an injected client."""
    cap_sdk_logging()
    rotate(event, client, load_deployment(environ))


@functools.cache
def _client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3  # in the Lambda runtime; imported lazily so the package imports without it

    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)


def lambda_handler(event: Mapping[str, Any], context: object) -> None:
    """AWS Lambda entry point."""
    client = _client(os.environ.get("AWS_REGION"), os.environ.get("SECRETS_MANAGER_ENDPOINT") or None)
    handle(event, os.environ, client)
