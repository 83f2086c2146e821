"""The JWT signing-key strategies on their own: token encoding (RFC 7515 compact serialization, base64url
without padding), HS256/RS256 signing and verification by `kid`, the JWKS (RFC 7517: kty, use, alg, kid,
n, e), parameter checks and the exact failure messages, which never contain key material."""

from __future__ import annotations

import json
import re
import secrets
from functools import lru_cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rotation.errors import ConfigurationError, CredentialError, SecretFormatError
from rotation.protocol import RotationContext
from rotation.strategies import jwt
from rotation.strategies.jwt import Hs256Strategy, Rs256Strategy

CTX = RotationContext(secret_name="shop/staging/signing", token="v-2", store=None, client=None)  # type: ignore[arg-type]
CLAIMS = {"sub": "someone", "n": 1}


def test_base64url_has_no_padding_and_round_trips() -> None:
    for size in range(0, 8):
        raw = secrets.token_bytes(size)
        text = jwt.b64url(raw)
        assert "=" not in text and "+" not in text and "/" not in text
        assert jwt.b64url_decode(text) == raw
    assert jwt.b64url(b"\xfb\xff") == "-_8"
    assert jwt.b64url(b"\x00\x00\x17") == "AAAX", "only padding is stripped from the end"


def test_a_kid_is_a_utc_timestamp_and_a_random_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime
    import time

    # The "Z" is true wherever the function runs: a local time zone 14 hours ahead does not change it.
    monkeypatch.setenv("TZ", "UTC-14")
    time.tzset()
    try:
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        kid = jwt._new_kid()
        after = datetime.datetime.now(datetime.UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", kid)
    stamp = datetime.datetime.strptime(kid.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    assert before <= stamp <= after
    assert jwt._new_kid() != kid


def test_the_signing_input_is_the_compact_header_and_claims() -> None:
    head, body = jwt._signing_input("HS256", "k1", CLAIMS).decode().split(".")
    assert json.loads(jwt.b64url_decode(head)) == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    assert jwt.b64url_decode(head) == b'{"alg":"HS256","typ":"JWT","kid":"k1"}'
    assert jwt.b64url_decode(body) == b'{"sub":"someone","n":1}'


def _hs256_secret() -> dict[str, str]:
    return {"alg": "HS256", "kid": "new", "key": jwt.b64url(secrets.token_bytes(32)),
            "previous_kid": "old", "previous_key": jwt.b64url(secrets.token_bytes(32))}


def test_hs256_verifies_with_the_key_or_the_previous_key_by_kid() -> None:
    secret = _hs256_secret()
    token = jwt.sign_hs256(secret["key"], "new", CLAIMS)
    assert token.count(".") == 2
    assert jwt.verify_hs256(secret, token) == CLAIMS
    assert jwt.verify_hs256(secret, jwt.sign_hs256(secret["previous_key"], "old", CLAIMS)) == CLAIMS
    with pytest.raises(CredentialError) as unknown:
        jwt.verify_hs256(secret, jwt.sign_hs256(secret["key"], "other", CLAIMS))
    assert str(unknown.value) == "no HS256 key with kid 'other'"
    with pytest.raises(CredentialError) as wrong_key:
        jwt.verify_hs256(secret, jwt.sign_hs256(secret["previous_key"], "new", CLAIMS))
    assert str(wrong_key.value) == "HS256 signature does not verify (kid 'new')"
    head, body, sig = token.split(".")
    other_alg = jwt.b64url(json.dumps({"alg": "none", "kid": "new"}).encode())
    with pytest.raises(CredentialError) as alg:
        jwt.verify_hs256(secret, f"{other_alg}.{body}.{sig}")
    assert str(alg.value) == "no HS256 key with kid 'new'"
    for malformed in ("a.b", "not-a-token", f"{head}.{body}.{sig}.x", f"!!.{body}.{sig}"):
        with pytest.raises(CredentialError) as bad:
            jwt.verify_hs256(secret, malformed)
        assert str(bad.value) == "malformed JWT"


@lru_cache(maxsize=2)
def _pem_pair() -> tuple[str, str]:
    strategy = Rs256Strategy({"bits": 2048})
    document = json.loads(strategy.create_first(CTX))
    return document["private_key_pem"], document["public_key_pem"]


def test_rs256_and_its_jwks() -> None:
    private_pem, public_pem = _pem_pair()
    key = jwt.jwk(public_pem, "k1")
    assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}
    assert (key["kty"], key["use"], key["alg"], key["kid"], key["e"]) == ("RSA", "sig", "RS256", "k1", "AQAB")
    assert len(jwt.b64url_decode(key["n"])) == 256, "a 2048-bit modulus, no leading zero byte"
    token = jwt.sign_rs256(private_pem, "k1", CLAIMS)
    assert json.loads(jwt.b64url_decode(token.split(".")[0]))["alg"] == "RS256"
    assert jwt.verify_rs256({"keys": [key]}, token) == CLAIMS
    with pytest.raises(CredentialError) as unknown:
        jwt.verify_rs256({"keys": [jwt.jwk(public_pem, "k2")]}, token)
    assert str(unknown.value) == "no RS256 key with kid 'k1' in the JWKS"
    with pytest.raises(CredentialError) as empty:
        jwt.verify_rs256({"keys": []}, token)
    assert str(empty.value) == "no RS256 key with kid 'k1' in the JWKS"
    # The JWKS as stored (JSON text) verifies the same.
    assert jwt.verify_rs256(jwt.jwks_text([key]), token) == CLAIMS
    hs = jwt.sign_hs256(jwt.b64url(secrets.token_bytes(32)), "k1", CLAIMS)
    with pytest.raises(CredentialError) as alg:
        jwt.verify_rs256({"keys": [key]}, hs)
    assert str(alg.value) == "no RS256 key with kid 'k1' in the JWKS"
    head, _, sig = token.split(".")
    forged = jwt.b64url(json.dumps({"sub": "admin"}).encode())
    with pytest.raises(CredentialError) as bad:
        jwt.verify_rs256({"keys": [key]}, f"{head}.{forged}.{sig}")
    assert str(bad.value) == "RS256 signature does not verify (kid 'k1')"


def test_keys_that_are_not_rsa_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()
    public_pem = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(SecretFormatError) as private:
        jwt.sign_rs256(private_pem, "k1", CLAIMS)
    assert str(private.value) == "private_key_pem is not an RSA key"
    with pytest.raises(SecretFormatError) as public:
        jwt.jwk(public_pem, "k1")
    assert str(public.value) == "public key 'k1' is not an RSA key"


@pytest.mark.parametrize("size", [31, 513, True, "32", 32.0])
def test_hs256_key_size_is_checked(size: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Hs256Strategy({"bytes": size})
    assert str(caught.value) == f"jwt-hs256: bytes={size!r} must be an integer in [32, 512]"


def test_hs256_keys_and_their_test() -> None:
    assert Hs256Strategy({}).size == 32 and Hs256Strategy({"bytes": 512}).size == 512
    strategy = Hs256Strategy({"bytes": 48})
    first = json.loads(strategy.create_first(CTX))
    assert set(first) == {"alg", "kid", "key"} and first["alg"] == "HS256"
    assert len(jwt.b64url_decode(first["key"])) == 48
    pending = json.loads(strategy.create_pending(json.dumps(first), CTX))
    assert pending["previous_kid"] == first["kid"] and pending["previous_key"] == first["key"]
    assert pending["key"] != first["key"] and pending["kid"] != first["kid"]
    strategy.test(json.dumps(pending), CTX)
    short = {**first, "key": jwt.b64url(secrets.token_bytes(31))}
    for bad in (short, {**first, "alg": "RS256"}):
        with pytest.raises(CredentialError) as caught:
            strategy.test(json.dumps(bad), CTX)
        assert str(caught.value) == "testSecret: AWSPENDING of shop/staging/signing is not an HS256 key of 32+ bytes"
    strategy.test(json.dumps({**first, "key": jwt.b64url(secrets.token_bytes(32))}), CTX)
    with pytest.raises(SecretFormatError) as missing:
        strategy.create_pending(json.dumps({"kid": "x"}), CTX)
    assert str(missing.value) == "secret shop/staging/signing (AWSCURRENT) lacks required field(s) ['key']"
    with pytest.raises(SecretFormatError) as pending_missing:
        strategy.test(json.dumps({"kid": "x", "key": "y"}), CTX)
    assert str(pending_missing.value) == "secret shop/staging/signing (AWSPENDING) lacks required field(s) ['alg']"


@pytest.mark.parametrize("bits", [1024, 8192, "4096", None])
def test_rs256_key_size_is_checked(bits: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Rs256Strategy({"bits": bits})
    assert str(caught.value) == f"jwt-rs256: bits={bits!r} must be 2048, 3072 or 4096"


def test_rs256_keys_carry_the_previous_public_key_and_are_tested() -> None:
    assert Rs256Strategy({}).bits == 4096 and Rs256Strategy({"bits": 3072}).bits == 3072
    strategy = Rs256Strategy({"bits": 2048})
    first = json.loads(strategy.create_first(CTX))
    assert set(first) == {"alg", "kid", "private_key_pem", "public_key_pem", "jwks"}
    assert [k["kid"] for k in json.loads(first["jwks"])["keys"]] == [first["kid"]]
    pending = json.loads(strategy.create_pending(json.dumps(first), CTX))
    assert pending["previous_kid"] == first["kid"] and pending["previous_public_key_pem"] == first["public_key_pem"]
    assert [k["kid"] for k in json.loads(pending["jwks"])["keys"]] == [pending["kid"], first["kid"]]
    assert json.loads(pending["jwks"])["keys"][1] == jwt.jwk(first["public_key_pem"], first["kid"])
    strategy.test(json.dumps(pending), CTX)
    with pytest.raises(CredentialError) as alg:
        strategy.test(json.dumps({**pending, "alg": "HS256"}), CTX)
    assert str(alg.value) == "testSecret: AWSPENDING of shop/staging/signing is not an RS256 key"
    # A JWKS without the new key, or a public key that does not match the private one: the round trip fails.
    stale = {**pending, "jwks": first["jwks"]}
    with pytest.raises(CredentialError):
        strategy.test(json.dumps(stale), CTX)
    mismatched = {**pending, "public_key_pem": first["public_key_pem"]}
    with pytest.raises(CredentialError) as round_trip:
        strategy.test(json.dumps(mismatched), CTX)
    assert str(round_trip.value) == f"RS256 signature does not verify (kid '{pending['kid']}')"


def test_messages_hold_no_key_material() -> None:
    strategy = Hs256Strategy({})
    first = json.loads(strategy.create_first(CTX))
    with pytest.raises(CredentialError) as caught:
        strategy.test(json.dumps({**first, "alg": "none"}), CTX)
    assert first["key"] not in str(caught.value)


def test_rs256_secrets_missing_fields_are_named_by_stage() -> None:
    strategy = Rs256Strategy({"bits": 2048})
    with pytest.raises(SecretFormatError) as current:
        strategy.create_pending(json.dumps({"kid": "k1"}), CTX)
    assert str(current.value) == "secret shop/staging/signing (AWSCURRENT) lacks required field(s) ['public_key_pem']"
    with pytest.raises(SecretFormatError) as pending:
        strategy.test(json.dumps({"alg": "RS256", "kid": "k1"}), CTX)
    assert str(pending.value) == (
        "secret shop/staging/signing (AWSPENDING) lacks required field(s) "
        "['jwks', 'private_key_pem', 'public_key_pem']")


@pytest.mark.parametrize(("jwks", "message"), [
    ({}, 'JWKS must be {"keys": [JWK, ...]}'),
    ("{}", 'JWKS must be {"keys": [JWK, ...]}'),
    ("{not json", "JWKS is not JSON text"),
    ({"keys": ["k1"]}, 'JWKS must be {"keys": [JWK, ...]}'),
    ({"keys": [{"kid": "k1", "kty": "RSA", "n": "@@@", "e": "AQAB"}]}, "n or e is not base64url"),
    ({"keys": [{"kid": "k1", "kty": "RSA", "e": "AQAB"}]}, "is not an RSA JWK with n and e"),
    ({"keys": [{"kid": "k1", "kty": "EC", "x": "AA", "y": "AA"}]}, "is not an RSA JWK with n and e"),
    ({"keys": [{"kid": "k1", "kty": "RSA", "n": "AQ", "e": "AQ"}]}, "is not a valid RSA public key"),
])
def test_malformed_jwk_material_is_a_rotation_error(jwks: object, message: str) -> None:
    """Not a KeyError, binascii.Error or ValueError: the dispatcher reports RotationErrors by step."""
    private_pem, _ = _pem_pair()
    token = jwt.sign_rs256(private_pem, "k1", CLAIMS)
    with pytest.raises(SecretFormatError) as caught:
        jwt.verify_rs256(jwks, token)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize("pem", ["", "-----BEGIN PUBLIC KEY-----\n@@\n-----END PUBLIC KEY-----\n", "MIIB"])
def test_malformed_pem_material_is_a_rotation_error(pem: str) -> None:
    with pytest.raises(SecretFormatError):
        jwt.jwk(pem, "k1")
    with pytest.raises(SecretFormatError):
        jwt.sign_rs256(pem, "k1", CLAIMS)
