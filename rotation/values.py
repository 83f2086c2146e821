"""Parsing secret values and describing failures without leaking them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rotation.errors import SecretFormatError

REDACTED = "***"


def load_object(value: str, what: str, required: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """Parse a JSON object secret and check its required fields and their types.

    `what` names the secret and stage for the message ("filot/production/db (AWSCURRENT)").
    The message names fields and expected types, never the value.
    """
    try:
        data = json.loads(value)
    except ValueError as exc:
        # JSONDecodeError's message holds only a position; the document is not quoted.
        raise SecretFormatError(f"secret {what} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise SecretFormatError(f"secret {what} must be a JSON object, got {type(data).__name__}")
    missing = sorted(k for k in required if data.get(k) is None)
    if missing:
        raise SecretFormatError(f"secret {what} lacks required field(s) {missing}")
    for key, expected in required.items():
        if not isinstance(data[key], expected) or (expected is int and isinstance(data[key], bool)):
            names = "/".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
            raise SecretFormatError(f"secret {what}: field {key!r} must be {names}, got {type(data[key]).__name__}")
    return data


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every known secret value in a third-party error message (belt and braces)."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def describe_exc(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """`ClassName: message` of a driver error, with known secret values removed."""
    return f"{type(exc).__name__}: {redact(str(exc).strip(), secrets)}"
