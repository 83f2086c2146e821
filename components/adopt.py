"""Adopted secrets: existing Secrets Manager secrets a stack imports instead of creating.

`secrets-platform:adopt` in a stack's config maps a catalog secret to the secret that already exists,
with exactly what `DescribeSecret` returns for it (name, description, KMS key, tags, replicas), as
`python -m ops draft --from-aws` writes it. Pulumi refuses an import whose inputs differ from the
existing resource, and the first `pulumi up` must change nothing, so the program declares those
values as they are; moving the secret to the environment's key, adding the resource policy or turning
rotation on is the follow-up step (`imported: true`), and moving its replicas to the environment's
replica keys a step of its own (`rekeyReplicas: true`): the provider identifies a replica by its region
and key together, so a new key removes the replica and adds it again.

A stack adopts only secrets of its own application and environment (`<app>/<env>/...`): an entry is
the name every day-2 command (`ops rollback`, `ops rotate`) acts on, so a staging file naming a
production secret would make staging's commands change production.
"""

from __future__ import annotations

import json
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
POLICY_LIMIT = 20_480
"""A secret's resource policy: at most 20,480 characters (Secrets Manager quotas, "Resource-based policy
size"; also components/iam.py SECRET_POLICY_LIMIT)."""
FIELDS = ("arn", "name", "description", "kmsKeyId", "tags", "replicas", "resourcePolicy", "imported",
          "rekeyReplicas")


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
    """The existing name, inside `<app>/<env>/` (check_names); it stays: a new name is a new secret."""
    description: str | None = None
    kms_key_id: str | None = None
    """None: the AWS managed key aws/secretsmanager (DescribeSecret then has no KmsKeyId)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    replicas: tuple[Replica, ...] = ()
    resource_policy: str | None = None
    """The existing resource policy (GetResourcePolicy's JSON text, as `ops draft` records it), or None for
    none. PutResourcePolicy replaces the whole document, so the follow-up step keeps these statements next to
    the platform's."""
    imported: bool = False
    """The follow-up step: the secret is in the stack's state now; declare it the platform's way (the
    environment's key, the platform's tags beside the team's own, the resource policy merged with the
    existing one, the recovery window), still without a version, so that its value and ARN stay. Its
    replicas keep their keys."""
    rekey_replicas: bool = False
    """The step after the follow-up: replicate exactly to the stack's `replicaRegions`, each under the
    environment's replica key. The provider removes each replica and adds it again (terraform-provider-aws
    secret.go: a replica is identified by region and key), so the replica is gone for a moment and
    RemoveRegionsFromReplication must be allowed (production CI is denied it: a deployer runs this step)."""

    def team_tags(self, reserved: frozenset[str]) -> dict[str, str]:
        """The secret's own tags that the follow-up keeps: every tag whose name the platform does not set."""
        return {k: v for k, v in self.tags.items() if k not in reserved}

    def existing_statements(self) -> list[dict[str, Any]]:
        """The statements of the existing resource policy (validated by parse_adoptions)."""
        if self.resource_policy is None:
            return []
        statement = json.loads(self.resource_policy).get("Statement", [])
        return list(statement) if isinstance(statement, list) else [statement]


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
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            fail(f"unknown field (allowed: {', '.join(FIELDS)})", unknown[0])
        imported = entry.get("imported", False)
        if not isinstance(imported, bool):
            fail("must be true (the first `pulumi up` imported it) or false", "imported")
        rekey = entry.get("rekeyReplicas", False)
        if not isinstance(rekey, bool) or (rekey and not imported):
            fail("must be true (after the follow-up step: `imported: true`) or false", "rekeyReplicas")
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
        problem = _replica_problem(replicas, region)
        if problem:
            fail(problem, "replicas")
        if rekey and not replicas:
            fail("the secret has no replicas to move to the environment's replica keys", "rekeyReplicas")
        policy = entry.get("resourcePolicy")
        if policy is not None:
            problem = _policy_problem(policy, account_id)
            if problem:
                fail(problem, "resourcePolicy")
        adoptions[str(secret)] = Adoption(
            secret=str(secret), arn=str(arn), name=str(name), description=description, kms_key_id=kms,
            tags=dict(tags),
            replicas=tuple(Replica(region=r["region"], kms_key_id=r.get("kmsKeyId")) for r in replicas),
            resource_policy=policy, imported=imported, rekey_replicas=rekey,
        )
    return adoptions


def _replica_problem(replicas: list[dict[str, Any]], region: str) -> str | None:
    """Replica regions are checked as `replicaRegions` is (components/settings.py): a region of the partition
    where Secrets Manager runs, not the secret's own, each once; a key given by ARN is in the replica's region."""
    from components.regions import PARTITION, known_regions, nearest_region

    known = known_regions()
    seen: set[str] = set()
    for replica in replicas:
        name, key = replica["region"], replica.get("kmsKeyId")
        if name not in known:
            return f"'{name}' is not a region of the {PARTITION} partition where Secrets Manager runs " \
                   f"({nearest_region(name, known)})"
        if name == region:
            return f"lists the secret's own region {region} as a replica"
        if name in seen:
            return f"lists {name} twice"
        seen.add(name)
        if key is not None and (not isinstance(key, str) or not KMS_KEY.fullmatch(key)):
            return f"the replica in {name} has a kmsKeyId that is no key ARN, id or alias"
        if isinstance(key, str) and key.startswith("arn:") and key.split(":")[3] != name:
            return f"the replica in {name} names a key in {key.split(':')[3]}"
    return None


def _policy_problem(policy: Any, account_id: str) -> str | None:
    """Why the existing resource policy cannot be kept beside the platform's, or None."""
    if not isinstance(policy, str):
        return "must be the existing resource policy as JSON text (GetResourcePolicy's ResourcePolicy)"
    if len(policy) > POLICY_LIMIT:
        return f"{len(policy):,} characters; a secret's resource policy holds at most {POLICY_LIMIT:,}"
    try:
        document = json.loads(policy)
    except ValueError:
        return "is not JSON text"
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements or not all(isinstance(s, dict) for s in statements):
        return "must be a policy document with a Statement"
    if set(document) - {"Version", "Id", "Statement"}:
        return f"unknown top-level element '{sorted(set(document) - {'Version', 'Id', 'Statement'})[0]}'"
    from components import grants, iam  # grants imports the catalog model, which imports nothing of this

    platform = {s.sid for s in grants.secret_resource_policy(account_id)}
    for number, statement in enumerate(statements, 1):
        sid = statement.get("Sid")
        if sid in platform:
            return f"statement {number} has the Sid '{sid}' of the platform's own statement: rename it"
        if "NotPrincipal" in statement:
            return f"statement {number} uses NotPrincipal; the platform denies every principal outside the account"
        outside = sorted(a for a in _aws_principals(statement.get("Principal")) if a != account_id)
        if statement.get("Effect") == "Allow" and outside:
            # The platform's DenyOutsideAccount would silently void it: refuse rather than keep a dead grant.
            return (f"statement {number} allows {outside[0]}, outside account {account_id}; the platform's policy "
                    "denies every principal outside the account: remove the statement before the follow-up step")
    try:
        iam.merged_document(grants.secret_resource_policy(account_id), statements, where="resource policy",
                            limit=POLICY_LIMIT)
    except iam.PolicyError as exc:
        return f"merged with the platform's statement: {exc.reason}"
    return None


def _aws_principals(principal: Any) -> list[str]:
    """The accounts of the AWS principals of a statement (`*` for anyone), from an ARN or an account id."""
    if principal == "*":
        return ["*"]
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    accounts = []
    for value in [values] if isinstance(values, str) else values if isinstance(values, list) else []:
        text = str(value)
        match = re.fullmatch(r"arn:aws[a-z-]*:(?:iam|sts)::([0-9]{12}):.+", text)
        accounts.append(match.group(1) if match else text)
    return accounts


def check_adoptions(adoptions: Mapping[str, Adoption], secrets: Mapping[str, Any], rotated: set[str],
                    file: str, app: str, environment: str, masters: Mapping[str, str],
                    recovering: bool = False) -> None:
    """Every adopted secret is a catalog secret of this environment that the first `pulumi up` leaves as is.
    `masters`: admin secret -> a rotated secret whose rotation logs in with it. `recovering`: a recovery stack
    (components/recovery.py), whose catalog is the primary's: its rotated secrets are imported without their
    rotation (the program leaves it out until `imported: true`) instead of being refused."""
    check_names(adoptions, secrets, file, app, environment)
    for name in adoptions:
        adopted = adoptions[name]
        if name in rotated and not adopted.imported and not recovering:
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


def check_names(adoptions: Mapping[str, Adoption], secrets: Mapping[str, Any], file: str, app: str,
                environment: str) -> None:
    """Every adopted secret is a catalog secret of this stack, named inside `<app>/<environment>/`, and no other
    secret of the stack (created or adopted) has its name. The program and `ops` both call this."""
    prefix = f"{app}/{environment}/"
    names = {f"{prefix}{n}": n for n in secrets if n not in adoptions}
    for name, adopted in adoptions.items():
        if name not in secrets:
            raise ConfigurationError(
                file, f"'{name}' is not a catalog secret of environment {environment} "
                f"(known: {', '.join(secrets) or 'none'})", secret=name, field=f"{KEY}.{name}",
            )
        if not adopted.name.startswith(prefix) or len(adopted.name) == len(prefix):
            raise ConfigurationError(
                file, f"'{adopted.name}' is not a secret of {prefix}: a stack adopts only its own application's "
                f"secrets of its own environment (every command on this stack would act on it)",
                secret=name, field=f"{KEY}.{name}.name",
            )
        other = names.get(adopted.name)
        if other is not None:
            raise ConfigurationError(
                file, f"'{adopted.name}' is also the name of this stack's secret '{other}'; one name, one secret",
                secret=name, field=f"{KEY}.{name}.name",
            )
        names[adopted.name] = name


def load_adoptions(raw: str | None, file: str, account_id: str, region: str, app: str, environment: str,
                   secrets: Mapping[str, Any]) -> dict[str, Adoption]:
    """The `adopt` entries of a stack config value (JSON text, as Pulumi config holds it), checked exactly as
    the program checks them (parse_adoptions, check_names): for the day-2 commands."""
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ConfigurationError(file, "is not a YAML mapping", field=KEY) from None
    adoptions = parse_adoptions(parsed, file, account_id, region)
    check_names(adoptions, secrets, file, app, environment)
    return adoptions
