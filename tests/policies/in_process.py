"""The pack's resource rules called in this process, as the SDK calls them inside the engine's analyzer.

The gRPC path (`preview/policy_check.py`, a `python -m pulumi.policy` subprocess) is what proves the pack
loads as the engine loads it; this path gives the same findings without a process, so that mutation
testing (`make mutate`) sees which test reaches which rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions

from preview.model import CollectedResource, plain


def engine_shape(value: Any) -> Any:
    """A plain value as policies see it after the engine's protobuf Struct: every number a float."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {k: engine_shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [engine_shape(v) for v in value]
    return value


def _defaults(policy: ResourceValidationPolicy) -> dict[str, Any]:
    schema = policy.config_schema
    properties: Mapping[str, Mapping[str, Any]] = schema.properties if schema is not None else {}
    return {k: v["default"] for k, v in properties.items() if "default" in v}


def resource_findings(
    policies: Iterable[object], stack: Iterable[CollectedResource],
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, str, str]]:
    """(policy, resource name, message) of every resource rule among `policies`, in stack order;
    `config` is per rule, over the schema defaults (as the engine hands a rule its own block)."""
    found: list[tuple[str, str, str]] = []
    for policy in policies:
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        validate = policy.validate
        assert callable(validate), policy.name
        for r in stack:
            opts = PolicyResourceOptions(
                protect=r.protect, ignore_changes=list(r.ignore_changes), delete_before_replace=None, aliases=[],
                custom_timeouts=PolicyCustomTimeouts(0.0, 0.0, 0.0),
                additional_secret_outputs=list(r.additional_secret_outputs), parent=r.parent,
            )
            args = ResourceValidationArgs(
                r.type, engine_shape(plain(r.inputs)), r.urn, r.name, opts, None,
                config={**_defaults(policy), **(config or {}).get(policy.name, {})},
            )

            def report(message: str, urn: str | None = None, *, _p: str = policy.name, _r: str = r.name) -> None:
                found.append((_p, _r, message))

            validate(args, report)
    return found
