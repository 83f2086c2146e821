"""`recoveryWindowDays: 0` (delete without recovery) is a throwaway stack's choice, refused in production.

The provider sends a window of 0 as DeleteSecret's ForceDeleteWithoutRecovery (hashicorp/terraform-provider-aws
`internal/service/secretsmanager/secret.go`, resourceSecretDelete), so nothing of a destroyed production
secret could be recovered; outside production it frees the names at once for the next `pulumi up`.
"""

from __future__ import annotations

import policy_fixtures as f
import pytest
from in_process import resource_findings

RULE = "secret-recovery-window"


def window_findings(days: int, stack: str, config: dict[str, dict[str, float]] | None = None) -> list[str]:
    from guardrails.registry import ALL_POLICIES

    resources = f.set_input("db-password", "recoveryWindowInDays", days)(f.base_stack())
    if stack != "production":
        resources = f.set_tag("db-password", "environment", stack)(resources)
    return [m for p, r, m in resource_findings(ALL_POLICIES, resources, config) if p == RULE and r == "db-password"]


def test_zero_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "production")
    assert window_findings(0, "production") == [
        "production secret db-password has recoveryWindowInDays 0 (deleted at once by a destroy, without recovery); "
        "0 is for throwaway stacks only: set recoveryWindowDays to 30."]
    # Whatever the configured minimum.
    assert window_findings(0, "production", {RULE: {"minRecoveryWindowDays": 0}}) != []


def test_zero_passes_in_a_throwaway_stack_but_a_short_window_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "sandbox")
    assert window_findings(0, "sandbox") == []
    assert window_findings(3, "sandbox") == [
        "secret db-password has recoveryWindowInDays 3 days, below the 7-day minimum; set recovery_window_in_days "
        "to at least 7 (at most 30)."]
