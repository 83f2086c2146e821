"""The token strategy on its own: its parameter checks and the exact messages of its failures, which
name the secret and the stage but never a value."""

from __future__ import annotations

import json
import secrets

import pytest

from rotation.errors import ConfigurationError, CredentialError, SecretFormatError
from rotation.protocol import RotationContext
from rotation.strategies.token import TokenStrategy

HEX32 = {"kind": "bytes", "bytes": 32, "encoding": "hex"}
CTX = RotationContext(secret_name="shop/staging/api-token", token="v-1", store=None, client=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "shown"), [("", "''"), (5, "5"), (["k"], "['k']")])
def test_key_must_be_null_or_a_non_empty_string(key: object, shown: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenStrategy({"key": key, "generate": HEX32})
    assert str(caught.value) == f"token: 'key' must be null or a non-empty string, got {shown}"


def test_generate_is_required() -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenStrategy({"key": "token"})
    assert str(caught.value) == "token: parameter 'generate' (a generation spec) is required"


def test_a_plain_value_is_made_fresh_and_a_json_one_keeps_its_other_keys() -> None:
    plain = TokenStrategy({"key": None, "generate": HEX32})
    assert plain.derives_from_current is False
    first, second = plain.create_pending("", CTX), plain.create_first(CTX)
    assert len(first) == 64 and len(second) == 64 and first != second
    keyed = TokenStrategy({"key": "token", "generate": HEX32})
    assert keyed.derives_from_current is True
    current = json.dumps({"token": secrets.token_hex(32), "clientId": "shop-api"})
    pending = json.loads(keyed.create_pending(current, CTX))
    assert set(pending) == {"token", "clientId"} and pending["clientId"] == "shop-api"
    assert pending["token"] != json.loads(current)["token"] and len(pending["token"]) == 64
    assert json.loads(keyed.create_first(CTX)).keys() == {"token"}


def test_a_current_value_that_is_not_json_is_named_by_secret_and_stage() -> None:
    keyed = TokenStrategy({"key": "token", "generate": HEX32})
    with pytest.raises(SecretFormatError) as caught:
        keyed.create_pending("not json", CTX)
    assert str(caught.value) == "secret shop/staging/api-token (AWSCURRENT) is not valid JSON"


def test_a_pending_value_is_checked_before_it_becomes_current() -> None:
    keyed = TokenStrategy({"key": "token", "generate": HEX32})
    keyed.test(json.dumps({"token": secrets.token_hex(8)}), CTX)
    with pytest.raises(SecretFormatError) as caught:
        keyed.test(json.dumps({"other": "x"}), CTX)
    assert str(caught.value) == "secret shop/staging/api-token (AWSPENDING) lacks required field(s) ['token']"
    with pytest.raises(CredentialError) as empty:
        keyed.test(json.dumps({"token": ""}), CTX)
    assert str(empty.value) == "token: the AWSPENDING value of shop/staging/api-token is empty"
    plain = TokenStrategy({"key": None, "generate": HEX32})
    plain.test(secrets.token_hex(8), CTX)
    with pytest.raises(CredentialError):
        plain.test("", CTX)
