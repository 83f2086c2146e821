"""Shared machinery: settings from policy config, suppressions, "cannot decide" handling.

Every rule is a plain check function returning messages; `resource_rule` / `stack_rule` turn
it into a pulumi-policy `Policy` with an id, a description and a default enforcement level.
The wrappers add three behaviours every rule shares:

* settings: the rule's own policy config (the engine only hands a policy its own config
  block) merged over the documented defaults; the environment falls back to the stack name
  (`PULUMI_STACK`, set by the engine for the analyzer process) and then to resource tags;
* suppressions: `suppressions: [{"name"|"urn": ..., "reason": ...}]` in the rule's config.
  A suppressed finding is not reported as a violation; the rule answers "not applicable"
  with a reason that quotes the suppression reason and the finding it hid, so the engine
  (and `preview/policy_check.py`) still shows it;
* unknown values: a rule that reads a value that is unknown during preview raises
  `UndecidedError`; the SDK turns that into an ADVISORY diagnostic "can't run policy ...
  during preview: cannot decide during preview: ...": never a silent pass, never a false
  failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from . import engine_config

KNOWN_ENVIRONMENTS: tuple[str, ...] = ("production", "staging")
"""Environments the platform knows; a stack named after one (or ending `-<env>`) is in it."""

SUPPRESSED_PREFIX = "suppressed by policy config; reason: "
WOULD_REPORT = "; would report: "
FINDING_SEPARATOR = " || "

COMMON_SCHEMA: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string",
        "description": "This stack's environment (production|staging). Default: derived from the stack "
        "name, else from the resource's `environment` tag.",
    },
    "app": {
        "type": "string",
        "description": "The application prefix of secret names. Default: the resource's `app` tag.",
    },
    "suppressions": {
        "type": "array",
        "description": "Findings of this rule to suppress for named resources, each with a written reason.",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "urn": {"type": "string"},
                "reason": {"type": "string", "minLength": 10},
            },
            "required": ["reason"],
        },
        "default": [],
    },
}


class UndecidedError(UnknownValueError):
    """A value the rule needs is unknown during preview: the rule cannot decide."""

    def __init__(self, source: UnknownValueError | None = None, detail: str = "") -> None:
        if source is not None:
            super().__init__(source.unknown_type_sentinel, source.props)
            self.message = f"cannot decide during preview: {source.message}"
        else:
            super().__init__("04da6b54-80e4-46f7-96ec-b56ff0331ba9", [])
            self.message = f"cannot decide during preview: {detail}"


@dataclass(frozen=True)
class Suppression:
    """One entry of a rule's `suppressions` config."""

    reason: str
    name: str = ""
    urn: str = ""

    def matches(self, urn: str, name: str) -> bool:
        if self.urn:
            return self.urn == urn
        return bool(self.name) and self.name == name


@dataclass(frozen=True)
class Settings:
    """A rule's resolved configuration."""

    config: Mapping[str, Any]
    environment: str | None
    """From config, else from the stack name; None if neither says (then rules use tags)."""
    app: str | None
    suppressions: tuple[Suppression, ...] = field(default=())

    def get(self, key: str, default: Any) -> Any:
        value = self.config.get(key)
        return default if value is None else value

    def number(self, key: str, default: float) -> float:
        return float(self.get(key, default))

    def env_for(self, tags: Mapping[str, Any] | None) -> str | None:
        """The environment a resource belongs to: configured/stack environment, else its tag."""
        if self.environment:
            return self.environment
        tag = (tags or {}).get("environment")
        return str(tag) if tag else None

    def app_for(self, tags: Mapping[str, Any] | None) -> str | None:
        if self.app:
            return self.app
        tag = (tags or {}).get("app")
        return str(tag) if tag else None

    def suppression_for(self, urn: str, name: str) -> Suppression | None:
        for s in self.suppressions:
            if s.matches(urn, name):
                return s
        return None


def environment_from_stack(stack: str | None) -> str | None:
    """`production`, `acme-production`, `org/project/staging` -> the environment; else None."""
    if not stack:
        return None
    short = stack.rsplit("/", 1)[-1].lower()
    for env in KNOWN_ENVIRONMENTS:
        if short == env or re.search(rf"(^|[-_.]){re.escape(env)}$", short):
            return env
    return None


def settings_from(config: Mapping[str, Any] | None) -> Settings:
    cfg = dict(config or {})
    env = cfg.get("environment") or environment_from_stack(os.environ.get("PULUMI_STACK"))
    sups = tuple(
        Suppression(reason=str(s.get("reason", "")), name=str(s.get("name", "")), urn=str(s.get("urn", "")))
        for s in cfg.get("suppressions") or ()
        if isinstance(s, Mapping) and str(s.get("reason", "")).strip()
    )
    return Settings(config=cfg, environment=env or None, app=cfg.get("app") or None, suppressions=sups)


def to_plain(value: Any) -> Any:
    """Copy a props proxy into plain dicts/lists, raising UnknownValueError on any unknown inside."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: to_plain(value[k]) for k in value}
    if isinstance(value, Sequence):
        return [to_plain(value[i]) for i in range(len(value))]
    return value


ADOPTED = ("adopted existing secret {arn}: the import changes nothing in AWS; make this change in the follow-up "
           "step after it (README: Adopt an existing application)")


def adopted_secrets(imported: bool = False) -> dict[str, str]:
    """Existing secret name -> ARN for every secret the stack adopts (`secrets-platform:adopt`, which the
    engine passes to the analyzer: guardrails/engine_config.py): findings on them are the follow-up step's to-do list,
    not a reason to stop an import that changes nothing. With `imported`, also those already imported."""
    entries = engine_config.structured("adopt")
    if not isinstance(entries, dict):
        return {}
    # After the import (`imported: true`) the secret is the platform's: the rules apply in full again.
    return {str(e["name"]): str(e.get("arn", "")) for e in entries.values()
            if isinstance(e, dict) and e.get("name") and (imported or e.get("imported") is not True)}


def adoption_of(resource_type: str, props: Mapping[str, Any]) -> str | None:
    """The adoption reason when the resource is a secret the stack adopts, else None."""
    if resource_type != "aws:secretsmanager/secret:Secret":
        return None
    arn = adopted_secrets().get(str(props.get("name") or ""))
    return None if arn is None else ADOPTED.format(arn=arn)


def suppressed_reason(reason: str, messages: Iterable[str]) -> str:
    return SUPPRESSED_PREFIX + reason + WOULD_REPORT + FINDING_SEPARATOR.join(messages)


ResourceCheck = Callable[[ResourceValidationArgs, Settings], Iterable[str]]


@dataclass(frozen=True)
class StackFinding:
    """A stack rule's finding about one resource."""

    urn: str
    name: str
    message: str


StackCheck = Callable[[StackValidationArgs, Settings], Iterable[StackFinding]]


def _schema(params: Mapping[str, dict[str, Any]] | None) -> PolicyConfigSchema:
    props = dict(COMMON_SCHEMA)
    props.update(params or {})
    return PolicyConfigSchema(properties=props)


def resource_rule(
    name: str,
    description: str,
    level: EnforcementLevel,
    types: Sequence[str],
    check: ResourceCheck,
    params: Mapping[str, dict[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy running `check` on resources of `types`."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in wanted:
            return
        settings = settings_from(args.get_config())
        try:
            messages = list(check(args, settings))
        except UndecidedError:
            raise
        except UnknownValueError as exc:
            raise UndecidedError(exc) from exc
        if not messages:
            return
        sup = settings.suppression_for(args.urn, args.name)
        if sup is not None:
            args.not_applicable(suppressed_reason(sup.reason, messages))
        adopted = adoption_of(args.resource_type, args.props)
        if adopted is not None:
            args.not_applicable(suppressed_reason(adopted, messages))
        for message in messages:
            report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=_schema(params),
    )


def stack_rule(
    name: str,
    description: str,
    level: EnforcementLevel,
    check: StackCheck,
    params: Mapping[str, dict[str, Any]] | None = None,
) -> StackValidationPolicy:
    """A StackValidationPolicy running `check` over all resources.

    Suppressed findings: when every finding is suppressed the rule answers "not applicable"
    with the reasons; when some remain, the first reported message lists the suppressed ones.
    """

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        settings = settings_from(args.get_config())
        try:
            findings = list(check(args, settings))
        except UndecidedError:
            raise
        except UnknownValueError as exc:
            raise UndecidedError(exc) from exc
        kept: list[StackFinding] = []
        hidden: list[tuple[StackFinding, Suppression]] = []
        adopted = {r.urn: reason for r in args.resources if (reason := adoption_of(r.resource_type, r.props))}
        for f in findings:
            sup = settings.suppression_for(f.urn, f.name)
            if sup is None and f.urn in adopted:
                sup = Suppression(reason=adopted[f.urn], urn=f.urn)
            if sup is None:
                kept.append(f)
            else:
                hidden.append((f, sup))
        if not kept and hidden:
            reasons = "; ".join(sorted({s.reason for _, s in hidden}))
            args.not_applicable(suppressed_reason(reasons, [f"{f.name}: {f.message}" for f, _ in hidden]))
        for i, f in enumerate(kept):
            message = f.message
            if i == 0 and hidden:
                message += "\nAlso suppressed by policy config: " + "; ".join(
                    f"{h.name} ({s.reason})" for h, s in hidden
                )
            report(message, f.urn or None)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=_schema(params),
    )


def tags_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = props.get("tags")
    return tags if isinstance(tags, Mapping) else {}
