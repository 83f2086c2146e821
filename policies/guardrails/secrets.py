"""Rules on `aws:secretsmanager/secret:Secret` resources (one resource at a time)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from . import types as t
from .core import Settings, resource_rule, tags_of

DEFAULT_REQUIRED_TAGS: tuple[str, ...] = ("app", "environment", "class", "owner")
SECRET_CLASSES: tuple[str, ...] = ("critical", "configuration")
DEFAULT_MIN_RECOVERY_WINDOW_DAYS = 7
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"
NAME_SEGMENT = r"[A-Za-z0-9_+=.@-]+"


def num(value: float) -> str:
    """7.0 -> "7" (numbers reach policies as floats)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def check_kms_key(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    key = args.props.get("kmsKeyId")
    if not key:
        yield (
            f"secret {args.name} has no kmsKeyId, so it is encrypted with the AWS managed key "
            f"{AWS_MANAGED_SECRETS_KEY}; set kms_key_id to the ARN of this environment's customer managed "
            "key."
        )
    elif str(key).endswith(AWS_MANAGED_SECRETS_KEY):
        yield (
            f"secret {args.name} uses kmsKeyId {key!r}, the AWS managed key; set kms_key_id to the ARN of "
            "this environment's customer managed key."
        )


def check_name(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    props = args.props
    tags = tags_of(props)
    name = props.get("name")
    app = settings.app_for(tags)
    env = settings.env_for(tags)
    app_re = re.escape(app) if app else NAME_SEGMENT
    env_re = re.escape(env) if env else NAME_SEGMENT
    expected = f"{app or '<app>'}/{env or '<environment>'}/<name>"
    if not name:
        yield (
            f"secret {args.name} has no explicit name (Pulumi would auto-name it outside the "
            f"<app>/<environment>/ prefix); set name to {expected!r}."
        )
    elif not re.fullmatch(rf"{app_re}/{env_re}/{NAME_SEGMENT}", str(name)):
        yield f"secret name {name!r} does not match {expected!r}; rename the secret to {expected!r}."


def check_tags(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    tags = tags_of(args.props)
    required = list(settings.get("requiredTags", list(DEFAULT_REQUIRED_TAGS)))
    missing = [k for k in required if not tags.get(k)]
    if missing:
        yield (
            f"secret {args.name} is missing required tag(s) {', '.join(missing)}; "
            f"add them (required: {', '.join(required)})."
        )
    cls = tags.get("class")
    if cls and cls not in SECRET_CLASSES:
        yield f"secret {args.name} has tag class={cls!r}; use one of {', '.join(SECRET_CLASSES)}."
    env_tag = tags.get("environment")
    if env_tag and settings.environment and env_tag != settings.environment:
        yield (
            f"secret {args.name} has tag environment={env_tag!r} but this stack is "
            f"{settings.environment!r}; tag it environment={settings.environment!r}."
        )


def check_description(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    if not str(args.props.get("description") or "").strip():
        yield f"secret {args.name} has no description; say what the secret is for and who uses it."


def check_recovery_window(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    minimum = settings.number("minRecoveryWindowDays", DEFAULT_MIN_RECOVERY_WINDOW_DAYS)
    window = args.props.get("recoveryWindowInDays")
    # Unset means the AWS default of 30 days.
    days = 30.0 if window is None else float(window)
    if days == 0 and settings.env_for(tags_of(args.props)) == "production":
        yield (
            f"production secret {args.name} has recoveryWindowInDays 0 (deleted at once by a destroy, without "
            "recovery); 0 is for throwaway stacks only: set recoveryWindowDays to 30."
        )
        return
    if days == 0:
        # A throwaway stack's explicit choice (the provider sends ForceDeleteWithoutRecovery): its names are
        # free again right after `pulumi destroy`.
        return
    if days < minimum:
        yield (
            f"secret {args.name} has recoveryWindowInDays {num(days)} days, below the {num(minimum)}-day minimum; "
            f"set recovery_window_in_days to at least {num(minimum)} (at most 30)."
        )


AMBIGUOUS_SUFFIX = re.compile(r"-.{6}")
"""A name ending in a hyphen and six characters looks like a complete ARN's random suffix (botocore
CreateSecret `Name`: "Do not end your secret name with a hyphen followed by six characters")."""


def check_name_suffix(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    name = str(args.props.get("name") or "")
    if len(name) >= 7 and AMBIGUOUS_SUFFIX.fullmatch(name[-7:]):
        yield (
            f"secret name {name!r} ends in a hyphen and six characters ({name[-7:]!r}), like the random suffix "
            "AWS adds to a secret's ARN, so a lookup by partial ARN can find the wrong secret or fail; rename it "
            "so the last hyphen is not followed by exactly six characters (e.g. add a word), and use complete "
            "ARNs."
        )


def check_protected(args: ResourceValidationArgs, settings: Settings) -> Iterator[str]:
    env = settings.env_for(tags_of(args.props))
    if env == "production" and not args.opts.protect:
        yield (
            f"production secret {args.name} is not protected from deletion; create it with "
            "ResourceOptions(protect=True) (retain_on_delete is not visible to policies, so protect is "
            "required)."
        )


POLICIES = [
    resource_rule(
        "secret-customer-managed-kms-key",
        "Secrets are encrypted with a customer managed KMS key, not the AWS managed aws/secretsmanager key.",
        EnforcementLevel.MANDATORY,
        [t.SECRET],
        check_kms_key,
    ),
    resource_rule(
        "secret-name-convention",
        "Secret names are <app>/<environment>/<name> with this stack's environment.",
        EnforcementLevel.MANDATORY,
        [t.SECRET],
        check_name,
    ),
    resource_rule(
        "secret-required-tags",
        "Secrets carry the required tags (app, environment, class, owner) with valid values.",
        EnforcementLevel.MANDATORY,
        [t.SECRET],
        check_tags,
        {
            "requiredTags": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_REQUIRED_TAGS),
            }
        },
    ),
    resource_rule(
        "secret-name-arn-suffix",
        "Secret names do not end in a hyphen and six characters (AWS: partial-ARN lookups then go wrong).",
        EnforcementLevel.ADVISORY,
        [t.SECRET],
        check_name_suffix,
    ),
    resource_rule(
        "secret-description",
        "Secrets have a description.",
        EnforcementLevel.ADVISORY,
        [t.SECRET],
        check_description,
    ),
    resource_rule(
        "secret-recovery-window",
        "Secret deletion keeps a recovery window of at least the configured minimum; 0 (no recovery) only "
        "outside production.",
        EnforcementLevel.MANDATORY,
        [t.SECRET],
        check_recovery_window,
        {
            "minRecoveryWindowDays": {
                "type": "number",
                "minimum": 0,
                "maximum": 30,
                "default": DEFAULT_MIN_RECOVERY_WINDOW_DAYS,
            }
        },
    ),
    resource_rule(
        "secret-production-protected",
        "Production secrets are protected from deletion (protect=True).",
        EnforcementLevel.MANDATORY,
        [t.SECRET],
        check_protected,
    ),
]
