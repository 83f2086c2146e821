"""JWT signing keys: HS256 and RS256, previous key still verifies tokens signed before the switch."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rotation_harness import STEPS, Harness, SecretDict, SecretStr, assert_no_secret

from rotation.errors import CredentialError, SecretFormatError
from rotation.strategies.jwt import b64url, b64url_decode, jwk, sign_hs256, sign_rs256, verify_hs256, verify_rs256

CLAIMS = {"sub": "user-1", "scope": "read"}


def _hs256_initial() -> SecretDict:
    return SecretDict(alg="HS256", kid="k0", key=b64url(secrets.token_bytes(32)))


def test_hs256_rotation_previous_key_verifies_old_token(harness: Harness, name: str) -> None:
    initial = _hs256_initial()
    harness.secret(name, json.dumps(initial))
    old_token = sign_hs256(initial["key"], initial["kid"], CLAIMS)
    fn = harness.function("jwt-hs256", {name: {}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    new = harness.json(name)
    assert new["alg"] == "HS256" and new["previous_kid"] == "k0"
    kept = new["previous_key"] == initial["key"]
    assert kept
    assert len(b64url_decode(new["key"])) >= 32
    assert verify_hs256(new, old_token) == CLAIMS
    assert verify_hs256(new, sign_hs256(new["key"], new["kid"], CLAIMS)) == CLAIMS
    # After one more rotation the original key is gone.
    harness.rotate(name, fn)
    with pytest.raises(CredentialError, match="no HS256 key with kid 'k0'"):
        verify_hs256(harness.json(name), old_token)


def test_hs256_tampered_token_rejected() -> None:
    secret = _hs256_initial()
    head, _body, sig = sign_hs256(secret["key"], "k0", CLAIMS).split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=").decode()
    with pytest.raises(CredentialError, match="does not verify"):
        verify_hs256(secret, f"{head}.{forged}.{sig}")


def test_rs256_rotation_jwks_holds_both_keys(harness: Harness, name: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    initial = SecretDict(
        {
            "alg": "RS256",
            "kid": "r0",
            "private_key_pem": private_pem,
            "public_key_pem": public_pem,
            "jwks": {"keys": [jwk(public_pem, "r0")]},
        }
    )
    harness.secret(name, json.dumps(initial))
    old_token = sign_rs256(private_pem, "r0", CLAIMS)
    fn = harness.function("jwt-rs256", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)  # every step twice: still one new key
    new = harness.json(name)
    assert new["previous_kid"] == "r0" and new["previous_public_key_pem"] == public_pem
    loaded = serialization.load_pem_private_key(new["private_key_pem"].encode(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == 4096
    assert [k["kid"] for k in json.loads(new["jwks"])["keys"]] == [new["kid"], "r0"]
    assert verify_rs256(new["jwks"], old_token) == CLAIMS
    assert verify_rs256(new["jwks"], sign_rs256(new["private_key_pem"], new["kid"], CLAIMS)) == CLAIMS
    assert "private" not in json.dumps(new["jwks"]) and all("d" not in k for k in json.loads(new["jwks"])["keys"])


def test_jwt_secret_lacks_key(harness: Harness, name: str) -> None:
    key = SecretStr(b64url(secrets.token_bytes(32)))
    harness.secret(name, json.dumps({"alg": "HS256", "key": key}))
    fn = harness.function("jwt-hs256", {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], SecretFormatError)
    assert "lacks required field(s) ['kid']" in str(errors[0])
    assert_no_secret(str(errors[0]), key)
    unchanged = harness.json(name)["key"] == key
    assert unchanged


def test_jwt_bad_pending_fails_test_step(harness: Harness, name: str) -> None:
    harness.secret(name, json.dumps(_hs256_initial()))
    fn = harness.function("jwt-hs256", {name: {}}, paused=True)
    token = harness.rotate(name, fn)
    short = SecretStr(b64url(secrets.token_bytes(8)))
    harness.sm.put_secret_value(
        SecretId=name,
        ClientRequestToken=token,
        SecretString=json.dumps({"alg": "HS256", "kid": "x", "key": short}),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(CredentialError, match="is not an HS256 key of 32\\+ bytes") as info:
        harness.step(name, "testSecret", token, fn)
    assert_no_secret(str(info.value), short)
