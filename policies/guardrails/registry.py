"""Every policy of the pack, in report order (tests and `__main__.py` read this list)."""

from pulumi_policy import Policy

from . import iam, kms, lambdas, secrets, sharing, stack

PACK_NAME = "secrets-platform-guardrails"

ALL_POLICIES: list[Policy] = [
    *secrets.POLICIES,
    *stack.POLICIES,
    *kms.POLICIES,
    *iam.POLICIES,
    *lambdas.POLICIES,
    *sharing.POLICIES,
]
