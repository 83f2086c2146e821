"""Sharing secrets with other accounts: only with the accounts the stack's policy config allows.

The program writes a shared secret's grants into two documents the pack sees: the secret's resource
policy (`aws:secretsmanager/secretPolicy:SecretPolicy`: an Allow naming the other account's role, and that
role's ARN excepted from the deny of principals outside the account) and the environment key's policy
(`aws:kms/key:Key`: the role may decrypt through Secrets Manager). Every principal of another account in
either document must be a role (never an account root, a bare account id or `*`) of an account listed in
`allowedShareAccounts`; the default list is empty, so a stack shares nothing until its config says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError

from . import types as t
from .core import Settings, resource_rule
from .documents import BadDocument, Statement, parse

ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>[0-9]{12}):role/.+$")
ACCOUNT_ROOT = re.compile(r"^(?:arn:aws:iam::)?(?P<account>[0-9]{12})(?::root)?$")


def _values(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else (str(value),)


def _aws_principals(statement: Statement) -> tuple[str, ...]:
    if statement.principal == "*":
        return ("*",)
    if isinstance(statement.principal, Mapping):
        return _values(statement.principal.get("AWS"))
    return ()


def _condition_values(statement: Statement, operator: str, key: str) -> tuple[str, ...]:
    block = statement.condition.get(operator)
    if not isinstance(block, Mapping):
        return ()
    return tuple(v for k, raw in block.items() if k.lower() == key.lower() for v in _values(raw))


def _own_accounts(statements: list[Statement], args: ResourceValidationArgs) -> set[str]:
    """This stack's account: the secret's own (its ARN) or the one the secret policy's deny keeps
    (`aws:PrincipalAccount`), or, in a key policy, the account root that administers the key."""
    own = {v for s in statements if not s.allow
           for v in _condition_values(s, "StringNotEquals", "aws:PrincipalAccount")}
    try:
        arn = args.props.get("secretArn") if args.resource_type == t.SECRET_POLICY else None
    except UnknownValueError:
        arn = None  # during preview: the deny's account (above) still says which account is this one
    if isinstance(arn, str) and arn.count(":") >= 5:
        own.add(arn.split(":")[4])
    if args.resource_type == t.KMS_KEY:
        own |= {m.group("account") for s in statements if s.allow for p in _aws_principals(s)
                if (m := ACCOUNT_ROOT.fullmatch(p)) and p.endswith(":root")
                and "kms:CreateAlias" in s.actions}
    return own


def check_shared_accounts(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    policy = args.props.get("policy")
    if not policy:
        return
    try:
        statements = parse(policy)[1]
    except BadDocument:
        return  # iam-policy-lint / kms-key-policy report a malformed document
    allowed = {str(a) for a in settings.get("allowedShareAccounts", [])}
    own = _own_accounts(statements, args)
    if not own:
        return  # not a platform document (secret-resource-policy reports a missing deny)
    what = f"{args.resource_type.rsplit(':', 1)[-1]} {args.name}"
    granted: list[tuple[str, str]] = [(s.label, p) for s in statements if s.allow for p in _aws_principals(s)]
    # A role excepted from the deny of other accounts is a share too, even without an Allow here.
    granted += [(s.label, p) for s in statements if not s.allow
                for p in _condition_values(s, "ArnNotEquals", "aws:PrincipalArn")]
    for label, principal in granted:
        root = ACCOUNT_ROOT.fullmatch(principal)
        if root is not None and root.group("account") in own:
            continue  # the account itself (key administration)
        role = ROLE_ARN.fullmatch(principal)
        if role is None:
            yield (f"{what} {label} trusts {principal!r}, which is no role: share a secret with one role of the "
                   "other account (catalog `shared_with: [{account, role}]`), never an account root or '*'.")
        elif role.group("account") not in own and role.group("account") not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            yield (f"{what} {label} shares with account {role.group('account')} ({principal}), which this stack "
                   f"may not share with (allowedShareAccounts: {listed}); remove the catalog's `shared_with` entry "
                   "or add the account to allowedShareAccounts in the stack's policy config.")


POLICIES = [
    resource_rule(
        "secret-shared-accounts",
        "A secret is shared only with a role (never a root or '*') of an account listed in allowedShareAccounts.",
        EnforcementLevel.MANDATORY,
        [t.SECRET_POLICY, t.KMS_KEY],
        check_shared_accounts,
        {
            "allowedShareAccounts": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9]{12}$"},
                "default": [],
                "description": "Accounts this stack may share secrets with (catalog `shared_with`).",
            }
        },
    ),
]
