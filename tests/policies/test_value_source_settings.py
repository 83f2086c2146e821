"""secret-value-source on JSON fields whose name looks secret: a short number or a flag is a setting (an
LLM's `maxTokens: "1000"` from a catalog default), a literal string or a long digit string is not."""

from __future__ import annotations

import json

import policy_fixtures as f
import pytest

from preview import policy_check as pc


def _run_with(document: dict[str, str]) -> list[tuple[str, str]]:
    stack = f.set_input("api-token-version", "secretString", json.dumps(document))(f.base_stack())
    violations = pc.evaluate(stack, project=f.PROJECT, stack=f.STACK, stack_config=f.STACK_CONFIG)
    return [(v.policy, v.message) for v in violations]


@pytest.mark.parametrize("value", ["1000", "0.7", "-1", "true", "FALSE", "123456"])
def test_a_short_number_or_a_flag_is_a_setting(value: str) -> None:
    assert _run_with({"apiToken": f.CONFIG_API_TOKEN, "maxTokens": value}) == []


@pytest.mark.parametrize("value", ["1234567", "12345678901234567890", "0.1234567", "literal-in-code", "yes"])
def test_anything_else_under_a_secret_looking_name_is_a_literal(value: str) -> None:
    assert _run_with({"apiToken": f.CONFIG_API_TOKEN, "maxTokens": value}) == [(
        "secret-value-source",
        "secret version api-token-version: secretString (maxTokens) is neither generated (no dependency on a "
        "random:* resource) nor a stack config value; generate it with pulumi_random or read it with "
        "config.require_secret.",
    )]
