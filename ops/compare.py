"""`compare`: a production secret must not share a value with the same secret of another environment.

Reads both environments' AWSCURRENT values (the caller needs read access to both), compares the
generated (by the program or the rotation function) and externally supplied values key by key in
constant time, and reports only which secrets and keys are equal, never a value. Plain
configuration values may be equal (a port, an account id) and are not compared.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, TextIO

from ops.aws import call, describe
from ops.stack import OpsError, Stack


@dataclass(frozen=True)
class Finding:
    """One secret (or JSON key) of the catalog and what the comparison found."""

    secret: str
    key: str
    result: str
    """`different`, `SAME`, or `not comparable (<why>)`."""


def _value(client: Any, full: str) -> str | None:
    if call(f"secret {full}", describe, client=client, name=full) is None:
        return None
    answer = call(f"secret {full}", client.get_secret_value, SecretId=full, VersionStage="AWSCURRENT")
    return answer.get("SecretString")


def _keys(text: str | None, grouped: bool) -> dict[str, str] | None:
    if text is None:
        return None
    if not grouped:
        return {"": text}
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return {k: str(v) for k, v in document.items()} if isinstance(document, dict) else None


def compare(stack: Stack, other: Stack, client: Any, other_client: Any) -> list[Finding]:
    """Every secret value both stacks have, compared."""
    if stack.catalog.app != other.catalog.app:
        raise OpsError(f"stacks '{stack.name}' and '{other.name}' deploy different applications")
    if stack.environment == other.environment:
        raise OpsError(f"stacks '{stack.name}' and '{other.name}' are the same environment")
    findings: list[Finding] = []
    for name, entry in stack.secrets.items():
        if name not in other.secrets:
            continue
        compared = [k for k, v in entry.values.items() if v.source in ("generate", "external", "rotation")]
        if not compared:
            continue
        mine = _keys(_value(client, stack.full_name(name)), entry.grouped)
        theirs = _keys(_value(other_client, other.full_name(name)), entry.grouped)
        for key in compared:
            if mine is None or theirs is None or key not in mine or key not in theirs:
                findings.append(Finding(name, key, "not comparable (missing in one environment)"))
            elif hmac.compare_digest(mine[key].encode(), theirs[key].encode()):
                findings.append(Finding(name, key, "SAME"))
            else:
                findings.append(Finding(name, key, "different"))
    return findings


def render(stack: Stack, other: Stack, findings: list[Finding], out: TextIO) -> None:
    out.write(f"{stack.environment} vs {other.environment} ({len(findings)} values compared, never shown):\n")
    for f in findings:
        where = f.secret + (f" key {f.key}" if f.key else "")
        out.write(f"  {f.result:<12} {where}\n")
    same = [f for f in findings if f.result == "SAME"]
    if same:
        out.write(f"{len(same)} value(s) are the same in both environments: rotate them in {stack.environment} "
                  "(python -m ops rotate) or set a new external value\n")
