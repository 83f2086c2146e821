"""Reading IAM / KMS / resource policy documents as the rules need them."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .core import to_plain


class BadDocument(ValueError):
    """The policy input is not a JSON policy document."""


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: single values become tuples."""

    index: int
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    principal: Any
    condition: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"statement {self.sid!r}" if self.sid else f"statement #{self.index + 1}"

    @property
    def allow(self) -> bool:
        return self.effect == "Allow"

    def condition_keys(self) -> set[str]:
        keys: set[str] = set()
        for block in self.condition.values():
            if isinstance(block, Mapping):
                keys.update(k.lower() for k in block)
        return keys


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def parse(document: Any) -> tuple[str, list[Statement]]:
    """(raw JSON text, statements) of a `policy` input (a JSON string or an object)."""
    doc = to_plain(document)
    if isinstance(doc, str):
        text = doc
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise BadDocument(f"policy is not valid JSON ({exc})") from exc
    else:
        text = json.dumps(doc)
    if not isinstance(doc, dict):
        raise BadDocument("policy is not a JSON object")
    raw = doc.get("Statement", [])
    if isinstance(raw, dict):
        raw = [raw]
    statements = []
    for i, s in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(s, dict):
            continue
        statements.append(
            Statement(
                index=i,
                sid=str(s.get("Sid", "")),
                effect=str(s.get("Effect", "")),
                actions=_tuple(s.get("Action")),
                not_actions=_tuple(s.get("NotAction")),
                resources=_tuple(s.get("Resource")),
                not_resources=_tuple(s.get("NotResource")),
                principal=s.get("Principal"),
                condition=s.get("Condition") or {},
            )
        )
    return text, statements


def action_matches(pattern: str, action: str) -> bool:
    """IAM matching: case-insensitive, `*` and `?` wildcards."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def covers(actions: tuple[str, ...], action: str) -> bool:
    return any(action_matches(p, action) for p in actions)


@lru_cache(maxsize=4096)
def expand(pattern: str) -> tuple[str, ...]:
    """All known `service:Action` names a pattern matches (parliament's IAM definition); () if none."""
    import parliament  # lazy: loading the IAM definition takes ~0.3 s

    if ":" not in pattern and pattern != "*":
        return ()
    found = parliament.expand_action(pattern, raise_exceptions=False)
    return tuple(f"{a['service']}:{a['action']}" for a in found)


@lru_cache(maxsize=4096)
def privilege(action: str) -> Mapping[str, Any] | None:
    """parliament's record for one `service:Action` (access_level, resource_types); None if unknown."""
    from parliament.statement import get_privilege_info

    names = expand(action)
    if len(names) != 1:
        return None
    service, _, name = names[0].partition(":")
    info: Mapping[str, Any] = get_privilege_info(service, name)
    return info


def supports_resource_scoping(action: str) -> bool:
    info = privilege(action)
    if info is None:
        return False
    return any(rt.get("resource_type") for rt in info.get("resource_types", []))


def access_level(action: str) -> str | None:
    info = privilege(action)
    return None if info is None else str(info.get("access_level"))


def principal_is_wildcard(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        values = aws if isinstance(aws, list | tuple) else [aws]
        return "*" in values
    return False
