"""JWT signing keys: HS256 shared secrets and RS256 key pairs, with the previous key kept.

jwt-hs256 JSON: {"alg": "HS256", "kid", "key", "previous_kid", "previous_key"}
  key = base64url (no padding) of `bytes` random bytes (param, default 32, at least 32).
jwt-rs256 JSON: {"alg": "RS256", "kid", "private_key_pem", "public_key_pem",
  "previous_kid", "previous_public_key_pem", "jwks"}
  jwks = the JSON text of {"keys": [JWK of the key, JWK of the previous key]}: verifiers load the JWKS
  and accept tokens signed before the switch until they expire. Text, not a nested object: a variable
  bound to it (`valueFrom <arn>:jwks::`) gets what the ECS agent makes of the value with Go's `%v`
  (aws/amazon-ecs-agent agent/asm/asm.go), which is the text itself only for a string; an object would
  arrive as `map[keys:[...]]`. Readers accept the object too (versions written before).
  RSA size: param `bits`, default 4096.
  Param `public` (a secret name): setSecret publishes {"alg", "jwks", "keys_pem": {kid: PEM}, "pem"} there
  (jwks as JSON text, as above), as version ClientRequestToken (PutSecretValue's idempotency: a re-run
  puts the same bytes and AWS ignores it). It runs before finishSecret, so verifiers hold the new key
  before any signer uses it; meanwhile the JWKS lists both the new key (not signing yet) and the current
  one; `pem` is the new key's PEM alone (a single-PEM verifier switches here, before the key signs). The
  document is built from the public numbers (n, e) of the pending and current private keys,
  never copied from a field of the pending value, and is checked whole before anything is written.

The previous_* fields come from AWSCURRENT at createSecret time; a secret created without a
value gets a first key with no previous_* fields (nothing was signed before it). No external system: setSecret
has nothing to install; testSecret signs and verifies a token with the pending key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rotation.errors import ConfigurationError, CredentialError, ExternalServiceError, SecretFormatError
from rotation.protocol import CURRENT, RotationContext, Strategy
from rotation.values import load_object

logger = logging.getLogger(__name__)

MIN_HS256_BYTES = 32
MIN_RSA_BITS = 2048
SECRET_STRING_LIMIT = 65_536
"""PutSecretValue's SecretString maximum (botocore secretsmanager SecretStringType, max 65536)."""
JWK_MEMBERS = ("kty", "use", "alg", "kid", "n", "e")
"""The only members a published JWK has (RFC 7517/7518: an RSA public key)."""
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
"""JWK members that hold private or symmetric key material (RFC 7518 sections 6.3.2 and 6.4)."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_kid() -> str:
    # Sortable by creation time, unique across concurrent rotations.
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def _signing_input(alg: str, kid: str, claims: Mapping[str, Any]) -> bytes:
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    return (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    ).encode("ascii")


def _split(token: str) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        head, body, sig = token.split(".")
        header = json.loads(b64url_decode(head))
        if not isinstance(header, dict):
            raise ValueError("header")
        return header, f"{head}.{body}".encode("ascii"), b64url_decode(sig)
    except (ValueError, UnicodeError) as exc:
        raise CredentialError("malformed JWT") from exc


def sign_hs256(key_b64url: str, kid: str, claims: Mapping[str, Any]) -> str:
    signing_input = _signing_input("HS256", kid, claims)
    mac = hmac.new(b64url_decode(key_b64url), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(mac)}"


def verify_hs256(secret: Mapping[str, Any], token: str) -> dict[str, Any]:
    """Verify with the key or the previous key of an HS256 secret, chosen by `kid`; return claims."""
    header, signing_input, sig = _split(token)
    keys = {secret.get("kid"): secret.get("key"), secret.get("previous_kid"): secret.get("previous_key")}
    key = keys.get(header.get("kid")) if header.get("alg") == "HS256" else None
    if not key:
        raise CredentialError(f"no HS256 key with kid {header.get('kid')!r}")
    expected = hmac.new(b64url_decode(str(key)), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sig):
        raise CredentialError(f"HS256 signature does not verify (kid {header.get('kid')!r})")
    claims: dict[str, Any] = json.loads(b64url_decode(signing_input.decode().split(".")[1]))
    return claims


def sign_rs256(private_key_pem: str, kid: str, claims: Mapping[str, Any]) -> str:
    key = private_key(private_key_pem, "private_key_pem")
    signing_input = _signing_input("RS256", kid, claims)
    sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64url(sig)}"


def _public_pem_key(public_key_pem: object, what: str) -> rsa.RSAPublicKey:
    if not isinstance(public_key_pem, str):
        raise SecretFormatError(f"{what} is not a PEM text")
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # cryptography's message may quote the material: it is not repeated.
        raise SecretFormatError(f"{what} is not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SecretFormatError(f"{what} is not an RSA key")
    return key


def private_key(private_key_pem: object, what: str) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key from its PEM; anything else is a SecretFormatError naming `what`."""
    if not isinstance(private_key_pem, str):
        raise SecretFormatError(f"{what} is not a PEM text")
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SecretFormatError(f"{what} is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SecretFormatError(f"{what} is not an RSA key")
    return key


def public_jwk(key: rsa.RSAPublicKey, kid: str) -> dict[str, str]:
    """The JWK of an RSA public key: exactly JWK_MEMBERS, from its public numbers."""
    numbers = key.public_numbers()

    def uint(n: int) -> str:
        return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": uint(numbers.n),
        "e": uint(numbers.e),
    }


def jwk(public_key_pem: str, kid: str) -> dict[str, str]:
    return public_jwk(_public_pem_key(public_key_pem, f"public key {kid!r}"), kid)


def jwks_text(keys: list[dict[str, str]]) -> str:
    """A JWKS as stored in a secret: JSON text (see the module docstring), deterministic."""
    return json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))


def load_jwks(value: object, what: str = "JWKS") -> dict[str, Any]:
    """A stored JWKS: JSON text, or the object a version written before held; checked in shape."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SecretFormatError(f"{what} is not JSON text") from exc
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) \
            or not all(isinstance(k, dict) for k in value["keys"]):
        raise SecretFormatError(f'{what} must be {{"keys": [JWK, ...]}}')
    return value


def _jwk_numbers(entry: Mapping[str, Any], what: str) -> rsa.RSAPublicNumbers:
    """n and e of an RSA JWK; malformed members are a SecretFormatError, not a KeyError or binascii.Error."""
    n, e = entry.get("n"), entry.get("e")
    if entry.get("kty") != "RSA" or not isinstance(n, str) or not isinstance(e, str):
        raise SecretFormatError(f"{what} is not an RSA JWK with n and e")
    if not (BASE64URL.fullmatch(n) and BASE64URL.fullmatch(e)):
        # urlsafe_b64decode drops characters outside the alphabet instead of failing.
        raise SecretFormatError(f"{what}: n or e is not base64url")
    try:
        return rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(e), "big"), int.from_bytes(b64url_decode(n), "big"))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise SecretFormatError(f"{what}: n or e is not base64url") from exc


def verify_rs256(jwks: Mapping[str, Any] | str, token: str) -> dict[str, Any]:
    """Verify an RS256 token against a JWKS (the key whose kid matches); return claims."""
    header, signing_input, sig = _split(token)
    match = [k for k in load_jwks(jwks)["keys"] if k.get("kid") == header.get("kid")]
    if header.get("alg") != "RS256" or not match:
        raise CredentialError(f"no RS256 key with kid {header.get('kid')!r} in the JWKS")
    numbers = _jwk_numbers(match[0], f"JWK {header.get('kid')!r}")
    try:
        numbers.public_key().verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except ValueError as exc:  # numbers that are no RSA key (e even, n too small)
        raise SecretFormatError(f"JWK {header.get('kid')!r} is not a valid RSA public key") from exc
    except InvalidSignature as exc:
        raise CredentialError(f"RS256 signature does not verify (kid {header.get('kid')!r})") from exc
    claims: dict[str, Any] = json.loads(b64url_decode(signing_input.decode().split(".")[1]))
    return claims


def _test_claims(ctx: RotationContext) -> dict[str, Any]:
    return {"sub": "rotation-test", "aud": ctx.secret_name, "iat": int(time.time()), "jti": ctx.token}


class _SigningKeyStrategy(Strategy):
    """A signing key: nothing to install anywhere, and a first key needs no previous one."""

    installs = False  # verifiers read the new key (and the previous one) once it is AWSCURRENT
    makes_first_value = True

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        """Nothing to install: verifiers read the key (HS256) or the JWKS (RS256) from the secret."""


class Hs256Strategy(_SigningKeyStrategy):
    name = "jwt-hs256"
    parameters = frozenset({"bytes"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        size = params.get("bytes", MIN_HS256_BYTES)
        if not isinstance(size, int) or isinstance(size, bool) or not MIN_HS256_BYTES <= size <= 512:
            raise ConfigurationError(f"{self.name}: bytes={size!r} must be an integer in [32, 512]")
        self.size = size

    def _new(self) -> dict[str, Any]:
        return {"alg": "HS256", "kid": _new_kid(), "key": b64url(secrets.token_bytes(self.size))}

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        cur = load_object(current, f"{ctx.secret_name} (AWSCURRENT)", {"kid": str, "key": str})
        return json.dumps({**self._new(), "previous_kid": cur["kid"], "previous_key": cur["key"]})

    def create_first(self, ctx: RotationContext) -> str:
        return json.dumps(self._new())

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = load_object(pending, f"{ctx.secret_name} (AWSPENDING)", {"alg": str, "kid": str, "key": str})
        if data["alg"] != "HS256" or len(b64url_decode(data["key"])) < MIN_HS256_BYTES:
            raise CredentialError(f"testSecret: AWSPENDING of {ctx.secret_name} is not an HS256 key of 32+ bytes")
        claims = _test_claims(ctx)
        if verify_hs256(data, sign_hs256(data["key"], data["kid"], claims)) != claims:
            raise CredentialError(f"testSecret: HS256 round trip failed for {ctx.secret_name}")


def _kid(data: Mapping[str, Any], field: str, what: str) -> str:
    kid = data.get(field)
    if not isinstance(kid, str) or not kid:
        raise SecretFormatError(f"{what}: {field} must be a non-empty string")
    return kid


def _listed(jwks: Mapping[str, Any], kid: str, key: rsa.RSAPublicKey, what: str) -> None:
    """The JWKS lists `kid` with exactly `key`'s numbers."""
    entry = next((k for k in jwks["keys"] if k.get("kid") == kid), None)
    if entry is None or _jwk_numbers(entry, f"{what}: JWK {kid!r}") != key.public_numbers():
        raise SecretFormatError(f"{what}: its JWKS does not list key {kid!r} with that key's public numbers")


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_document(pending: Mapping[str, Any], current: Mapping[str, Any] | None, what: str = "AWSPENDING") -> str:
    """What verifiers read: the JWKS (as JSON text) and each key's PEM by kid, for the pending key and the
    current one (`current` None: a first key, nothing signed before it). Built only from the public numbers of
    the two private keys, never from a field of the pending value; the pending value is checked against them
    (its public parts, its JWKS, its previous key) and the whole document against SecretString's limit, before
    anything is written. Deterministic: a re-run writes the same bytes."""
    kid = _kid(pending, "kid", what)
    signer = private_key(pending.get("private_key_pem"), f"{what}: private_key_pem").public_key()
    if _public_pem_key(pending.get("public_key_pem"), f"{what}: public_key_pem").public_numbers() \
            != signer.public_numbers():
        raise SecretFormatError(f"{what}: public_key_pem is not the public half of private_key_pem")
    jwks = load_jwks(pending.get("jwks"), f"{what}: jwks")
    if any(PRIVATE_MEMBERS & set(k) for k in jwks["keys"]):
        raise SecretFormatError(f"{what}: its JWKS holds private key members (d, p, q, ...): refusing to publish")
    _listed(jwks, kid, signer, what)
    keys = [(kid, signer)]
    if current is not None:
        current_kid = _kid(current, "kid", "AWSCURRENT")
        if pending.get("previous_kid") != current_kid:
            # Publishing it would drop the key that signs every token until finishSecret.
            raise SecretFormatError(f"{what}: previous_kid is not AWSCURRENT's kid {current_kid!r}: the current "
                                    "key would no longer verify")
        if current_kid == kid:
            raise SecretFormatError(f"{what}: its kid {kid!r} is AWSCURRENT's")
        previous = private_key(current.get("private_key_pem"), "AWSCURRENT: private_key_pem").public_key()
        _listed(jwks, current_kid, previous, what)
        keys.append((current_kid, previous))
    published = {
        "alg": "RS256",
        "jwks": jwks_text([public_jwk(k, i) for i, k in keys]),
        "keys_pem": {i: _public_pem(k) for i, k in keys},
        # The newest key alone, for verifiers that take one PEM: it switches here, before the key signs.
        "pem": _public_pem(signer),
    }
    _public_only(published, what)
    document = json.dumps(published, sort_keys=True, separators=(",", ":"))
    if len(document.encode()) > SECRET_STRING_LIMIT:
        raise SecretFormatError(f"{what}: the public document would be {len(document.encode()):,} bytes; a secret "
                                f"holds at most {SECRET_STRING_LIMIT:,}")
    return document


def _public_only(published: Mapping[str, Any], what: str) -> None:
    """The last check before the public document is written: every PEM in it (`keys_pem`, `pem`) is a public key
    and nothing else, under any header; the JWKS has no private member. Each PEM is re-serialised from public
    numbers above, so this never fires unless that code changes: a private key is never published."""
    pems = [published["pem"], *published["keys_pem"].values()]
    for pem in pems:
        if not isinstance(pem, str) or "PRIVATE" in pem.upper() or pem.count("-----BEGIN ") != 1:
            raise SecretFormatError(f"{what}: a PEM to publish is not one public key: refusing to publish")
        _public_pem_key(pem, f"{what}: a PEM to publish")
    if any(PRIVATE_MEMBERS & set(k) for k in load_jwks(published["jwks"])["keys"]):
        raise SecretFormatError(f"{what}: the JWKS to publish holds private key members: refusing to publish")


def same_secret(target: str, name: str) -> bool:
    """`target` (a name or an ARN) names the secret `name`: an ARN ends in `:secret:<name>-<6 characters>`."""
    return target == name or (target.startswith("arn:") and target.rsplit(":secret:", 1)[-1][:-7] == name)


class Rs256Strategy(_SigningKeyStrategy):
    name = "jwt-rs256"
    parameters = frozenset({"bits", "public"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        bits = params.get("bits", 4096)
        if bits not in (2048, 3072, 4096) or isinstance(bits, bool):
            raise ConfigurationError(f"{self.name}: bits={bits!r} must be 2048, 3072 or 4096")
        self.bits = bits
        public = params.get("public")
        if public is not None and (not isinstance(public, str) or not public):
            raise ConfigurationError(f"{self.name}: public={public!r} must be the name of the public-key secret")
        self.public: str | None = public
        # setSecret has something to install only when there is a public secret to publish to.
        self.installs = public is not None  # type: ignore[misc]

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        """Publish the pending key and the current one in the public secret, as version `ctx.token`."""
        if self.public is None:
            return
        if same_secret(self.public, ctx.secret_name):
            # Publishing into the secret being rotated would put a public document over its private key.
            raise ConfigurationError(f"{self.name}: public={self.public!r} names the secret being rotated")
        data = load_object(pending, f"{ctx.secret_name} (AWSPENDING)",
                           {"alg": str, "kid": str, "private_key_pem": str, "public_key_pem": str,
                            "jwks": (str, dict)})
        previous = load_object(current, f"{ctx.secret_name} (AWSCURRENT)", {"kid": str, "private_key_pem": str}) \
            if current else None
        # Same token, same bytes: AWS ignores a repeated PutSecretValue (setSecret run twice, or after a
        # crash); different bytes under that token fail (ResourceExistsException) rather than overwrite.
        document = public_document(data, previous, f"{ctx.secret_name} (AWSPENDING)")
        try:
            ctx.client.put_secret_value(SecretId=self.public, ClientRequestToken=ctx.token, SecretString=document,
                                        VersionStages=[CURRENT])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ExternalServiceError(
                f"setSecret: publishing the public keys of {ctx.secret_name} in {self.public} failed: "
                f"{error.get('Code', '?')}: {error.get('Message', '')}"
            ) from exc
        logger.info("setSecret: published the public keys of version %s in %s", ctx.token, self.public)

    def _new(self, previous: Mapping[str, Any] | None) -> str:
        """A new key pair; its JWKS also holds the previous public key, if there is one."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        kid = _new_kid()
        document: dict[str, Any] = {
            "alg": "RS256",
            "kid": kid,
            "private_key_pem": private_pem,
            "public_key_pem": public_pem,
        }
        keys = [jwk(public_pem, kid)]
        if previous is not None:
            document["previous_kid"] = previous["kid"]
            document["previous_public_key_pem"] = previous["public_key_pem"]
            keys.append(jwk(previous["public_key_pem"], previous["kid"]))
        document["jwks"] = jwks_text(keys)
        return json.dumps(document)

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        return self._new(load_object(current, f"{ctx.secret_name} (AWSCURRENT)", {"kid": str, "public_key_pem": str}))

    def create_first(self, ctx: RotationContext) -> str:
        return self._new(None)

    def test(self, pending: str, ctx: RotationContext) -> None:
        data = load_object(
            pending,
            f"{ctx.secret_name} (AWSPENDING)",
            {"alg": str, "kid": str, "private_key_pem": str, "public_key_pem": str, "jwks": (str, dict)},
        )
        if data["alg"] != "RS256":
            raise CredentialError(f"testSecret: AWSPENDING of {ctx.secret_name} is not an RS256 key")
        claims = _test_claims(ctx)
        token = sign_rs256(data["private_key_pem"], data["kid"], claims)
        if (
            verify_rs256(data["jwks"], token) != claims
            or verify_rs256({"keys": [jwk(data["public_key_pem"], data["kid"])]}, token) != claims
        ):
            raise CredentialError(f"testSecret: RS256 round trip failed for {ctx.secret_name}")
