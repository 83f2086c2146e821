"""The customer-managed KMS key that encrypts one environment's secrets in one region."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam

KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:Create*", "kms:Delete*", "kms:Describe*", "kms:Disable*", "kms:Enable*",
    "kms:Get*", "kms:List*", "kms:Put*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
    "kms:TagResource", "kms:UntagResource", "kms:Update*",
)
"""What the account's administrators may do to the key: manage it, never use it for data."""

KEY_USE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")
"""What Secrets Manager does with the key on a principal's behalf."""


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
    users: Sequence[pulumi.Input[str]] = ()
    """Role ARNs that may use the key (through Secrets Manager only); the account root when empty,
    which delegates the decision to IAM policies."""


def key_policy_statements(args: EnvironmentKeyArgs, users: Sequence[str]) -> list[iam.Statement]:
    """The key policy: the account administers the key; named roles use it only through Secrets Manager."""
    root = {"AWS": (iam.account_root(args.account_id),)}
    principals = {"AWS": tuple(sorted(set(users)))} if users else root
    return [
        iam.Statement(
            sid="AccountAdministersKey", effect="Allow", principals=root, actions=KEY_ADMIN_ACTIONS,
            resources=("*",),  # in a key policy, "*" is this key
        ),
        iam.Statement(
            sid="UseOnlyThroughSecretsManager", effect="Allow", principals=principals, actions=KEY_USE_ACTIONS,
            resources=("*",),
            # Only for calls Secrets Manager makes in this region on behalf of this account: nobody
            # can decrypt a secret's blob directly, whatever their IAM policies say.
            conditions={"StringEquals": {
                "kms:ViaService": (iam.secrets_manager_via(args.region),),
                "kms:CallerAccount": (args.account_id,),
            }},
        ),
    ]


class EnvironmentKey(pulumi.ComponentResource):
    """A KMS key with automatic rotation, an alias and a least-privilege key policy."""

    key: aws.kms.Key
    alias: aws.kms.Alias
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: EnvironmentKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:EnvironmentKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=args.protect)
        region = args.region if args.replica else None
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the {args.environment} secrets of {args.app} in {args.region}",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            bypass_policy_lockout_safety_check=False,
            policy=pulumi.Output.all(*args.users).apply(
                lambda users: iam.document(key_policy_statements(args, users), where=f"key policy of {name}")
            ),
            region=region,
            tags=dict(args.tags),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.app}/{args.environment}/secrets",
            target_key_id=self.key.key_id,
            region=region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": self.alias.name})
