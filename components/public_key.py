"""The public half of a `jwt-rs256` key pair, in a secret of its own that verifiers read.

A catalog secret rotated by `jwt-rs256` with `public_key:` gets a second Secrets Manager secret,
`<app>/<env>/<name>-public-key`, derived here as an ordinary catalog entry, so that everything the
program does for a secret (the environment's KMS key, tags, the resource policy, read policies by
consumer, the access matrix, `ecsSecrets`/`envVars`, the policy pack) applies to it unchanged. Its
consumers are the signing secret's consumers and the `public_key.verifiers`; a verifier's read
policy also denies the private secret explicitly (components/environment.py).

Why a secret and not an SSM parameter: the read policies, the key policy, the pack's rules and the
access matrix already know secrets; a SecureString parameter would need its own IAM statements,
KMS conditions (`kms:ViaService` ssm), pack rules and simulator cells for one JSON document.

The rotation function writes it (rotation/strategies/jwt.py): at setSecret, before the new key can
sign, it publishes `{"alg", "jwks", "keys_pem"}` with the new key and the current one, so every
token a signer can issue verifies at every moment of the rotation against the JWKS; and `pem`, the new key
alone, for a verifier that takes one PEM: it switches at that same step, so tokens of the new key verify
before any signer has it, and from then on tokens of the previous key do not (docs/catalog.md).

Its name ends in `-public-key`, not `-public`: six characters after a hyphen look like the random
suffix Secrets Manager appends to every ARN (README, Names).
"""

from __future__ import annotations

from collections.abc import Mapping

from components import names
from components.catalog.model import RotationSource, Secret, Value
from components.names import public_name

SUFFIX = names.PUBLIC_KEY_SUFFIX
PUBLISHED_KEYS = ("alg", "jwks", "keys_pem", "pem")
"""What the rotation function writes in the public secret: no private key. `jwks` and `keys_pem` hold the newest
key and the current one (between setSecret and finishSecret the newest is published but does not sign yet:
verifiers pick by `kid`); `pem` holds the newest key alone, for verifiers that take one PEM (`pem_env`)."""


def public_entry(name: str, entry: Secret) -> Secret:
    """The catalog entry of the public half of `entry` (which has `public_key`)."""
    assert entry.public_key is not None
    return Secret.model_validate({
        "description": f"Public keys (JWKS) of {name}: verifiers read this, never the private key",
        "class": "configuration",
        "owner": entry.owner,
        "environments": entry.environments,
        "rotation": "manual",  # written by the rotation of `name`, never by a person (tag public-key-of)
        "consumers": sorted({*entry.consumers, *entry.public_key.verifiers}),
        "keys": {
            "alg": Value(rotation=RotationSource()),
            "jwks": Value(rotation=RotationSource(), env=entry.public_key.env),
            "keys_pem": Value(rotation=RotationSource()),
            "pem": Value(rotation=RotationSource(), env=entry.public_key.pem_env),
        },
    })


def with_public_keys(secrets: Mapping[str, Secret]) -> dict[str, Secret]:
    """The secrets of a stack with each published public key right after its signing secret."""
    out: dict[str, Secret] = {}
    for name, entry in secrets.items():
        out[name] = entry
        if entry.public_key is not None:
            out[public_name(name)] = public_entry(name, entry)
    return out


def published_by(secrets: Mapping[str, Secret]) -> dict[str, str]:
    """Public secret name -> the signing secret whose rotation writes it."""
    return {public_name(n): n for n, e in secrets.items() if e.public_key is not None}


def private_denied(secrets: Mapping[str, Secret], service: str) -> list[str]:
    """Signing secrets whose public key `service` verifies with and whose private key it must not read."""
    return sorted(n for n, e in secrets.items()
                  if e.public_key is not None and service in e.public_key.verifiers and service not in e.consumers)
