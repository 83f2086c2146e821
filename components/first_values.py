"""`secrets-platform:firstValues`: who makes the first value of a rotated token or HS256 key whose catalog entry
does not say (`rotation.first_value`).

`program` (the default in this release): pulumi-random makes it and the program writes it in a SecretVersion, so
the value sits, encrypted, in Pulumi state. `aws`: the entry is read as `first_value: rotation`; the deploy's
immediate rotation makes the value inside AWS, and the program declares neither a random resource nor a version.

A deployed stack turns `aws` on only after one `pulumi up` with a release that sets `retain_on_delete` on its
versions (components/secret.py): the engine decides a delete by the flag in the OLD state, so only then does the
version leave the state without the provider's Delete, which would strip AWSPREVIOUS from it
(docs/no-value-in-state.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from components.catalog import Rotation, RotationSource, Secret
from components.catalog.checks import first_value_fits

FLIPPED_STRATEGIES = ("token", "jwt-hs256")
"""The strategies whose first value `aws` moves into AWS (jwt-rs256 keys are opted in per secret)."""
HS256_WRITTEN = ("alg", "kid")
"""Keys of an HS256 secret that the function writes itself (`alg` HS256, a new `kid`) and a catalog may declare as
plain config for the program's first value."""


def effective(secrets: Mapping[str, Secret], first_values: str, adopted: Collection[str] = ()) -> dict[str, Secret]:
    """The entries as the stack deploys them: with `aws`, each rotated token or HS256 key whose catalog entry does
    not set `first_value` and whose declared keys are what the function writes, as `first_value: rotation`. An
    adopted secret keeps the value it has."""
    if first_values != "aws":
        return dict(secrets)
    return {name: (in_aws(name, entry) if name not in adopted else None) or entry for name, entry in secrets.items()}


def in_aws(name: str, entry: Secret) -> Secret | None:
    """The entry with its first value made by the rotation function, or None where it cannot be."""
    rotation = entry.rotation
    if not isinstance(rotation, Rotation) or rotation.strategy not in FLIPPED_STRATEGIES:
        return None
    if "first_value" in rotation.model_fields_set:
        return None  # the catalog decides for this secret, either way
    values = dict(entry.values)
    if rotation.strategy == "jwt-hs256":
        for key in HS256_WRITTEN:
            value = values.get(key)
            # A plain config value is only the program's first one; the function writes its own. An `alg` other
            # than HS256 would change what verifiers expect: left to the program.
            if value is None or value.config is None or (key == "alg" and value.config.default != "HS256"):
                continue
            values[key] = value.model_copy(update={"config": None, "rotation": RotationSource()})
    flipped = entry.model_copy(update={
        "rotation": rotation.model_copy(update={"first_value": "rotation"}),
        **({"keys": values} if entry.keys is not None else {"value": values[""]}),
    })
    return flipped if first_value_fits(name, flipped) else None
