"""The resource rules on the planted-violation corpus, called in this process (tests/policies/in_process.py):
exactly the findings the engine path reports (test_policy_pack.py), with their exact messages.

Also the edges of the IAM and secret rules the corpus does not reach one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import policy_cases as c
import policy_fixtures as f
import pytest
from in_process import engine_shape, resource_findings
from pulumi_policy import ResourceValidationPolicy

from preview.model import CollectedResource

EXPECTED = json.loads((Path(__file__).parent / "corpus" / "expected_messages.json").read_text())


def _policies() -> list[object]:
    from guardrails.registry import ALL_POLICIES

    return list(ALL_POLICIES)


RESOURCE_RULES = frozenset(p.name for p in _policies() if isinstance(p, ResourceValidationPolicy))


@pytest.fixture(autouse=True)
def _production_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine names the stack to the analyzer process; the rules read it for the environment.
    monkeypatch.setenv("PULUMI_STACK", f.STACK)


def findings(stack: list[CollectedResource]) -> list[tuple[str, str, str]]:
    return resource_findings(_policies(), stack)


def where(stack: list[CollectedResource]) -> list[tuple[str, str]]:
    return sorted((p, r) for p, r, _ in findings(stack))


def test_the_compliant_stack_has_no_finding() -> None:
    assert findings(f.base_stack()) == []


RESOURCE_CASES = [case for case in c.CASES if case.policy in RESOURCE_RULES]


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=[case.id for case in RESOURCE_CASES])
def test_planted_violation_in_process(case: c.Case) -> None:
    got = findings(case.mutate(f.base_stack()))
    expected = sorted(p for p in [(case.policy, case.resource), *case.also] if p[0] in RESOURCE_RULES)
    assert sorted((p, r) for p, r, _ in got) == expected
    assert [m for p, _, m in got if p == case.policy] == EXPECTED[case.id]


# --- iam-ci-deny-production-delete ------------------------------------------------------------------

CI = "deployer-ci"
RULE = "iam-ci-deny-production-delete"


def _deny(resource: str | list[str], action: str | list[str] = "secretsmanager:DeleteSecret",
          condition: dict | None = None, effect: str = "Deny") -> Callable[[list[CollectedResource]], list]:
    return f.set_statement(CI, 1, Resource=resource, Action=action, Condition=condition, Effect=effect)


@pytest.mark.parametrize("resource", [
    "*",
    "arn:aws:secretsmanager:*:*:secret:*",
    f"arn:aws:secretsmanager:us-east-1:{f.ACCOUNT}:secret:*",
    "arn:aws:secretsmanager:*:*:secret:payments/production/*",
    f"arn:aws-us-gov:secretsmanager:*:{f.ACCOUNT}:secret:payments/production/*",
    ["arn:aws:secretsmanager:*:*:secret:payments/staging/*", "arn:aws:secretsmanager:*:*:secret:payments/production/*"],
])
def test_an_unconditional_deny_on_every_production_secret_passes(resource: str | list[str]) -> None:
    assert findings(_deny(resource)(f.base_stack())) == []
    assert findings(_deny(resource, action=["secretsmanager:Delete*"])(f.base_stack())) == []
    assert RULE not in {p for p, _, _ in findings(_deny(resource, action="secretsmanager:*")(f.base_stack()))}


@pytest.mark.parametrize("statement", [
    {"resource": "*", "condition": {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}},
    {"resource": "*", "condition": {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "30"}}},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/*",
     "condition": {"StringEquals": {"aws:ResourceTag/class": "critical"}}},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/db-password-AbCdEf"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/db-*"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/staging/*"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/*"},
    {"resource": "arn:aws:s3:::payments/production/*"},
    {"resource": "*", "action": "secretsmanager:PutSecretValue"},
    {"resource": "*", "effect": "Allow", "action": "secretsmanager:ListSecrets"},
], ids=["force-delete-only", "short-window-only", "tag-condition", "one-secret", "some-secrets", "staging",
        "app-wide-pattern", "not-secrets-manager", "other-action", "allow"])
def test_only_an_unconditional_deny_on_every_production_secret_counts(statement: dict) -> None:
    stack = _deny(**statement)(f.base_stack())
    ci = [(p, r, m) for p, r, m in findings(stack) if p == RULE]
    assert ci == [(RULE, CI, EXPECTED["iam-ci-no-deny"][0])]


def test_the_rule_reads_only_ci_policies() -> None:
    no_deny = f.set_statement(CI, 1, Effect="Allow", Action="secretsmanager:ListSecrets", Resource="*")
    for kind in ("read", "rotation", "app-write"):
        stack = f.set_tag(CI, "access", kind)(no_deny(f.base_stack()))
        assert RULE not in {p for p, _, _ in findings(stack)}, kind


def test_untagged_policies_take_their_kind_from_the_name() -> None:
    no_deny = f.set_statement(CI, 1, Effect="Allow", Action="secretsmanager:ListSecrets", Resource="*")
    untagged = f.set_tag(CI, "access", None)(no_deny(f.base_stack()))
    assert (RULE, CI) in {(p, r) for p, r, _ in findings(untagged)}, "`-ci` names a CI policy"
    renamed = [r if r.name != CI else CollectedResource(**{**r.__dict__, "name": "deployer-pipeline"})
               for r in untagged]
    assert RULE not in {p for p, _, _ in findings(renamed)}


# --- engine shape -----------------------------------------------------------------------------------


def test_numbers_reach_rules_as_floats() -> None:
    assert engine_shape({"a": 7, "b": [1, True, None, "x"], "c": 2.5}) == {"a": 7.0, "b": [1.0, True, None, "x"],
                                                                           "c": 2.5}
    assert isinstance(engine_shape(7), float)
