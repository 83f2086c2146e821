"""`check-env`: does an environment hold every variable the catalog feeds, none of them a placeholder?

Seed 000 section 6 done from the catalog: the variable list is the catalog's (for this stack's
environment), a value that looks like a placeholder is reported with the same check `pulumi up`
applies, and no value is ever printed, only the variable, its source and what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from components.catalog import SIGNING_KEY_STRATEGIES, Rotation, Secret
from components.values import _mismatch, _too_short, placeholder_problem
from ops.stack import OpsError, Stack

OK, MISSING, PLACEHOLDER, OPTIONAL = "OK", "MISSING", "PLACEHOLDER", "OPTIONAL"
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@dataclass(frozen=True)
class VariableCheck:
    """The verdict on one environment variable (never its value)."""

    variable: str
    secret: str
    key: str
    required: bool
    status: str
    problem: str | None = None


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file: `NAME=value`, `export NAME=value`, quoted values, `#` comments.

    Errors name the file and the line number, never the line (it may hold a value).
    """
    from ops.inputs import read_input

    text = read_input(path, "env file")  # a regular file of at most 1 MiB, never /dev/zero or a FIFO
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise OpsError(f"{path}, line {number}: not a NAME=value line")
        name, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if raw.strip()[-1:] == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[name] = value
    return values


PUBLIC_SIGNING_KEYS = frozenset({"alg", "kid", "jwks", "public_key_pem"})
"""The JSON keys of a JWT signing secret that verifiers may see (rotation/strategies/jwt.py)."""


def _signing_key(entry: Secret) -> bool:
    return isinstance(entry.rotation, Rotation) and entry.rotation.strategy in SIGNING_KEY_STRATEGIES


def check(stack: Stack, environ: Mapping[str, str]) -> list[VariableCheck]:
    """Every variable the stack's catalog secrets feed, in catalog order."""
    results: list[VariableCheck] = []
    for name, entry in stack.secrets.items():
        for key, value in entry.values.items():
            # Plain config values are configuration whatever the secret's class (a port, a bucket name);
            # so are a signing key's public parts (a 2-character key ID is no weak secret).
            public = value.config is not None or (_signing_key(entry) and key in PUBLIC_SIGNING_KEYS)
            secret_class = "configuration" if public else entry.class_
            required = entry.required_in(key, stack.environment)
            # Put out of band: the stack config never has it, `ops put` writes it in AWS (and checks it as here).
            put = value.external is not None and value.external.put == "ops"
            where_put = (f"put out of band: `python -m ops put --stack {stack.name} {name}{' ' + key if key else ''}` "
                         "writes it in AWS" if put else None)
            for variable in value.env:
                supplied = environ.get(variable)
                if supplied is None or not supplied.strip():
                    status = MISSING if required else OPTIONAL
                    results.append(VariableCheck(variable, name, key, required, status, where_put))
                    continue
                problem = placeholder_problem(supplied, secret_class, secret=not public)
                if problem is None and put:
                    # The checks `ops put` applies to this value before it writes it (ops/put.py).
                    problem = _too_short(supplied, value.min_length) or _mismatch(supplied, value, stack.environment)
                results.append(VariableCheck(variable, name, key, required, PLACEHOLDER if problem else OK, problem))
        # `together`: once some key of a group is set, the rest are required (both or neither).
        for group in entry.together:
            if any(r.secret == name and r.key in group and r.status in (OK, PLACEHOLDER) for r in results):
                results = [replace(r, required=True, status=MISSING) if r.secret == name and r.key in group
                           and r.status == OPTIONAL else r for r in results]
    return results


def failed(results: list[VariableCheck]) -> bool:
    return any(r.status in (MISSING, PLACEHOLDER) for r in results)


def render(stack: Stack, results: list[VariableCheck], source: str, out: TextIO) -> None:
    out.write(f"Environment check for stack '{stack.name}' ({stack.prefix}*) against {source}\n")
    width = max((len(r.variable) for r in results), default=0)
    for r in results:
        where = r.secret + (f":{r.key}" if r.key else "")
        note = {MISSING: "not set", OPTIONAL: "not set (optional)", OK: "", PLACEHOLDER: r.problem or ""}[r.status]
        if r.status in (MISSING, OPTIONAL) and r.problem:
            note += f"; {r.problem}"
        out.write(f"{r.status:<11} {r.variable:<{width}}  from {where}{'  ' + note if note else ''}\n")
    counts = {s: sum(1 for r in results if r.status == s) for s in (OK, MISSING, PLACEHOLDER, OPTIONAL)}
    out.write(f"\n{counts[OK]} ok, {counts[MISSING]} missing, {counts[PLACEHOLDER]} placeholder, "
              f"{counts[OPTIONAL]} optional not set\n")


def to_json(stack: Stack, results: list[VariableCheck], source: str) -> dict[str, Any]:
    return {
        "stack": stack.name,
        "environment": stack.environment,
        "source": source,
        "variables": [asdict(r) for r in results],
        "ok": not failed(results),
    }
