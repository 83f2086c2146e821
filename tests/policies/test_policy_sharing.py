"""The pack's `secret-shared-accounts` rule on the documents the program really writes (the ledgerly
example's production stack shares renderer-token with account 345678901234), and on hostile edits of them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import policy_fixtures  # noqa: F401 - puts the pack directory on sys.path, as the engine does
import pytest
from in_process import resource_findings

from preview.model import CollectedResource
from tests.conftest import REPO, run_stack

OTHER = "345678901234"
RULE = "secret-shared-accounts"
POLICY_NAME = "ledgerly-production-renderer-token-policy"


def _rule() -> list[object]:
    from guardrails import sharing

    return list(sharing.POLICIES)


@pytest.fixture(scope="module")
def ledgerly() -> list[CollectedResource]:
    return run_stack("production", REPO, REPO / "examples" / "ledgerly" / "Pulumi.production.yaml").run.resources


def _findings(stack: list[CollectedResource], allowed: list[str] | None) -> list[tuple[str, str, str]]:
    config = {} if allowed is None else {RULE: {"allowedShareAccounts": allowed}}
    return resource_findings(_rule(), stack, config)


def test_a_listed_account_passes(ledgerly: list[CollectedResource]) -> None:
    assert _findings(ledgerly, [OTHER]) == []


def test_production_config_lists_the_examples_account_and_no_other() -> None:
    config = json.loads((REPO / "policies" / "config" / "production.json").read_text())
    assert config[RULE] == {"enforcementLevel": "mandatory", "allowedShareAccounts": [OTHER]}


def test_by_default_no_account_may_be_shared_with(ledgerly: list[CollectedResource]) -> None:
    found = _findings(ledgerly, None)
    # The secret policy's Allow and its deny exception, and each key's grant (the primary and the replica key).
    assert sorted((name, message.split(" shares with ")[0].rsplit(" ", 2)[-2:][1]) for _, name, message in found) == [
        ("ledgerly-production-kms-eu-central-1-key", "'SharedRoleDecrypt1'"),
        ("ledgerly-production-kms-key", "'SharedRoleDecrypt1'"),
        (POLICY_NAME, "'DenyOutsideAccount'"),
        (POLICY_NAME, "'SharedRolesRead'"),
    ]
    assert all(f"shares with account {OTHER} (arn:aws:iam::{OTHER}:role/ledgerly-batch-renderer)" in m
               and "allowedShareAccounts: none" in m for _, _, m in found)


def _edited(stack: list[CollectedResource], edit: Any) -> list[CollectedResource]:
    out = []
    for r in stack:
        if r.name == POLICY_NAME:
            document = json.loads(r.inputs["policy"])
            edit(document["Statement"])
            r = replace(r, inputs={**r.inputs, "policy": json.dumps(document)})
        out.append(r)
    return out


@pytest.mark.parametrize(("principal", "message"), [
    (f"arn:aws:iam::{OTHER}:root", "which is no role"),
    (OTHER, "which is no role"),
    ("*", "which is no role"),
    ("arn:aws:iam::999999999999:role/reader", "shares with account 999999999999"),
    (f"arn:aws:iam::{OTHER}:user/bob", "which is no role"),
])
def test_a_root_a_wildcard_a_user_or_an_unlisted_account_is_refused(
        ledgerly: list[CollectedResource], principal: str, message: str) -> None:
    def edit(statements: list[dict[str, Any]]) -> None:
        statements[1]["Principal"] = {"AWS": principal}

    found = [(n, m) for _, n, m in _findings(_edited(ledgerly, edit), [OTHER]) if n == POLICY_NAME]
    assert len(found) == 1 and message in found[0][1], found


def test_a_deny_exception_for_an_unlisted_role_is_a_share_too(ledgerly: list[CollectedResource]) -> None:
    """Excepting a role from the deny of other accounts opens the secret to whatever that role's account
    grants it, even without an Allow here."""
    def edit(statements: list[dict[str, Any]]) -> None:
        statements[0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] = [
            f"arn:aws:iam::{OTHER}:role/ledgerly-batch-renderer", "arn:aws:iam::999999999999:role/x"]

    found = _findings(_edited(ledgerly, edit), [OTHER])
    assert [(n, "999999999999" in m) for _, n, m in found] == [(POLICY_NAME, True)]
