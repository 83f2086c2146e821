"""The newest key's PEM in the public secret (`pem`), for verifiers that take one PEM rather than a JWKS.

Against moto, step by step: what a PEM verifier sees at each step of a rotation and when it changes. The PEM
switches at setSecret, with the JWKS, before finishSecret lets the new key sign: every token the new key signs
verifies against it. A single PEM cannot hold the previous key too, so from setSecret on, tokens signed by the
previous key fail against it (the JWKS still verifies them): the window docs/catalog.md states. And the last
check before anything is published: a PEM that is not exactly one public key is refused, under any header.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from rotation_harness import STEPS, Harness

from rotation.errors import SecretFormatError
from rotation.strategies.jwt import _public_only, public_document, sign_rs256, verify_rs256

CLAIMS = {"sub": "user-1", "aud": "api"}


def verifies_with_pem(pem: str, token: str) -> bool:
    """What a PEM-only verifier does: check the RS256 signature with the one key it holds (no kid lookup)."""
    header, payload, signature = token.split(".")
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), f"{header}.{payload}".encode(),
                   padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _pair(harness: Harness, name: str) -> tuple[str, str]:
    public = f"{name}-public-key"
    harness.sm.create_secret(Name=name)
    harness.sm.create_secret(Name=public)
    return public, harness.function("jwt-rs256", {name: {"bits": 2048, "public": public}}, paused=True)


def _run(harness: Harness, name: str, fn: str, steps: tuple[str, ...] = STEPS, token: str | None = None) -> str:
    token = token or harness.rotate(name, fn)
    for step in steps:
        harness.step(name, step, token, fn)
    return token


def test_the_pem_switches_at_setsecret_before_the_new_key_signs(harness: Harness, name: str) -> None:
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    old = harness.json(name)
    published = harness.json(public)
    assert published["pem"] == old["public_key_pem"]
    old_token = sign_rs256(old["private_key_pem"], old["kid"], CLAIMS)
    assert verifies_with_pem(published["pem"], old_token)

    token = _run(harness, name, fn, steps=("createSecret", "setSecret"))
    pending = harness.json(name, "AWSPENDING")
    published = harness.json(public)
    # setSecret has published; the signer is still the old key (finishSecret has not run).
    assert harness.json(name)["kid"] == old["kid"]
    assert published["pem"] == pending["public_key_pem"] == published["keys_pem"][pending["kid"]]
    new_token = sign_rs256(pending["private_key_pem"], pending["kid"], CLAIMS)
    assert verifies_with_pem(published["pem"], new_token), "the new key's tokens verify before it signs"
    # The window: the old key still signs, and its tokens fail against the one PEM; the JWKS verifies both.
    assert not verifies_with_pem(published["pem"], old_token)
    assert verify_rs256(published["jwks"], old_token) == CLAIMS == verify_rs256(published["jwks"], new_token)

    _run(harness, name, fn, steps=("testSecret", "finishSecret"), token=token)
    new = harness.json(name)
    assert new["kid"] == pending["kid"]
    # finishSecret publishes nothing: the PEM a verifier holds since setSecret is the signer's from now on.
    assert harness.json(public) == published
    assert verifies_with_pem(published["pem"], sign_rs256(new["private_key_pem"], new["kid"], CLAIMS))


def _private(key: Any, fmt: serialization.PrivateFormat) -> str:
    return str(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode())


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PKCS8 = _private(RSA, serialization.PrivateFormat.PKCS8)
PUBLIC = RSA.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
LABEL = "PRIVATE KEY"


def _relabel(pem: str, label: str) -> str:
    body = pem.splitlines()[1:-1]
    return "\n".join([f"-----BEGIN {label}-----", *body, f"-----END {label}-----"]) + "\n"


@pytest.mark.parametrize("pem", [
    PKCS8,                                                            # PKCS#8 "PRIVATE KEY"
    _private(RSA, serialization.PrivateFormat.TraditionalOpenSSL),     # "RSA PRIVATE KEY"
    PKCS8.replace(LABEL, LABEL.lower()),                               # a header in lower case
    _relabel(PKCS8, "PUBLIC KEY"),                                     # a private body under a public header
    _relabel(PKCS8, "KEY"),                                            # under a header that names nothing
    "".join(PKCS8.splitlines()[1:-1]),                                 # the bare base64 body
    PUBLIC + PKCS8,                                                    # a public key with a private one after it
    PUBLIC + PUBLIC,                                                   # two keys where one is published
    _private(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8),
    "",
])
@pytest.mark.parametrize("field", ["pem", "keys_pem"])
def test_a_pem_that_is_not_one_public_key_is_never_published(pem: str, field: str) -> None:
    pending, current = _pending_and_current()
    document = json.loads(public_document(dict(pending), dict(current)))
    if field == "pem":
        document["pem"] = pem
    else:
        document["keys_pem"] = {**document["keys_pem"], "k": pem}
    with pytest.raises(SecretFormatError) as caught:
        _public_only(document, "shop/staging/signing (AWSPENDING)")
    assert "MII" not in str(caught.value) and "PRIVATE" not in str(caught.value)


def test_the_published_pem_is_the_pending_keys_public_half_only() -> None:
    pending, current = _pending_and_current()
    document = json.loads(public_document(pending, current))
    assert "PRIVATE" not in json.dumps(document).upper()
    key = serialization.load_pem_public_key(document["pem"].encode())
    assert isinstance(key, rsa.RSAPublicKey)
    signer = serialization.load_pem_private_key(pending["private_key_pem"].encode(), password=None)
    assert key.public_numbers() == signer.public_key().public_numbers()


@functools.lru_cache(maxsize=1)
def _pending_and_current() -> tuple[dict[str, Any], dict[str, Any]]:
    from rotation.protocol import RotationContext
    from rotation.strategies.jwt import Rs256Strategy

    strategy = Rs256Strategy({"bits": 2048})
    current = json.loads(strategy.create_first(None))  # type: ignore[arg-type]
    ctx = RotationContext(secret_name="shop/staging/signing", token="t" * 36, store=None, client=None)  # type: ignore[arg-type]
    return json.loads(strategy.create_pending(json.dumps(current), ctx)), current
