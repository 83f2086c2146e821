"""The customer-managed KMS key that encrypts one environment's secrets in one region."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, names

KEY_ADMIN_ACTIONS = (
    # kms:CreateAlias, not kms:Create*: CreateGrant would let an administrator hand out Decrypt
    # without the Secrets Manager condition.
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:Delete*", "kms:Describe*", "kms:Disable*", "kms:Enable*",
    "kms:Get*", "kms:List*", "kms:Put*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
    "kms:TagResource", "kms:UntagResource", "kms:Update*",
)
"""What the account's administrators may do to the key: manage it, never use it for data."""

KEY_DECRYPT_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
"""What Secrets Manager needs to read a secret for a principal."""
KEY_WRITE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*")
"""What it needs to store a new value for a principal (pipelines, rotation functions)."""


@dataclass(frozen=True)
class EnvironmentKeyArgs:
    """Inputs of an environment's KMS key."""

    app: str
    """Application name (first segment of the secret names)."""
    environment: str
    """Environment name; the alias is `alias/<app>/<environment>/secrets`."""
    account_id: str
    """The account whose administrators manage the key."""
    region: str
    """Region of the key: the stack's region, or a replica region."""
    deletion_window_days: int
    """Waiting period of a scheduled deletion (7-30 days)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the key."""
    protect: bool = False
    """Protect the key from `pulumi destroy` (production)."""
    replica: bool = False
    """True for a key that only encrypts replicas in another region (explicit `region` argument)."""
    readers: Sequence[pulumi.Input[str]] = ()
    """Role ARNs that may decrypt with the key (through Secrets Manager only)."""
    writers: Sequence[pulumi.Input[str]] = ()
    """Role ARNs that may also encrypt with it (store values); the account root when empty, which
    delegates the decision to IAM policies."""
    shared: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Roles of other accounts (ARN) -> the secrets (`<app>/<env>/<name>`) shared with each: the role may
    decrypt through Secrets Manager, for those secrets only (catalog `shared_with`)."""
    existing_arn: str | None = None
    """A key another stack manages, used as it is (a recovery stack: components/recovery.py): no key and no
    alias are registered, since the alias name is already that key's in this region (CreateAlias refuses a
    second one: AlreadyExistsException) and its policy is the other stack's to change."""


def key_policy_statements(args: EnvironmentKeyArgs, readers: Sequence[str],
                          writers: Sequence[str]) -> list[iam.Statement]:
    """The key policy: the account administers the key; named roles use it only through Secrets Manager."""
    root = {"AWS": (iam.account_root(args.account_id),)}
    # Only for calls Secrets Manager makes in this region on behalf of this account: nobody can
    # decrypt a secret's blob directly, whatever their IAM policies say.
    via = {"StringEquals": {
        "kms:ViaService": (iam.secrets_manager_via(args.region),),
        "kms:CallerAccount": (args.account_id,),
    }}
    statements = [
        iam.Statement(
            sid="AccountAdministersKey", effect="Allow", principals=root, actions=KEY_ADMIN_ACTIONS,
            resources=("*",),  # in a key policy, "*" is this key
        ),
        iam.Statement(
            sid="StoreOnlyThroughSecretsManager", effect="Allow",
            principals={"AWS": tuple(sorted(set(writers)))} if writers else root, actions=KEY_WRITE_ACTIONS,
            resources=("*",), conditions=via,
        ),
    ]
    only_readers = sorted(set(readers) - set(writers))
    if only_readers:
        statements.append(iam.Statement(
            sid="ReadOnlyThroughSecretsManager", effect="Allow", principals={"AWS": tuple(only_readers)},
            actions=KEY_DECRYPT_ACTIONS, resources=("*",), conditions=via,
        ))
    return statements + shared_statements(args)


def shared_statements(args: EnvironmentKeyArgs) -> list[iam.Statement]:
    """kms:Decrypt for each other account's role, only when Secrets Manager in this key's region decrypts
    one of the secrets shared with it. Secrets Manager puts the secret's ARN in the encryption context of
    every data key it asks for (`SecretARN`, plus `SecretVersionId`: Secrets Manager user guide, "Secret
    encryption and decryption in AWS Secrets Manager"), so a key policy can name the secrets by
    `kms:EncryptionContext:SecretARN`. No DescribeKey and no Encrypt: the role only reads."""
    statements = []
    for index, (role, secrets) in enumerate(sorted(args.shared.items()), 1):
        statements.append(iam.Statement(
            sid=f"SharedRoleDecrypt{index}", effect="Allow", principals={"AWS": (role,)}, actions=("kms:Decrypt",),
            resources=("*",),
            conditions={
                "StringEquals": {"kms:ViaService": (iam.secrets_manager_via(args.region),),
                                 "kms:CallerAccount": (role.split(":")[4],)},
                "StringLike": {"kms:EncryptionContext:SecretARN": tuple(
                    iam.secret_arn_pattern(args.region, args.account_id, name) for name in sorted(secrets))},
            },
        ))
    return statements


KEY_POLICY_HINT = ("the key policy names every reader and writer role: name fewer roles in "
                   "secrets-platform:principals (one role per service)")


class EnvironmentKey(pulumi.ComponentResource):
    """A KMS key with automatic rotation, an alias and a least-privilege key policy."""

    key: aws.kms.Key | None
    alias: aws.kms.Alias | None
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: EnvironmentKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:EnvironmentKey", name, None, opts)
        if args.existing_arn is not None:
            self.key = self.alias = None
            self.arn = pulumi.Output.from_input(args.existing_arn)
            self.register_outputs({"arn": self.arn, "existing": True})
            return
        child = pulumi.ResourceOptions(parent=self, protect=args.protect)
        region = args.region if args.replica else None
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the {args.environment} secrets of {args.app} in {args.region}",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            bypass_policy_lockout_safety_check=False,
            policy=pulumi.Output.all(list(args.readers), list(args.writers)).apply(
                lambda both: iam.document(key_policy_statements(args, both[0], both[1]),
                                          where=f"key policy of {name}", limit=iam.KEY_POLICY_LIMIT,
                                          hint=KEY_POLICY_HINT)
            ),
            region=region,
            tags=dict(args.tags),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=names.key_alias(args.app, args.environment),
            target_key_id=self.key.key_id,
            region=region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": self.alias.name})
