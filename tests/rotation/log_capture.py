"""What the rotation tests' log fixture (conftest.py `rotation_logs`) captures and checks."""

from __future__ import annotations

import json
import logging
from typing import Any


class RotationLogs(logging.Handler):
    """Every record of the `rotation` logger (and its children) during one test, at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.values: list[str] = []
        """The secret values the test's rotations held (filled at teardown)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        """All captured records as a handler would write them, tracebacks included."""
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        return "\n".join(formatter.format(record) for record in self.records)


NOT_SECRET_KEYS = frozenset({
    "username", "host", "port", "dbname", "engine", "masterarn", "alg", "kid", "tls", "sslmode",
    "public_key_pem", "jwks",
})
"""JSON keys of rotated secrets that are not secret: logs may name a user, a host or a key id."""
SHORTEST_SECRET = 8
"""Shorter leaves are not generated secrets (a port, a flag) and would match by chance."""


def secret_values(text: str) -> list[str]:
    """The values inside one SecretString: the string itself and, for JSON, every secret leaf."""
    found = [text]
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a hostile value of thousands of nested brackets
        document = None
    if isinstance(document, dict):
        found += [v for k, v in document.items() if k not in NOT_SECRET_KEYS and isinstance(v, str)]
    return [v for v in found if len(v) >= SHORTEST_SECRET]


def leaked(logs: str, values: list[str]) -> int:
    """How many of `values` occur in `logs` (a count, so that a failure never prints a value)."""
    return sum(1 for v in values if v and v in logs)


def secret_versions(sm: Any) -> dict[str, frozenset[str]]:
    """Secret ARN -> its version ids, for every secret in the emulator."""
    found: dict[str, frozenset[str]] = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for entry in page["SecretList"]:
            found[entry["ARN"]] = frozenset(entry.get("SecretVersionsToStages") or {})
    return found


def values_of(sm: Any, arn: str) -> list[str]:
    """Every value each version of a secret holds (AWSCURRENT, AWSPENDING, AWSPREVIOUS and unlabelled)."""
    values: list[str] = []
    versions = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    for version in versions:
        try:
            got = sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
        except sm.exceptions.ResourceNotFoundException:
            continue  # created empty: no value yet
        if got.get("SecretString"):
            values += secret_values(got["SecretString"])
    return values
