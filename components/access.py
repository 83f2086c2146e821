"""The environment's access policies, attached to the roles named in stack config."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import grants, iam
from components.settings import Principal


@dataclass(frozen=True)
class PolicyTarget:
    """The environment a policy is about."""

    app: str
    environment: str
    account_id: str
    region: str
    replica_regions: tuple[str, ...]
    key_arns: Sequence[pulumi.Input[str]]
    """The environment's keys: the primary one first, then one per replica region."""
    other_environments: tuple[str, ...] = ()
    """The application's other environments, denied explicitly."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccessPolicyArgs:
    """One managed policy and the roles it attaches to."""

    target: PolicyTarget
    access: str
    """What the policy is for: `read`, `service`, `ci` (a tag the policy pack reads)."""
    statements: Callable[[grants.Scope], list[iam.Statement]]
    """Builds the statements once the key ARNs are known."""
    principals: tuple[Principal, ...]
    """Existing roles the policy attaches to."""
    description: str


class AccessPolicy(pulumi.ComponentResource):
    """A customer-managed IAM policy built from typed statements, attached to existing roles."""

    policy: aws.iam.Policy
    arn: pulumi.Output[str]
    document: pulumi.Output[str]

    def __init__(self, name: str, args: AccessPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:AccessPolicy", name, None, opts)

        target = args.target

        def render(key_arns: list[str]) -> str:
            scope = grants.Scope(
                app=target.app, environment=target.environment, account_id=target.account_id,
                region=target.region, key_arns=tuple(key_arns), replica_regions=target.replica_regions,
                other_environments=target.other_environments,
            )
            return iam.document(args.statements(scope), where=f"policy {name}")

        self.document = pulumi.Output.all(*target.key_arns).apply(render)
        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=name,
            description=args.description,
            policy=self.document,
            tags={**target.tags, "app": target.app, "environment": target.environment, "access": args.access},
            opts=pulumi.ResourceOptions(parent=self),
        )
        for principal in args.principals:
            aws.iam.RolePolicyAttachment(
                f"{name}-{principal.name}",
                role=principal.name,
                policy_arn=self.policy.arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.arn = self.policy.arn
        self.register_outputs({"arn": self.policy.arn})
