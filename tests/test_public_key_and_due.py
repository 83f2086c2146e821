"""Catalog fields for key sizes, public keys and hand rotation, through the program: `rotation.bits`, `public_key`,
`rotate_every_days`. Each mistake is one line naming file, secret and field (exit 2, nothing
registered); a good catalog gives the public secret, its policies, the function's parameters,
the tags and the `publicKeys` output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_stack
from tests.test_errors import expect_error

STACK = """\
config:
  aws:region: eu-west-1
  secrets-platform:accountId: "210987654321"
  secrets-platform:recoveryWindowDays: 7
  secrets-platform:principals:
    runtime: [arn:aws:iam::210987654321:role/shop-staging-app]
    ci: [arn:aws:iam::210987654321:role/shop-staging-deploy]
    services:
      auth: [arn:aws:iam::210987654321:role/shop-staging-auth]
      gateway: [arn:aws:iam::210987654321:role/shop-staging-gateway]
"""

SIGNING = """\
  signing-key:
    description: Signs access tokens (RS256)
    class: critical
    rotation: {strategy: jwt-rs256, every_days: 180, first_value: rotation, bits: 3072}
    consumers: [auth]
    public_key: {verifiers: [gateway], env: JWT_JWKS}
    keys:
      kid: {env: JWT_KEY_ID, rotation: {}}
      private_key_pem: {env: JWT_PRIVATE_KEY, rotation: {}}
"""
PARTNER = """\
  partner-key:
    description: Partner API key, rotated by hand in the partner console
    class: critical
    rotation: manual
    rotate_every_days: 180
    rotation_reason: the partner console issues keys by hand
    consumers: [gateway]
    value: {env: PARTNER_KEY, generate: {kind: bytes, bytes: 32, encoding: hex}}
"""


def catalog(*entries: str) -> str:
    return "app: shop\nowner: platform\nsecrets:\n" + "".join(entries)


@pytest.mark.parametrize(("old", "new", "fragments"), [
    ("bits: 3072}", "bits: 1024}", ("secret 'signing-key'", "field 'rotation.bits'", "2048, 3072 or 4096")),
    ("strategy: jwt-rs256, every_days: 180, first_value: rotation, bits: 3072",
     "strategy: jwt-hs256, every_days: 180, bits: 3072",
     ("secret 'signing-key'", "field 'rotation'", "'bits' is the RSA key size of a jwt-rs256 key pair only")),
    ("verifiers: [gateway]", "verifiers: [auth]",
     ("secret 'signing-key'", "field 'public_key.verifiers'", "auth read(s) the private key as consumers")),
    ("verifiers: [gateway]", "verifiers: [Gateway]", ("secret 'signing-key'", "field 'public_key.verifiers")),
    ("env: JWT_JWKS}", "env: AWS_JWKS}", ("secret 'signing-key'", "field 'public_key.env'", "AWS SDK")),
    ("env: JWT_JWKS}", "env: JWT_KEY_ID}",
     ("secret 'signing-key'", "field 'public_key.env'", "JWT_KEY_ID is already fed by 'signing-key:kid'")),
    ("public_key: {verifiers: [gateway], env: JWT_JWKS}", "public_key: {readers: [gateway]}",
     ("secret 'signing-key'", "field 'public_key.readers'", "unknown field")),
])
def test_public_key_and_bits_mistakes(make_project: Callable[..., Path], old: str, new: str,
                                      fragments: tuple[str, ...]) -> None:
    assert old in SIGNING
    expect_error(make_project(catalog(SIGNING.replace(old, new)), STACK), "catalog.yaml", *fragments)


def test_public_key_on_a_secret_not_rotated_by_jwt_rs256(make_project: Callable[..., Path]) -> None:
    hs256 = SIGNING.replace("jwt-rs256", "jwt-hs256").replace(", bits: 3072", "").replace(
        "private_key_pem: {env: JWT_PRIVATE_KEY, rotation: {}}", "key: {env: JWT_KEY, rotation: {}}")
    expect_error(make_project(catalog(hs256), STACK), "secret 'signing-key'", "field 'public_key'",
                 "publishes the public half of a jwt-rs256 key pair")


def test_the_public_secret_name_must_be_free(make_project: Callable[..., Path]) -> None:
    taken = ("  signing-key-public-key:\n    description: already here\n    class: configuration\n"
             "    value: {config: {default: x}}\n")
    expect_error(make_project(catalog(SIGNING, taken), STACK), "secret 'signing-key'", "field 'public_key'",
                 "would be published as 'signing-key-public-key', which is already a secret of the catalog")
    long_name = "k" * 53
    expect_error(make_project(catalog(SIGNING.replace("signing-key:", f"{long_name}:")), STACK),
                 f"secret '{long_name}'", "field 'public_key'", "longer than 63 characters")


@pytest.mark.parametrize(("old", "new", "fragments"), [
    ("rotate_every_days: 180", "rotate_every_days: 0", ("field 'rotate_every_days'", "greater than or equal to 1")),
    ("rotate_every_days: 180", "rotate_every_days: 1001", ("field 'rotate_every_days'", "less than or equal to 1000")),
    ("rotate_every_days: 180", "rotate_every_days: yearly", ("field 'rotate_every_days'", "valid integer")),
    ("rotation: manual", "rotation: on-compromise",
     ("field 'rotate_every_days'", "'rotate_every_days' is the period of a secret rotated by hand")),
    ("rotation: manual", "rotation: {strategy: token, every_days: 30}",
     ("field 'rotate_every_days'", "a function's schedule is 'rotation.every_days'")),
])
def test_rotate_every_days_mistakes(make_project: Callable[..., Path], old: str, new: str,
                                    fragments: tuple[str, ...]) -> None:
    assert old in PARTNER
    expect_error(make_project(catalog(PARTNER.replace(old, new)), STACK), "secret 'partner-key'", *fragments)


def test_the_public_key_is_a_secret_of_its_own_that_verifiers_read(make_project: Callable[..., Path]) -> None:
    report = run_stack("staging", make_project(catalog(SIGNING, PARTNER), STACK))
    resources = report.run.resources
    by_name = {r.name: r for r in resources}
    public = by_name["shop-staging-signing-key-public-key-secret"]
    assert public.inputs["name"] == "shop/staging/signing-key-public-key"
    assert public.inputs["tags"]["public-key-of"] == "signing-key"
    assert public.inputs["tags"]["class"] == "configuration"
    # Empty until the signer's first rotation writes it: the tag says so in AWS, and the preview line too.
    assert public.inputs["tags"]["first-value"] == "rotation"
    # Encrypted with the environment's key and closed to other accounts, like every secret.
    assert public.inputs["kmsKeyId"] == by_name["shop-staging-signing-key-secret"].inputs["kmsKeyId"]
    assert "shop-staging-signing-key-public-key-policy" in by_name
    # The rotation function writes it: the program declares no value (nothing in Pulumi state).
    versions = [r for r in resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    # (partner-key, generated and rotated by hand, is made once by the first-value function: no version either.)
    assert versions == []
    assert by_name["shop-staging-partner-key-secret"].inputs["tags"]["first-value"] == "function"
    # The function gets the catalog's key size and the public secret's name.
    function = by_name["shop-staging-rotate-jwt-rs256-function"]
    targets = json.loads(function.inputs["environment"]["variables"]["ROTATION_TARGETS"])
    assert targets == {"shop/staging/signing-key": {"bits": 3072, "public": "shop/staging/signing-key-public-key"}}
    outputs = report.run.outputs
    assert outputs["publicKeys"]["signing-key"]["secretName"] == "shop/staging/signing-key-public-key"
    assert outputs["publicKeys"]["signing-key"]["jsonKey"] == "jwks"
    assert outputs["envVars"]["JWT_JWKS"] == "shop/staging/signing-key-public-key:jwks"
    # The gateway's policy names the public secret and denies the private one explicitly.
    gateway = json.loads(by_name["shop-staging-gateway-secrets-read-policy"].inputs["policy"])
    def listed(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else value

    allowed = next(listed(s["Resource"]) for s in gateway["Statement"] if s["Sid"] == "ReadSecrets")
    denied = [r for s in gateway["Statement"] if s["Effect"] == "Deny" and "secretsmanager:GetSecretValue" in
              listed(s["Action"]) for r in listed(s["Resource"])]
    assert any(r.endswith("/signing-key-public-key-??????") for r in allowed)
    assert not any(r.endswith("/signing-key-??????") for r in allowed)
    assert any(r.endswith("/signing-key-??????") for r in denied), gateway
    # A hand-rotated secret carries its period as a tag (the pack's maximum, `ops due`).
    assert by_name["shop-staging-partner-key-secret"].inputs["tags"]["rotate-every-days"] == "180"


def test_without_bits_the_function_makes_4096_bit_keys(make_project: Callable[..., Path]) -> None:
    report = run_stack("staging", make_project(catalog(SIGNING.replace(", bits: 3072", "").replace(
        "    public_key: {verifiers: [gateway], env: JWT_JWKS}\n", "")), STACK.replace(
        "      gateway: [arn:aws:iam::210987654321:role/shop-staging-gateway]\n", "")))
    function = next(r for r in report.run.resources if r.name == "shop-staging-rotate-jwt-rs256-function")
    targets = json.loads(function.inputs["environment"]["variables"]["ROTATION_TARGETS"])
    assert targets == {"shop/staging/signing-key": {"bits": 4096}}
    assert report.run.outputs["publicKeys"] == {}
