"""jwt-rs256 publishes its public half in a second secret (`<name>-public-key`) that verifiers read.

Against moto: the first key of an empty secret, a later rotation keeping the previous key, what a
verifier sees between the two writes (setSecret publishes, finishSecret switches the signer), each
step run twice, a conflicting version under the rotation's token, a missing public secret, and the
key size from the catalog.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rotation_harness import STEPS, Harness, SecretDict

from rotation.errors import ConfigurationError, ExternalServiceError, SecretFormatError
from rotation.protocol import RotationContext, SecretStore
from rotation.strategies.jwt import Rs256Strategy, public_document, sign_rs256, verify_rs256

CLAIMS = {"sub": "user-1", "aud": "api"}


def _pair(harness: Harness, name: str, bits: int = 2048) -> tuple[str, str]:
    """An empty signing secret and its empty public secret (as `pulumi up` creates them); the function."""
    public = f"{name}-public-key"
    harness.sm.create_secret(Name=name)
    harness.sm.create_secret(Name=public)
    return public, harness.function("jwt-rs256", {name: {"bits": bits, "public": public}}, paused=True)


def _run(harness: Harness, name: str, fn: str, steps: tuple[str, ...] = STEPS, token: str | None = None) -> str:
    token = token or harness.rotate(name, fn)
    for step in steps:
        harness.step(name, step, token, fn)
    return token


def _published(harness: Harness, public: str) -> SecretDict:
    return harness.json(public)


def _assert_public_only(harness: Harness, public: str) -> None:
    """Nothing in any version of the public secret could sign: no PEM private key, no JWK private member."""
    for version in harness.stages(public):
        text = harness.sm.get_secret_value(SecretId=public, VersionId=version)["SecretString"]
        assert "PRIVATE KEY" not in text
        document = json.loads(text)
        assert set(document) == {"alg", "jwks", "keys_pem", "pem"}
        assert all(not {"d", "p", "q", "dp", "dq", "qi"} & set(k) for k in json.loads(document["jwks"])["keys"])


def test_first_key_and_next_rotation_publish_the_jwks_with_the_previous_key(harness: Harness, name: str) -> None:
    public, fn = _pair(harness, name)
    first = _run(harness, name, fn)
    pair = harness.json(name)
    published = _published(harness, public)
    assert [k["kid"] for k in json.loads(published["jwks"])["keys"]] == [pair["kid"]]
    assert list(published["keys_pem"]) == [pair["kid"]]
    issued = sign_rs256(pair["private_key_pem"], pair["kid"], CLAIMS)
    assert verify_rs256(published["jwks"], issued) == CLAIMS
    # The public secret's version is the rotation's token: one rotation, one version in each secret.
    assert harness.version_of(public, "AWSCURRENT") == first == harness.version_of(name, "AWSCURRENT")

    second = _run(harness, name, fn)
    rotated = harness.json(name)
    published = _published(harness, public)
    assert [k["kid"] for k in json.loads(published["jwks"])["keys"]] == [rotated["kid"], pair["kid"]]
    assert verify_rs256(published["jwks"], issued) == CLAIMS  # signed before the switch: still verifies
    assert verify_rs256(published["jwks"], sign_rs256(rotated["private_key_pem"], rotated["kid"], CLAIMS)) == CLAIMS
    assert harness.version_of(public, "AWSCURRENT") == second
    assert harness.version_of(public, "AWSPREVIOUS") == first
    # Each kid's PEM too, for verifiers that take PEMs rather than a JWKS.
    assert published["alg"] == "RS256"
    assert published["keys_pem"] == {rotated["kid"]: rotated["public_key_pem"], pair["kid"]: pair["public_key_pem"]}
    _assert_public_only(harness, public)


def test_between_the_two_writes_every_token_a_signer_can_issue_verifies(harness: Harness, name: str) -> None:
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    old = harness.json(name)
    token = _run(harness, name, fn, steps=("createSecret", "setSecret"))
    # setSecret has published; finishSecret has not run: signers still sign with the old key.
    assert harness.json(name)["kid"] == old["kid"]
    pending = harness.json(name, "AWSPENDING")
    published = _published(harness, public)
    assert [k["kid"] for k in json.loads(published["jwks"])["keys"]] == [pending["kid"], old["kid"]]
    assert verify_rs256(published["jwks"], sign_rs256(old["private_key_pem"], old["kid"], CLAIMS)) == CLAIMS
    # The moment finishSecret moves AWSCURRENT, the new signer's tokens verify with what was published.
    _run(harness, name, fn, steps=("testSecret", "finishSecret"), token=token)
    new = harness.json(name)
    assert new["kid"] == pending["kid"]
    assert verify_rs256(published["jwks"], sign_rs256(new["private_key_pem"], new["kid"], CLAIMS)) == CLAIMS


def test_every_step_twice_publishes_once(harness: Harness, name: str) -> None:
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    before = set(harness.stages(public))
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
        harness.step(name, step, token, fn)  # a retry, or a re-run after a crash mid-step
    assert set(harness.stages(public)) == before | {token}
    assert harness.version_of(public, "AWSCURRENT") == token
    assert next(k["kid"] for k in json.loads(_published(harness, public)["jwks"])["keys"]) == harness.json(name)["kid"]


def test_setsecret_rerun_after_a_later_publish_changes_nothing(harness: Harness, name: str) -> None:
    """The crash case: setSecret published, the function died before returning, Secrets Manager retries."""
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    token = _run(harness, name, fn, steps=("createSecret", "setSecret"))
    published = harness.value(public)
    harness.step(name, "setSecret", token, fn)
    assert harness.value(public) == published
    assert harness.stages(public)[token] == ["AWSCURRENT"]


def test_a_different_value_under_the_token_fails_loudly_and_nothing_switches(harness: Harness, name: str) -> None:
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    current = harness.version_of(name, "AWSCURRENT")
    token = _run(harness, name, fn, steps=("createSecret",))
    harness.sm.put_secret_value(SecretId=public, ClientRequestToken=token,
                                SecretString=json.dumps({"alg": "RS256", "jwks": {"keys": []}, "keys_pem": {}}))
    with pytest.raises(ExternalServiceError, match="ResourceExistsException") as info:
        harness.step(name, "setSecret", token, fn)
    assert public in str(info.value)
    assert harness.version_of(name, "AWSCURRENT") == current  # the signer never moved


def test_a_missing_public_secret_stops_the_rotation_before_the_switch(harness: Harness, name: str) -> None:
    harness.sm.create_secret(Name=name)
    fn = harness.function("jwt-rs256", {name: {"bits": 2048, "public": f"{name}-public-key"}}, paused=True)
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    with pytest.raises(ExternalServiceError, match="ResourceNotFoundException"):
        harness.step(name, "setSecret", token, fn)
    assert harness.version_of(name, "AWSCURRENT") is None


@pytest.mark.parametrize("bits", [2048, 3072])
def test_the_catalog_key_size_is_the_size_of_every_new_pair(harness: Harness, name: str, bits: int) -> None:
    public, fn = _pair(harness, name, bits)
    _run(harness, name, fn)
    _run(harness, name, fn)
    loaded = serialization.load_pem_private_key(harness.json(name)["private_key_pem"].encode(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == bits
    pem = next(iter(_published(harness, public)["keys_pem"].values()))
    public_key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == bits


@pytest.mark.parametrize("params, message", [
    ({"bits": 1024}, "bits=1024 must be 2048, 3072 or 4096"),
    ({"bits": True}, "must be 2048, 3072 or 4096"),
    ({"public": ""}, "must be the name of the public-key secret"),
    ({"public": 7}, "must be the name of the public-key secret"),
])
def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Rs256Strategy(params)


def _rsa_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# Two key pairs the tests share (made at run time, never committed): the current one and the pending one,
# as createSecret writes them (rotation/strategies/jwt.py Rs256Strategy._new).
STRATEGY = Rs256Strategy({"bits": 2048, "public": "shop/staging/signing-public-key"})
CURRENT = json.loads(STRATEGY.create_first(None))  # type: ignore[arg-type]
PENDING_DOC = json.loads(STRATEGY.create_pending(json.dumps(CURRENT), RotationContext(
    secret_name="shop/staging/signing", token="t" * 36, store=None, client=None)))  # type: ignore[arg-type]
PENDING = json.dumps(PENDING_DOC)
PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _stubbed_set(pending: str, error: tuple[str, str] | None = None, put: bool = True,
                 current: str | None = None, public: str = "shop/staging/signing-public-key") -> str | None:
    """Rs256Strategy.set against botocore's Stubber: exactly the one PutSecretValue it makes (`put`), answered
    by `error` (code, message) if given; returns the SecretString it put."""
    client = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    ctx = RotationContext(secret_name="shop/staging/signing", token="t" * 36,
                          store=SecretStore(client, "shop/staging/signing"), client=client)
    strategy = Rs256Strategy({"bits": 2048, "public": public})
    current = json.dumps(CURRENT) if current is None else current
    document = None
    with Stubber(client) as stubber:
        if put:
            document = public_document(json.loads(pending), json.loads(current) if current else None)
            expected = {"SecretId": public, "ClientRequestToken": "t" * 36,
                        "SecretString": document, "VersionStages": ["AWSCURRENT"]}
            if error is None:
                stubber.add_response("put_secret_value", {}, expected_params=expected)
            else:
                stubber.add_client_error("put_secret_value", *error, expected_params=expected)
        strategy.set(pending, current, ctx)
        stubber.assert_no_pending_responses()
    return document


def test_the_published_document_is_only_the_two_public_keys() -> None:
    document = json.loads(_stubbed_set(PENDING) or "")
    assert set(document) == {"alg", "jwks", "keys_pem", "pem"}
    assert isinstance(document["jwks"], str), "JSON text: what a bound variable receives (ECS agent %v)"
    keys = json.loads(document["jwks"])["keys"]
    assert [k["kid"] for k in keys] == [PENDING_DOC["kid"], CURRENT["kid"]]
    assert all(set(k) == {"kty", "n", "e", "kid", "alg", "use"} for k in keys)
    assert set(document["keys_pem"]) == {PENDING_DOC["kid"], CURRENT["kid"]}
    for pem in document["keys_pem"].values():
        assert "PRIVATE" not in pem.upper()
        serialization.load_pem_public_key(pem.encode())
    token = sign_rs256(CURRENT["private_key_pem"], CURRENT["kid"], CLAIMS)
    assert verify_rs256(document["jwks"], token) == CLAIMS, "the current key still verifies before the switch"


def _framed(body: str) -> str:
    """A PEM private-key frame around a body that is no key at all (too short, or not base64)."""
    label = "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def _swap(**fields: Any) -> str:
    return json.dumps({**PENDING_DOC, **fields})


def _jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BODY = "".join(_rsa_pem(OTHER).splitlines()[1:-1])  # a private key's base64 body without its PEM lines


@pytest.mark.parametrize(("pending", "message"), [
    # A private key where the public half belongs, under a header the old substring check let through.
    (_swap(public_key_pem=_rsa_pem(OTHER).replace("PRIVATE KEY", "KEY")), "public_key_pem is not a PEM public key"),
    (_swap(public_key_pem=_rsa_pem(OTHER).replace("PRIVATE KEY", "private key")),
     "public_key_pem is not a PEM public key"),
    (_swap(public_key_pem=BODY), "public_key_pem is not a PEM public key"),
    (_swap(public_key_pem=_rsa_pem(OTHER)), "public_key_pem is not a PEM public key"),
    (_swap(public_key_pem=_public_pem(OTHER)), "public_key_pem is not the public half of private_key_pem"),
    # A JWKS carrying private members, an empty one, one with only a foreign kid.
    (_swap(jwks=_jwks({**json.loads(PENDING_DOC["jwks"])["keys"][0], "d": "AQAB", "p": "AQAB", "q": "AQAB"})),
     "its JWKS holds private key members"),
    (_swap(jwks="{}"), 'jwks must be {"keys": [JWK, ...]}'),
    (_swap(jwks={}), 'jwks must be {"keys": [JWK, ...]}'),
    (_swap(jwks=_jwks({**json.loads(PENDING_DOC["jwks"])["keys"][0], "kid": "someone-else"})),
     f"its JWKS does not list key '{PENDING_DOC['kid']}'"),
    (_swap(jwks=_jwks(json.loads(PENDING_DOC["jwks"])["keys"][0])), f"its JWKS does not list key '{CURRENT['kid']}'"),
    (_swap(jwks="{not json"), "jwks is not JSON text"),
    (_swap(jwks=_jwks({**json.loads(PENDING_DOC["jwks"])["keys"][0], "n": "!!not base64!!"})),
     "n or e is not base64url"),
    # Malformed or foreign private keys.
    (_swap(private_key_pem=_framed("AAAA")),
     "private_key_pem is not an unencrypted PEM private key"),
    (_swap(private_key_pem=_framed("%%%%")),
     "private_key_pem is not an unencrypted PEM private key"),
    (_swap(private_key_pem=""), "private_key_pem is not an unencrypted PEM private key"),
    (_swap(private_key_pem=_rsa_pem(EC_KEY)), "private_key_pem is not an RSA key"),
    # The previous key is the current one, kept.
    (_swap(previous_kid="not-the-current"), f"previous_kid is not AWSCURRENT's kid '{CURRENT['kid']}'"),
    (_swap(previous_kid=None), f"previous_kid is not AWSCURRENT's kid '{CURRENT['kid']}'"),
    (_swap(kid=""), "kid must be a non-empty string"),
    (_swap(kid="x" * 70_000, jwks=_jwks({**json.loads(PENDING_DOC["jwks"])["keys"][0], "kid": "x" * 70_000},
                                        json.loads(PENDING_DOC["jwks"])["keys"][1])),
     "the public document would be"),
], ids=lambda _: "case")  # stable ids: the kids hold the time of import, and mutmut re-selects tests by id
def test_a_pending_key_that_cannot_be_published_whole_is_refused_before_any_write(pending: str, message: str) -> None:
    """None of these reaches PutSecretValue (the Stubber expects no call): verifiers keep a document that holds the
    current key, and nothing private is published. Each is a RotationError (here SecretFormatError), never a
    ValueError, KeyError or binascii.Error, and its message quotes no key material."""
    with pytest.raises(SecretFormatError) as caught:
        _stubbed_set(pending, put=False)
    assert message in str(caught.value)
    assert "MII" not in str(caught.value) and BODY[:40] not in str(caught.value)


@pytest.mark.parametrize("current", [
    json.dumps({"kid": CURRENT["kid"],
                "private_key_pem": _framed("AA==")}),
    json.dumps({"kid": CURRENT["kid"], "private_key_pem": _rsa_pem(OTHER)}),
    json.dumps({"kid": CURRENT["kid"]}),
    "not json",
], ids=lambda _: "case")
def test_a_current_key_that_cannot_be_kept_stops_the_publication(current: str) -> None:
    with pytest.raises(SecretFormatError):
        _stubbed_set(PENDING, put=False, current=current)


@pytest.mark.parametrize("public", ["shop/staging/signing",
                                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/staging/signing-AbCdEf"])
def test_a_public_target_naming_the_rotated_secret_is_refused(public: str) -> None:
    with pytest.raises(ConfigurationError, match="names the secret being rotated"):
        _stubbed_set(PENDING, put=False, public=public)


def test_a_first_key_publishes_itself_alone() -> None:
    first = STRATEGY.create_first(None)  # type: ignore[arg-type]
    document = json.loads(_stubbed_set(first, current="") or "")
    assert [k["kid"] for k in json.loads(document["jwks"])["keys"]] == [json.loads(first)["kid"]]


def test_publishing_names_the_version_and_the_public_secret(rotation_logs: Any) -> None:
    _stubbed_set(PENDING)
    assert [r.getMessage() for r in rotation_logs.records if r.name == "rotation.strategies.jwt"] == [
        f"setSecret: published the public keys of version {'t' * 36} in shop/staging/signing-public-key"]


def test_a_refused_publication_says_where_and_why() -> None:
    with pytest.raises(ExternalServiceError) as caught:
        _stubbed_set(PENDING, ("AccessDeniedException", "not allowed to put"))
    assert str(caught.value) == ("setSecret: publishing the public keys of shop/staging/signing in "
                                 "shop/staging/signing-public-key failed: AccessDeniedException: not allowed to put")


def test_a_pending_key_without_its_public_parts_is_refused_by_stage() -> None:
    with pytest.raises(SecretFormatError) as caught:
        _stubbed_set(json.dumps({"alg": "RS256", "kid": "k1", "private_key_pem": "x", "jwks": "{}"}), put=False)
    assert str(caught.value) == "secret shop/staging/signing (AWSPENDING) lacks required field(s) ['public_key_pem']"


def test_a_refusal_without_the_usual_fields_still_says_where() -> None:
    from botocore.exceptions import ClientError

    class Bare:
        def put_secret_value(self, **_: Any) -> None:
            raise ClientError({}, "PutSecretValue")

    ctx = RotationContext(secret_name="shop/staging/signing", token="t" * 36,
                          store=SecretStore(Bare(), "shop/staging/signing"), client=Bare())
    with pytest.raises(ExternalServiceError) as caught:
        Rs256Strategy({"public": "shop/staging/signing-public-key"}).set(PENDING, json.dumps(CURRENT), ctx)
    assert str(caught.value) == ("setSecret: publishing the public keys of shop/staging/signing in "
                                 "shop/staging/signing-public-key failed: ?: ")


def test_against_moto_a_doctored_pending_key_leaves_the_verifiers_document_as_it_was(
        harness: Harness, name: str) -> None:
    """The same refusal through the dispatcher and Secrets Manager (moto): an AWSPENDING whose public field holds
    a private key under a header the old substring check missed; setSecret fails, the public secret's
    AWSCURRENT is the document with the current key, and the signer never moves."""
    public, fn = _pair(harness, name)
    _run(harness, name, fn)
    published = harness.value(public)
    current = harness.json(name)
    token = harness.rotate(name, fn)
    doctored = json.loads(STRATEGY.create_pending(json.dumps(current), RotationContext(
        secret_name=name, token=token, store=None, client=None)))  # type: ignore[arg-type]
    doctored["public_key_pem"] = doctored["private_key_pem"].replace("PRIVATE KEY", "KEY")
    harness.sm.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=json.dumps(doctored),
                                VersionStages=["AWSPENDING"])
    with pytest.raises(SecretFormatError, match="public_key_pem is not a PEM public key"):
        harness.step(name, "setSecret", token, fn)
    assert harness.value(public) == published
    assert token not in harness.stages(public)
    assert harness.json(name)["kid"] == current["kid"]
    _assert_public_only(harness, public)
