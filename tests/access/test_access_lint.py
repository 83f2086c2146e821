"""Every policy document both stacks generate passes parliament, community auditors included.

Identity policies (runtime, CI, services, rotation), KMS key policies and secret resource policies.
A finding is accepted only if it is listed in `ACCEPTED` below with the reason it is not a problem.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from access_harness import Stacks

with warnings.catch_warnings():
    # parliament opens its data files without closing them (ResourceWarning at import).
    warnings.simplefilter("ignore")
    import parliament

ACCEPTED: dict[tuple[str, str], frozenset[str] | None] = {
    # In a key policy, "Resource": "*" means "this key" and nothing else; it cannot be narrowed.
    ("key", "RESOURCE_STAR"): None,
    # The account root administers the key (AWS's default key-administrator action set, delegated to
    # the account's IAM policies): kms:PutKeyPolicy keeps the key manageable (the lockout check),
    # kms:RevokeGrant only removes access, kms:CreateKey means nothing on an existing key.
    # kms:CreateGrant is deliberately absent (test_access_kms.py::test_administrators_cannot_grant_use).
    ("key", "PERMISSIONS_MANAGEMENT_ACTIONS"): frozenset({"kms:putkeypolicy", "kms:revokegrant"}),
    # The CI policy manages each secret's resource policy because Pulumi manages SecretPolicy. It is a
    # known risk (README, Access): the pipeline could open a secret to another account; only an
    # organisation-level control (SCP/RCP) closes it. Nothing else in an identity policy is accepted.
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS"): frozenset(
        {"secretsmanager:putresourcepolicy", "secretsmanager:deleteresourcepolicy"}),
}
# Not accepted anywhere, and so proven absent: RESOURCE_STAR on an identity policy. The CI and rotation
# policies grant secretsmanager:GetRandomPassword / ListSecrets on "*", but parliament knows those
# actions have no resource-level permissions and does not report them.


def _documents(stacks: Stacks) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (kind, document): every generated policy of both stacks, each distinct one once."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    seen: set[str] = set()

    def add(label: str, kind: str, document: dict[str, Any] | None) -> None:
        assert document is not None, label
        text = json.dumps(document, sort_keys=True)
        if text not in seen:
            seen.add(text)
            found[label] = (kind, document)

    for principal in stacks.model.principals:
        for policy in principal.policies:
            add(f"identity policy {policy.name}", "identity", policy.document)
    for key in stacks.model.keys:
        add(f"key policy {key.arn}", "key", key.policy)
    for secret in stacks.model.secrets:
        add(f"resource policy of {secret.name}", "secret", secret.resource_policy)
    return found


def _findings(document: dict[str, Any]) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return list(policy.findings)


def _unaccepted(kind: str, finding: Any) -> bool:
    if (kind, finding.issue) not in ACCEPTED:
        return True
    allowed = ACCEPTED[(kind, finding.issue)]
    actions = {a.lower() for a in (finding.location or {}).get("actions", [])}
    # RESOURCE_MISMATCH names its actions in the detail, one entry per action and required format.
    actions |= {d["action"].lower() for d in (finding.detail if isinstance(finding.detail, list) else [])
                if isinstance(d, dict) and "action" in d}
    return allowed is not None and not actions <= allowed


def test_every_kind_of_document_is_linted(stacks: Stacks) -> None:
    kinds = {kind for kind, _ in _documents(stacks).values()}
    assert kinds == {"identity", "key", "secret"}


def test_parliament_has_no_unexplained_finding(stacks: Stacks) -> None:
    problems = []
    for label, (kind, document) in sorted(_documents(stacks).items()):
        for finding in _findings(document):
            if _unaccepted(kind, finding):
                problems.append(f"{label}: {finding.issue} {finding.detail} {finding.location}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretVaule",
     "Resource": "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:x-??????"},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
], ids=["resource-star", "unknown-action", "privilege-escalation"])
def test_the_lint_would_catch_a_bad_statement(statement: dict[str, Any]) -> None:
    """The check above is not vacuous: parliament reports these in an identity policy."""
    findings = _findings({"Version": "2012-10-17", "Statement": [statement]})
    assert any(_unaccepted("identity", f) for f in findings)
