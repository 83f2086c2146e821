"""`public_key.pem_env`: a verifier that takes one PEM rather than a JWKS is fed the newest key's PEM
(`<name>-public-key:pem`). Through the program: the binding, the public secret's declared keys, and each
mistake as one line naming file, secret and field (exit 2). What the rotation function publishes there and when
it changes: tests/rotation/test_rotation_public_pem.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_stack
from tests.test_errors import expect_error
from tests.test_public_key_and_due import SIGNING, STACK, catalog

PEM = SIGNING.replace("public_key: {verifiers: [gateway], env: JWT_JWKS}",
                      "public_key: {verifiers: [gateway], env: JWT_JWKS, pem_env: JWT_PUBLIC_KEY}")


def test_a_verifier_variable_gets_the_newest_keys_pem(make_project: Callable[..., Path]) -> None:
    report = run_stack("staging", make_project(catalog(PEM), STACK))
    env = report.run.outputs["envVars"]
    assert env["JWT_PUBLIC_KEY"] == "shop/staging/signing-key-public-key:pem"
    assert env["JWT_JWKS"] == "shop/staging/signing-key-public-key:jwks"
    public = next(r for r in report.run.resources if r.name == "shop-staging-signing-key-public-key-secret")
    assert public.inputs["tags"]["first-value"] == "rotation"


def test_a_list_of_pem_variables(make_project: Callable[..., Path]) -> None:
    many = PEM.replace("pem_env: JWT_PUBLIC_KEY", "pem_env: [JWT_PUBLIC_KEY, GATEWAY_JWT_KEY]")
    env = run_stack("staging", make_project(catalog(many), STACK)).run.outputs["envVars"]
    assert env["GATEWAY_JWT_KEY"] == env["JWT_PUBLIC_KEY"] == "shop/staging/signing-key-public-key:pem"


@pytest.mark.parametrize(("new", "fragments"), [
    ("pem_env: AWS_PUBLIC_KEY", ("field 'public_key.pem_env'", "AWS SDK")),
    ("pem_env: jwt_public_key", ("field 'public_key.pem_env'", "UPPER_SNAKE_CASE")),
    ("pem_env: LD_PRELOAD", ("field 'public_key.pem_env'",)),
    ("pem_env: JWT_JWKS", ("field 'public_key.pem_env'", "JWT_JWKS is already fed by 'signing-key:public_key'")),
    ("pem_env: JWT_KEY_ID", ("field 'public_key.pem_env'", "JWT_KEY_ID is already fed by 'signing-key:kid'")),
    ("pem_env: {JWT_PUBLIC_KEY: pem}", ("field 'public_key.pem_env'",)),
    ("pem_env: [V0, V1, V0]", ("field 'public_key.pem_env'", "V0 is already fed")),
    ("pem_env: " + "J" * 5000, ()),  # huge: accepted as a name or refused in one line, never a traceback
])
def test_pem_env_mistakes(make_project: Callable[..., Path], new: str, fragments: tuple[str, ...]) -> None:
    bad = PEM.replace("pem_env: JWT_PUBLIC_KEY", new)
    if not fragments:
        run_stack("staging", make_project(catalog(bad), STACK))
        return
    expect_error(make_project(catalog(bad), STACK), "catalog.yaml", "secret 'signing-key'", *fragments)


def test_pem_env_belongs_to_public_key(make_project: Callable[..., Path]) -> None:
    bad = SIGNING.replace("kid: {env: JWT_KEY_ID, rotation: {}}", "kid: {env: JWT_KEY_ID, rotation: {}, pem_env: X}")
    expect_error(make_project(catalog(bad), STACK), "catalog.yaml", "secret 'signing-key'", "field 'keys.kid.pem_env'",
                 "'pem_env' belongs to 'public_key'")


def test_verifiers_restart_with_the_signing_keys_rotation(make_project: Callable[..., Path]) -> None:
    """A verifier reads the public secret, which no RotationSucceeded event names: without a restart after the
    signing key's rotation, a verifier that reads once (ECS) would keep the old PEM (or a JWKS without the new key)
    while restarted signers issue tokens of the new one."""
    from components import consumers
    from components.catalog.checks import parse_catalog
    from components.public_key import with_public_keys

    parsed = parse_catalog(yaml.safe_load(catalog(PEM)), "catalog.yaml")
    consumption = {"auth": consumers.EcsService("shop-staging", "auth"),
                   "gateway": consumers.EcsService("shop-staging", "gateway")}
    targets = consumers.restart_targets(with_public_keys(parsed.for_environment("staging")), consumption, "shop",
                                        "staging")
    assert targets["secrets"] == {"shop/staging/signing-key": ["auth", "gateway"]}
