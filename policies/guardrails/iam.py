"""Rules on IAM policy documents: identity policies and secret resource policies.

Documents are read from the `policy` input of `aws:iam/policy:Policy`, `aws:iam/rolePolicy:RolePolicy`,
`aws:iam/userPolicy:UserPolicy` and `aws:secretsmanager/secretPolicy:SecretPolicy`.

A policy's access kind (read | ci | rotation) is its `access` tag; resources without tags
(RolePolicy, UserPolicy, SecretPolicy) use the Pulumi name's last `-` segment instead
(`app-read`, `deployer-ci`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from . import types as t
from .core import Settings, resource_rule, tags_of
from .documents import (
    BadDocument,
    Statement,
    access_level,
    covers,
    expand,
    parse,
    supports_resource_scoping,
)

READ_ACCESS_LEVELS = ("Read", "List")
READ_EQUIVALENT_ACTIONS = frozenset({"kms:Decrypt"})
"""Not "Read" in the IAM definition, but reading a secret needs it (iam-kms-decrypt-via-service limits it)."""
ACCESS_KINDS = ("read", "ci", "rotation")

ESCALATION_ACTIONS: tuple[str, ...] = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
)
"""Actions that let a principal grant itself more rights (Rhino Security's escalation paths)."""

ESCALATION_ON_ANY_RESOURCE: tuple[str, ...] = (
    "iam:PassRole",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
)
"""Actions that escalate when granted on `*` (any role / any function)."""

LINT_ISSUES: frozenset[str] = frozenset(
    {
        "EXCEPTION",
        "MALFORMED_JSON",
        "MALFORMED",
        "DUPLICATE_SID",
        "INVALID_SID",
        "UNKNOWN_ACTION",
        "UNKNOWN_PREFIX",
        "UNKNOWN_CONDITION_FOR_ACTION",
        "UNKNOWN_OPERATOR",
        "UNKNOWN_PRINCIPAL",
        "UNKNOWN_FEDERATION_SOURCE",
        "RESOURCE_MISMATCH",
        "INVALID_ARN",
        "MISMATCHED_TYPE",
        "MISMATCHED_TYPE_OPERATION_TO_NULL",
        "NO_VERSION",
        "INVALID_VERSION",
        "OLD_VERSION",
    }
)
"""parliament findings that make a document wrong rather than merely broad (RESOURCE_STAR and the
community auditors are covered by the dedicated rules)."""

SECRET_ARN = re.compile(r"^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.*)$")


def access_kind(args: ResourceValidationArgs) -> str | None:
    kind = tags_of(args.props).get("access")
    if kind:
        return str(kind)
    last = args.name.rsplit("-", 1)[-1]
    return last if last in ACCESS_KINDS else None


def _statements(args: ResourceValidationArgs) -> list[Statement]:
    """The statements of the resource's document; [] when absent or not JSON (iam-policy-lint says so)."""
    policy = args.props.get("policy")
    if not policy:
        return []
    try:
        return parse(policy)[1]
    except BadDocument:
        return []


def _what(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} {args.name}"


def check_wildcard_actions(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    for s in _statements(args):
        if not s.allow:
            continue
        if s.not_actions:
            yield (
                f"{_what(args)} {s.label} uses NotAction in an Allow, which grants every other action; "
                "list the allowed actions instead."
            )
        for a in s.actions:
            if a == "*" or a.endswith(":*"):
                yield (
                    f"{_what(args)} {s.label} allows {a!r}; list the specific actions needed "
                    "(e.g. secretsmanager:GetSecretValue, secretsmanager:DescribeSecret)."
                )


def check_star_resource(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if args.resource_type == t.SECRET_POLICY:
        return  # in a secret's resource policy, Resource "*" means that one secret
    for s in _statements(args):
        if not s.allow or "*" not in s.resources:
            continue
        scoped = sorted({n for a in s.actions for n in expand(a) if supports_resource_scoping(n)})
        if scoped:
            shown = ", ".join(scoped[:5]) + (f" and {len(scoped) - 5} more" if len(scoped) > 5 else "")
            yield (
                f"{_what(args)} {s.label} allows {shown} on Resource '*' although they support "
                "resource-level permissions; name the secret / key ARNs."
            )


def check_read_only(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if access_kind(args) != "read":
        return
    for s in _statements(args):
        if not s.allow:
            continue
        writes = sorted(
            {
                n
                for a in s.actions
                for n in (expand(a) or (a,))
                if access_level(n) not in READ_ACCESS_LEVELS and n not in READ_EQUIVALENT_ACTIONS
            }
        )
        if writes:
            shown = ", ".join(writes[:5]) + (f" and {len(writes) - 5} more" if len(writes) > 5 else "")
            yield (
                f"read-only {_what(args)} {s.label} allows non-read action(s) {shown}; keep only Read/List "
                "actions or change the access tag."
            )


def check_environment_isolation(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    tags = tags_of(args.props)
    env = settings.env_for(tags)
    app = settings.app_for(tags)
    statements = [s for s in _statements(args) if s.allow]
    if not statements:
        return
    if env is None:
        yield (
            f"{_what(args)}: cannot tell this stack's environment; set policy config 'environment', name "
            "the stack after it, or tag the policy environment=<env>."
        )
        return
    prefix = f"{app}/{env}/" if app else None
    for s in statements:
        secret_actions = [n for a in s.actions for n in expand(a) if n.startswith("secretsmanager:")]
        scoped = any(supports_resource_scoping(n) for n in secret_actions)
        for r in s.resources:
            m = SECRET_ARN.match(r)
            if m:
                name = m.group("name")
                ok = name.startswith(prefix) if prefix else name.split("/")[1:2] == [env]
                ok = ok or managed_master_read(args, s.actions, r)
                if not ok:
                    yield (
                        f"{_what(args)} {s.label} allows secret {r!r} outside this stack's "
                        f"'{prefix or f'<app>/{env}/'}' prefix; grant only this environment's secrets."
                    )
            elif r == "*" and scoped and args.resource_type != t.SECRET_POLICY:
                yield (
                    f"{_what(args)} {s.label} allows Secrets Manager actions on every secret ('*'); "
                    f"restrict Resource to secrets under '{prefix or f'<app>/{env}/'}'."
                )


PRODUCTION_SECRETS = re.compile(r"^(\*|arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:([^/]*/production/)?\*)$")
"""Deny resources that cover every production secret: `*`, every secret, or `<app>/production/*`."""


def check_ci_deny(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if access_kind(args) != "ci":
        return
    for s in _statements(args):
        if s.effect != "Deny" or not covers(s.actions, "secretsmanager:DeleteSecret"):
            continue
        if s.condition:
            # A conditional Deny (deleting without recovery, a short window) leaves the plain delete allowed.
            continue
        if any(PRODUCTION_SECRETS.match(r) for r in s.resources):
            return
    yield (
        f"CI {_what(args)} has no explicit Deny of secretsmanager:DeleteSecret on production secrets; add "
        "a Deny statement for secretsmanager:DeleteSecret on "
        "arn:aws:secretsmanager:*:*:secret:<app>/production/*, without a Condition."
    )


def check_kms_via_service(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    for s in _statements(args):
        if s.allow and covers(s.actions, "kms:Decrypt") and "kms:viaservice" not in s.condition_keys():
            yield (
                f"{_what(args)} {s.label} allows kms:Decrypt without a kms:ViaService condition; add "
                'Condition {"StringEquals": {"kms:ViaService": "secretsmanager.<region>.amazonaws.com"}}.'
            )


def check_escalation(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    for s in _statements(args):
        if not s.allow:
            continue
        found = [a for a in ESCALATION_ACTIONS if covers(s.actions, a)]
        if any("*" in r for r in s.resources):
            found += [a for a in ESCALATION_ON_ANY_RESOURCE if covers(s.actions, a)]
        if found:
            yield (
                f"{_what(args)} {s.label} allows privilege-escalation action(s) {', '.join(found)}; "
                "remove them (grant iam:PassRole only on named role ARNs)."
            )


def check_user_attachment(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if args.resource_type in (t.IAM_USER_POLICY, t.IAM_USER_POLICY_ATTACHMENT):
        yield (
            f"{_what(args)} attaches a policy to an IAM user; attach it to a role and let the user assume it."
        )
    elif args.resource_type == t.IAM_POLICY_ATTACHMENT and args.props.get("users"):
        yield (
            f"{_what(args)} attaches a policy to IAM user(s) {', '.join(map(str, args.props['users']))}; "
            "attach it to roles only."
        )


def check_lint(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    policy = args.props.get("policy")
    if not policy:
        return
    try:
        text, _ = parse(policy)
    except BadDocument as exc:
        yield f"{_what(args)}: {exc}; pass a JSON policy document."
        return
    import parliament  # lazy, see documents.expand

    ignored = set(settings.get("ignoreFindings", []))
    try:
        analysed = parliament.analyze_policy_string(text)
    except Exception as exc:  # noqa: BLE001 - parliament 1.6 raises on some shapes (a number as principal)
        yield f"{_what(args)}: parliament cannot read the document ({type(exc).__name__}: {exc}); fix the document."
        return
    for f in analysed.findings:
        if f.issue in LINT_ISSUES and f.issue not in ignored and not newer_condition_key(f.issue, f.detail):
            # A finding's detail is a text, or a list of {action, required_format} (RESOURCE_MISMATCH).
            detail = f.detail if isinstance(f.detail, str) else json.dumps(f.detail)
            yield f"{_what(args)}: parliament {f.issue}: {detail}; fix the document."


POLICIES = [
    resource_rule(
        "iam-no-wildcard-actions",
        "IAM Allow statements name actions: no '*', no service-wide 'service:*', no NotAction.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_wildcard_actions,
    ),
    resource_rule(
        "iam-no-star-resource",
        "IAM Allow statements do not use Resource '*' for actions that support resource-level permissions.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_star_resource,
    ),
    resource_rule(
        "iam-read-only-policy",
        "Read-only policies (tag access=read) allow only Read/List actions.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_read_only,
    ),
    resource_rule(
        "iam-environment-isolation",
        "IAM Allow statements grant only secrets under this stack's <app>/<environment>/ prefix.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_environment_isolation,
    ),
    resource_rule(
        "iam-ci-deny-production-delete",
        "CI policies (tag access=ci) explicitly and unconditionally Deny secretsmanager:DeleteSecret on production "
        "secrets.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_ci_deny,
    ),
    resource_rule(
        "iam-kms-decrypt-via-service",
        "kms:Decrypt is allowed only through Secrets Manager (kms:ViaService condition).",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_kms_via_service,
    ),
    resource_rule(
        "iam-no-privilege-escalation",
        "IAM Allow statements grant no privilege-escalation actions.",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_escalation,
    ),
    resource_rule(
        "iam-no-user-policies",
        "Policies are attached to roles, never to IAM users.",
        EnforcementLevel.MANDATORY,
        [t.IAM_USER_POLICY, t.IAM_USER_POLICY_ATTACHMENT, t.IAM_POLICY_ATTACHMENT],
        check_user_attachment,
    ),
    resource_rule(
        "iam-policy-lint",
        "Policy documents pass parliament's checks (known actions and condition keys, matching resources).",
        EnforcementLevel.MANDATORY,
        t.POLICY_DOCUMENT_TYPES,
        check_lint,
        {
            "ignoreFindings": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "parliament finding ids to ignore, e.g. UNKNOWN_CONDITION_FOR_ACTION.",
            }
        },
    ),
]


MANAGED_MASTER_ARN = re.compile(
    r"^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:rds!(?:db|cluster)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{4}-[0-9a-f]{12}-[A-Za-z0-9]{6}$"
)
"""One secret RDS manages for a database's master password, named in full (no wildcard)."""


def managed_master_read(args: ResourceValidationArgs, actions: tuple[str, ...] | list[str], resource: str) -> bool:
    """A rotation role may read (only read) an RDS-managed master secret named in full: the admin credential
    of a PostgreSQL secret whose catalog says `master: {managed: rds}` (components/managed.py)."""
    return (access_kind(args) == "rotation" and MANAGED_MASTER_ARN.fullmatch(resource) is not None
            and all(a in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret") for a in actions))


NEWER_CONDITION_KEYS = frozenset({"secretsmanager:resource/Type"})
"""Condition keys AWS's Service Authorization Reference lists (for Secrets Manager's rotation actions: the key
of a managed external secret's partner Type) that parliament 1.6's bundled data predates."""


def newer_condition_key(issue: str, detail: object) -> bool:
    """A parliament UNKNOWN_CONDITION_FOR_ACTION finding about one of NEWER_CONDITION_KEYS: not a mistake."""
    return issue == "UNKNOWN_CONDITION_FOR_ACTION" and isinstance(detail, str) and any(
        f"Unknown condition {key} for action secretsmanager:" in detail for key in NEWER_CONDITION_KEYS)
