"""Rules on `aws:kms/key:Key` resources."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from . import types as t
from .core import Settings, resource_rule
from .documents import BadDocument, parse, principal_is_wildcard
from .secrets import num

DEFAULT_MIN_DELETION_WINDOW_DAYS = 30


def check_rotation(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if args.props.get("enableKeyRotation") is not True:
        yield f"KMS key {args.name} does not rotate its key material; set enable_key_rotation=True."


def check_key_policy(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    policy = args.props.get("policy")
    if not policy:
        return  # no policy: AWS applies the default key policy (account root only)
    try:
        _, statements = parse(policy)
    except BadDocument as exc:
        yield f"KMS key {args.name}: {exc}; pass the key policy as a JSON document."
        return
    for s in statements:
        if s.allow and principal_is_wildcard(s.principal):
            yield (
                f"KMS key {args.name} key policy {s.label} allows a wildcard principal ('*'); name the "
                "account root or the roles that use the key instead."
            )


def check_lockout(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if args.props.get("bypassPolicyLockoutSafetyCheck") is True:
        yield (
            f"KMS key {args.name} sets bypassPolicyLockoutSafetyCheck=true, which can make the key "
            "unmanageable; remove it."
        )


def check_deletion_window(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    minimum = settings.number("minDeletionWindowDays", DEFAULT_MIN_DELETION_WINDOW_DAYS)
    window = args.props.get("deletionWindowInDays")
    days = 30.0 if window is None else float(window)  # unset: AWS default of 30 days
    if days < minimum:
        yield (
            f"KMS key {args.name} has deletionWindowInDays {num(days)}, below the {num(minimum)}-day "
            f"minimum; set deletion_window_in_days to at least {num(minimum)} (at most 30)."
        )


POLICIES = [
    resource_rule(
        "kms-key-rotation-enabled",
        "KMS keys rotate their key material yearly (enableKeyRotation).",
        EnforcementLevel.MANDATORY,
        [t.KMS_KEY],
        check_rotation,
    ),
    resource_rule(
        "kms-key-policy-no-wildcard-principal",
        "KMS key policies do not Allow a wildcard principal.",
        EnforcementLevel.MANDATORY,
        [t.KMS_KEY],
        check_key_policy,
    ),
    resource_rule(
        "kms-key-no-lockout-bypass",
        "KMS keys do not bypass the policy lockout safety check.",
        EnforcementLevel.MANDATORY,
        [t.KMS_KEY],
        check_lockout,
    ),
    resource_rule(
        "kms-key-deletion-window",
        "KMS key deletion keeps a waiting period of at least the configured minimum.",
        EnforcementLevel.MANDATORY,
        [t.KMS_KEY],
        check_deletion_window,
        {
            "minDeletionWindowDays": {
                "type": "number",
                "minimum": 7,
                "maximum": 30,
                "default": DEFAULT_MIN_DELETION_WINDOW_DAYS,
            }
        },
    ),
]
