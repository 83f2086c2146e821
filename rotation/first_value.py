"""The first value of a generated secret no function rotates (`rotation: on-compromise` or `manual`).

`pulumi up` invokes this function once per such secret (pulumi-aws `aws.lambda_.Invocation`, created with the
secret): it makes the value inside AWS, so the value never enters Pulumi state, and nothing rotates it
afterwards. The event names the secret and nothing else: `{"FirstValue": "<secret name>"}`.

- It writes only when the secret has no AWSCURRENT version. A secret that has a value (a stack deployed before
  this function existed, a value put by hand, a re-run) is left as it is: a re-run never overwrites.
- Its version's ClientRequestToken is derived from the secret's name, so two runs racing on an empty secret
  write one version: PutSecretValue refuses a second, different value under the same token.
- It never reads a value (no GetSecretValue) and returns `{"secret": <name>, "written": true|false}`: the
  Invocation keeps that result in Pulumi state, so it must hold nothing secret.
- `{"FirstValue": "<secret name>", "Replace": true}` replaces a value that leaked (`ops rotate --leaked`, invoked
  by an operator): a new value from the same generators becomes AWSCURRENT, the old one AWSPREVIOUS; the answer
  adds the new version's id. The program's Invocation never sends `Replace`, so no deploy can overwrite a value.
- A secret whose other keys are put with `python -m ops put` (FIRST_VALUE_KEPT): its first value holds the
  generated keys only, and `ops put` adds the others, keeping these. A replace is refused for it: the function
  cannot read the put keys, so a new version would drop them.

Environment (never secret values):
  FIRST_VALUE_TARGETS  JSON object: secret NAME -> {"<json key>" | "": <generation spec>} ("" for a
                       single-value secret; rotation/generate.py reads the specs).
  FIRST_VALUE_KEPT     optional JSON object: secret NAME -> [keys put with `python -m ops put`] (names only).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rotation import generate
from rotation.errors import ConfigurationError, ExternalServiceError, RotationError, SecretNotAllowedError
from rotation.handler import _client, cap_sdk_logging

logger = logging.getLogger("rotation")

CURRENT = "AWSCURRENT"
TOKEN_NAMESPACE = uuid.UUID("5b0b3f0e-7c1e-4a53-9d43-0f1c4e2a7b61")
"""Fixed: the first value's ClientRequestToken is uuid5(this, secret name), the same on every run."""


def load_targets(environ: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Secret name -> key -> validated generation spec, from FIRST_VALUE_TARGETS."""
    try:
        raw = json.loads(environ.get("FIRST_VALUE_TARGETS", ""))
    except ValueError as exc:
        raise ConfigurationError("FIRST_VALUE_TARGETS is not valid JSON") from exc
    if not isinstance(raw, dict) or not raw:
        raise ConfigurationError("FIRST_VALUE_TARGETS must be a non-empty JSON object: secret name -> keys")
    targets: dict[str, dict[str, dict[str, Any]]] = {}
    for name, keys in raw.items():
        if not isinstance(keys, dict) or not keys or ("" in keys and len(keys) > 1):
            raise ConfigurationError(f"FIRST_VALUE_TARGETS[{name!r}] must map one '' or JSON keys to specs")
        try:
            targets[name] = {key: dict(generate.validate(spec)) for key, spec in keys.items()}
        except ConfigurationError as exc:
            raise ConfigurationError(f"FIRST_VALUE_TARGETS[{name!r}]: {exc}") from exc
    return targets


def load_kept(environ: Mapping[str, str], targets: Mapping[str, Any]) -> dict[str, list[str]]:
    """Secret name -> the keys `python -m ops put` writes in it, from FIRST_VALUE_KEPT (absent: none)."""
    text = environ.get("FIRST_VALUE_KEPT")
    if text is None:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError("FIRST_VALUE_KEPT is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError("FIRST_VALUE_KEPT must be a JSON object: secret name -> keys put by ops")
    for name, keys in raw.items():
        if name not in targets or not isinstance(keys, list) or not keys or not all(
                isinstance(k, str) and k and k not in targets[name] for k in keys):
            raise ConfigurationError(f"FIRST_VALUE_KEPT[{name[:100]!r}] must list keys of a target that it does not "
                                     "generate")
    return raw


def first_token(name: str) -> str:
    """The first value's version id: the same for every run on this secret (32-64 characters)."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, name))


def _has_current(client: Any, name: str) -> bool:
    try:
        description = client.describe_secret(SecretId=name)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
        raise ExternalServiceError(f"Secrets Manager describe_secret failed for {name}: {code}") from exc
    return any(CURRENT in stages for stages in (description.get("VersionIdsToStages") or {}).values())


def make_first_value(event: Mapping[str, Any], client: Any, targets: Mapping[str, Mapping[str, Any]],
                     kept: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """Write the secret's first value unless it has one; the answer holds no value."""
    if not isinstance(event, Mapping) or set(event) not in ({"FirstValue"}, {"FirstValue", "Replace"}):
        raise RotationError('a first-value event is {"FirstValue": "<secret name>"} and nothing else, or '
                            '{"FirstValue": "<secret name>", "Replace": true}')
    name = event["FirstValue"]
    if not isinstance(name, str) or name not in targets:
        raise SecretNotAllowedError(f"this function makes the first value of {sorted(targets)} only")
    if "Replace" in event:
        if event["Replace"] is not True:  # only an explicit `true`: never a string or a number that reads as one
            raise RotationError('"Replace" must be true')
        if kept and kept.get(name):
            raise RotationError(refused_replace(name, kept[name]))
        return replace_value(name, client, targets[name])
    if _has_current(client, name):
        logger.info("first value: secret %s has a value already; nothing written", name)
        return {"secret": name, "written": False}
    try:
        client.put_secret_value(SecretId=name, ClientRequestToken=first_token(name),
                                SecretString=_document(targets[name]), VersionStages=[CURRENT])
    except (ClientError, BotoCoreError) as exc:
        # A run racing this one stored its value under the same token first: that value stands.
        if _has_current(client, name):
            logger.info("first value: secret %s got its value from another run; nothing written", name)
            return {"secret": name, "written": False}
        code = exc.response.get("Error", {}).get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
        raise ExternalServiceError(f"Secrets Manager put_secret_value failed for {name}: {code}") from exc
    logger.info("first value: secret %s has its first value (version %s)", name, first_token(name))
    return {"secret": name, "written": True}


def refused_replace(name: str, put: list[str]) -> str:
    """Why a secret with keys put by ops is not replaced here, and what to do instead (names only)."""
    return (f"secret {name} also holds {', '.join(put)}, put with `python -m ops put`, which this function cannot "
            "read: a replace would drop them, so nothing was written; write a new version holding every key "
            f"yourself (`aws secretsmanager put-secret-value --secret-id {name}`), then re-put the leaked keys with "
            "`python -m ops put` if they leaked too")


def _document(keys: Mapping[str, Any]) -> str:
    values = {key: generate.generate(spec) for key, spec in keys.items()}
    return values[""] if "" in values else json.dumps(values, separators=(",", ":"))


def replace_value(name: str, client: Any, keys: Mapping[str, Any]) -> dict[str, Any]:
    """A new value for a secret that has one (`ops rotate --leaked`): made by the secret's own generators, stored
    as AWSCURRENT (PutSecretValue moves AWSPREVIOUS to the version it leaves). The answer holds the new version's
    id, never a value."""
    if not _has_current(client, name):
        raise RotationError(f"secret {name} has no value to replace: its first value comes from `pulumi up`")
    # A fresh token every time: a replace never reuses the first value's (whose version exists already).
    token = str(uuid.uuid4())
    try:
        client.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=_document(keys),
                                VersionStages=[CURRENT])
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
        raise ExternalServiceError(f"Secrets Manager put_secret_value failed for {name}: {code}") from exc
    logger.info("replace: secret %s has a new value (version %s)", name, token)
    return {"secret": name, "written": True, "version": token}


def lambda_handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """AWS Lambda entry point (handler `rotation.first_value.lambda_handler`)."""
    cap_sdk_logging()
    client = _client(os.environ.get("AWS_REGION"), os.environ.get("SECRETS_MANAGER_ENDPOINT") or None)
    targets = load_targets(os.environ)
    return make_first_value(event, client, targets, load_kept(os.environ, targets))
