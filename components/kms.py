"""The customer-managed KMS key that encrypts one environment's secrets in one region."""

from __future__ import annotations

from collections.abc import Mapping
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


def key_policy_statements(args: EnvironmentKeyArgs) -> list[iam.Statement]:
    """The key policy: the account administers the key; it is used only through Secrets Manager."""
    root = {"AWS": (iam.account_root(args.account_id),)}
    return [
        iam.Statement(
            sid="AccountAdministersKey", effect="Allow", principals=root, actions=KEY_ADMIN_ACTIONS,
            resources=("*",),  # in a key policy, "*" is this key
        ),
        iam.Statement(
            sid="UseOnlyThroughSecretsManager", effect="Allow", principals=root, actions=KEY_USE_ACTIONS,
            resources=("*",),
            # The account root delegates to IAM policies, but only for calls Secrets Manager makes in
            # this region on behalf of this account: nobody can decrypt a secret's blob directly.
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
            policy=iam.document(key_policy_statements(args), where=f"key policy of {name}"),
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
