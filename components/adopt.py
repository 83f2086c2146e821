"""Adopted secrets: existing Secrets Manager secrets a stack imports instead of creating.

`secrets-platform:adopt` in a stack's config maps a catalog secret to the secret that already exists,
with exactly what `DescribeSecret` returns for it (name, description, KMS key, tags, replicas), as
`python -m ops draft --from-aws` writes it. Pulumi refuses an import whose inputs differ from the
existing resource, and the first `pulumi up` must change nothing, so the program declares those
values as they are; moving the secret to the environment's key, renaming it, adding a resource policy
or turning rotation on is a later, previewed step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from components.errors import ConfigurationError

KEY = "secrets-platform:adopt"

SECRET_ARN = re.compile(
    r"^arn:aws:secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):secret:(?P<name>[A-Za-z0-9/_+=.@-]+)"
    r"-[A-Za-z0-9]{6}$"
)
"""`arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>` (Secrets Manager user
guide, "Secrets Manager ARNs"); Pulumi imports an aws.secretsmanager.Secret by its ARN (the resource's id,
terraform-provider-aws secret.go: passthrough importer, read with DescribeSecret)."""
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
"""CreateSecret Name: 1-512 ASCII letters, digits and /_+=.@- (botocore NameType max 512)."""
KMS_KEY = re.compile(
    r"^(arn:aws:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)|alias/[A-Za-z0-9/_-]+|"
    r"[A-Za-z0-9-]{1,2048})$"
)
"""What DescribeSecret returns as KmsKeyId: the key ARN, id, alias or alias ARN given at creation."""
DESCRIPTION_LIMIT = 2048
"""DescriptionType max (botocore)."""
TAG_LIMIT = 50
"""Tags per secret (TagResource)."""


@dataclass(frozen=True)
class Replica:
    """One replica region of an adopted secret, with its key as DescribeSecret's ReplicationStatus has it."""

    region: str
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Adoption:
    """An existing secret a catalog secret imports, described exactly as it is in AWS."""

    secret: str
    """The catalog name."""
    arn: str
    """The import id: the existing secret's full ARN."""
    name: str
    """The existing name (it stays; renaming into `<app>/<env>/<name>` is a follow-up step)."""
    description: str | None = None
    kms_key_id: str | None = None
    """None: the AWS managed key aws/secretsmanager (DescribeSecret then has no KmsKeyId)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    replicas: tuple[Replica, ...] = ()
    imported: bool = False
    """The follow-up step: the secret is in the stack's state now; declare it the platform's way (the
    environment's key, the platform's tags, a resource policy, the recovery window), still without a
    version, so that its value and ARN stay."""


def parse_adoptions(raw: Any, file: str, account_id: str, region: str) -> dict[str, Adoption]:
    """The `adopt` mapping of a stack config; every mistake is one line naming the file and the entry."""
    if not isinstance(raw, dict):
        raise ConfigurationError(file, "must map a catalog secret to the existing secret it adopts", field=KEY)
    adoptions: dict[str, Adoption] = {}
    seen: dict[str, str] = {}
    for secret, entry in raw.items():
        where = f"{KEY}.{secret}"

        def fail(message: str, sub: str | None = None, secret: str = str(secret), where: str = where) -> NoReturn:
            raise ConfigurationError(file, message, secret=secret, field=f"{where}.{sub}" if sub else where)

        if not isinstance(entry, dict):
            fail("must be a mapping with arn, name, description, kmsKeyId, tags and replicas")
        unknown = sorted(set(entry) - {"arn", "name", "description", "kmsKeyId", "tags", "replicas", "imported"})
        if unknown:
            fail("unknown field (allowed: arn, name, description, kmsKeyId, tags, replicas, imported)", unknown[0])
        imported = entry.get("imported", False)
        if not isinstance(imported, bool):
            fail("must be true (the first `pulumi up` imported it) or false", "imported")
        arn = entry.get("arn")
        match = SECRET_ARN.fullmatch(arn) if isinstance(arn, str) else None
        if match is None:
            fail("must be the existing secret's full ARN (arn:aws:secretsmanager:<region>:<account>:secret:"
                 "<name>-<6 characters>), as `python -m ops draft --from-aws` writes it", "arn")
        if match.group("account") != account_id:
            fail(f"the secret is in account {match.group('account')}, not this stack's {account_id}", "arn")
        if match.group("region") != region:
            fail(f"the secret is in {match.group('region')}, not this stack's region {region}", "arn")
        name = entry.get("name")
        if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
            fail("must be the existing secret's name (1-512 letters, digits and /_+=.@-)", "name")
        if match.group("name") != name:
            fail(f"'{name}' is not the name in the ARN ('{match.group('name')}')", "name")
        if match.string in seen:
            fail(f"the same secret is already adopted by '{seen[match.string]}'", "arn")
        seen[match.string] = str(secret)
        description = entry.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_LIMIT):
            fail(f"must be the existing description (text, at most {DESCRIPTION_LIMIT} characters)", "description")
        kms = entry.get("kmsKeyId")
        if kms is not None and (not isinstance(kms, str) or not KMS_KEY.fullmatch(kms)):
            fail("must be the KmsKeyId DescribeSecret returns (a key ARN, id or alias); leave it out for the AWS "
                 "managed key", "kmsKeyId")
        tags = entry.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            fail("must map tag names to string values, exactly as the secret has them", "tags")
        if any(k.lower().startswith("aws:") for k in tags):
            # Reserved for AWS; the provider ignores them in its state, so they are never declared.
            fail("leave out tags starting with 'aws:' (AWS sets them; the provider ignores them)", "tags")
        if len(tags) > TAG_LIMIT:
            fail(f"{len(tags)} tags; a secret carries at most {TAG_LIMIT}", "tags")
        replicas = entry.get("replicas") or []
        if not isinstance(replicas, list) or not all(
            isinstance(r, dict) and isinstance(r.get("region"), str) and set(r) <= {"region", "kmsKeyId"}
            for r in replicas
        ):
            fail("must be a list of {region, kmsKeyId} as DescribeSecret's ReplicationStatus has them", "replicas")
        adoptions[str(secret)] = Adoption(
            secret=str(secret), arn=str(arn), name=str(name), description=description, kms_key_id=kms,
            tags=dict(tags),
            replicas=tuple(Replica(region=r["region"], kms_key_id=r.get("kmsKeyId")) for r in replicas),
            imported=imported,
        )
    return adoptions


def check_adoptions(adoptions: Mapping[str, Adoption], secrets: Mapping[str, Any], rotated: set[str],
                    file: str, app: str, environment: str, masters: Mapping[str, str]) -> None:
    """Every adopted secret is a catalog secret of this environment that the first `pulumi up` leaves as is.
    `masters`: admin secret -> a rotated secret whose rotation logs in with it."""
    for name in adoptions:
        if name not in secrets:
            raise ConfigurationError(
                file, f"'{name}' is not a catalog secret of environment {environment} "
                f"(known: {', '.join(secrets) or 'none'})", secret=name, field=f"{KEY}.{name}",
            )
        adopted = adoptions[name]
        if name in rotated and not adopted.imported:
            # A rotation configured with the import would run testSecret (or rotate) in the first `pulumi up`.
            raise ConfigurationError(
                file, "an adopted secret keeps its value at the import; turn its rotation on in the follow-up "
                "step (catalog 'rotation: manual' until the import is done)", secret=name, field=f"{KEY}.{name}",
            )
        if name in rotated and adopted.name != f"{app}/{environment}/{name}":
            # The rotation role's policy names the environment's secrets by `<app>/<env>/<name>-??????`.
            raise ConfigurationError(
                file, f"a rotated secret must be named {app}/{environment}/{name} (the rotation policy names it so); "
                f"'{adopted.name}' keeps its name, so it cannot rotate: recreate it under that name instead",
                secret=name, field=f"{KEY}.{name}.name",
            )
        user = masters.get(name)
        if user is not None and adopted.name != f"{app}/{environment}/{name}":
            # The rotation role reads its admin secret by the same pattern (grants.rotation_statements).
            raise ConfigurationError(
                file, f"the admin credential of '{user}' must be named {app}/{environment}/{name} (the rotation "
                f"policy reads it by that name); '{adopted.name}' keeps its name, so the rotation function could "
                "never log in with it: recreate it under that name instead",
                secret=name, field=f"{KEY}.{name}.name",
            )
