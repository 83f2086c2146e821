"""Random values from a generation spec shared with the catalog.

Spec shapes (JSON):
  {"kind": "bytes", "bytes": 32, "encoding": "hex" | "base64" | "base64url"}   # = openssl rand -hex 32 / -base64 48
  {"kind": "password", "length": 64, "alphabet": "alphanumeric" | "hex" | "custom",
   "chars": "<only for custom>", "exclude": "<chars to drop>"}
  {"kind": "uuid"}
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from typing import Any

from rotation.errors import ConfigurationError

ALPHANUMERIC = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
MIN_BYTES = 16
MAX_BYTES = 1024
MIN_LENGTH = 16
MAX_LENGTH = 4096
# Below this many distinct characters a password is too guessable for its length.
MIN_ALPHABET = 10

DEFAULT_PASSWORD_SPEC: Mapping[str, Any] = {"kind": "password", "length": 32, "alphabet": "alphanumeric"}

_KEYS = {
    "bytes": {"kind", "bytes", "encoding"},
    "password": {"kind", "length", "alphabet", "chars", "exclude"},
    "uuid": {"kind"},
}


def _int_field(spec: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = spec.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigurationError(f"generation spec: {name}={value!r} must be an integer in [{low}, {high}]")
    return value


def _alphabet(spec: Mapping[str, Any]) -> str:
    alphabet = spec.get("alphabet", "alphanumeric")
    if alphabet in ("alphanumeric", "hex"):
        if "chars" in spec:
            raise ConfigurationError("generation spec: 'chars' is only allowed with alphabet 'custom'")
        chars = ALPHANUMERIC if alphabet == "alphanumeric" else HEX
    elif alphabet == "custom":
        custom = spec.get("chars")
        if not isinstance(custom, str) or not custom:
            raise ConfigurationError("generation spec: alphabet 'custom' needs a non-empty 'chars' string")
        chars = custom
    else:
        raise ConfigurationError(f"generation spec: alphabet {alphabet!r} is not 'alphanumeric', 'hex' or 'custom'")
    exclude = spec.get("exclude", "")
    if not isinstance(exclude, str):
        raise ConfigurationError("generation spec: 'exclude' must be a string")
    # dict.fromkeys keeps order and drops duplicates, so each character has the same odds.
    pool = "".join(c for c in dict.fromkeys(chars) if c not in exclude)
    if len(pool) < MIN_ALPHABET:
        raise ConfigurationError(
            f"generation spec: {len(pool)} usable characters after 'exclude', at least {MIN_ALPHABET} needed"
        )
    return pool


def validate(spec: object) -> Mapping[str, Any]:
    """Check a spec's shape; return it typed. Raises ConfigurationError quoting the bad field."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"generation spec must be an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _KEYS:
        raise ConfigurationError(f"generation spec: kind {kind!r} is not one of {sorted(_KEYS)}")
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise ConfigurationError(f"generation spec ({kind}): unknown fields {sorted(unknown)}")
    if kind == "bytes":
        _int_field(spec, "bytes", MIN_BYTES, MAX_BYTES)
        if spec.get("encoding") not in ("hex", "base64", "base64url"):
            raise ConfigurationError(
                f"generation spec: encoding {spec.get('encoding')!r} is not 'hex', 'base64' or 'base64url'")
    elif kind == "password":
        _int_field(spec, "length", MIN_LENGTH, MAX_LENGTH)
        _alphabet(spec)
    return spec


def generate(spec: Mapping[str, Any]) -> str:
    """Return a fresh random value for `spec` (validated first)."""
    validate(spec)
    kind = spec["kind"]
    if kind == "bytes":
        raw = secrets.token_bytes(spec["bytes"])
        if spec["encoding"] == "hex":
            return raw.hex()
        if spec["encoding"] == "base64url":
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return base64.b64encode(raw).decode("ascii")
    if kind == "password":
        pool = _alphabet(spec)
        return "".join(secrets.choice(pool) for _ in range(spec["length"]))
    # Imported here: only a `uuid` spec needs it, and on Linux it imports `platform` too (about 2 ms of
    # every cold start of the password strategies). uuid4 draws from os.urandom, the same source as `secrets`.
    import uuid

    return str(uuid.uuid4())
