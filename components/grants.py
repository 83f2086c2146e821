"""Who may do what to an environment's secrets: the statements of every access policy.

Each function returns typed `iam.Statement`s; `iam.document` renders them. The same scope object
drives every policy, so the ARN patterns, the tag conditions and the KMS conditions are written once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace

from components import iam

PRODUCTION = "production"
"""The environment whose secrets no pipeline may delete."""

READ_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")

WRITE_ACTIONS = (
    "secretsmanager:CancelRotateSecret", "secretsmanager:CreateSecret", "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:PutSecretValue",
    "secretsmanager:RemoveRegionsFromReplication", "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RestoreSecret", "secretsmanager:RotateSecret", "secretsmanager:StopReplicationToReplica",
    "secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)
"""Every Secrets Manager action that changes a secret, its value, its policy or its tags."""

SECRET_ACTIONS = (
    *READ_ACTIONS, *WRITE_ACTIONS, "secretsmanager:GetResourcePolicy", "secretsmanager:ListSecretVersionIds",
    "secretsmanager:ValidateResourcePolicy",
)
"""Every action that names a secret: what environment isolation denies outside the environment."""

CI_MANAGE_ACTIONS = tuple(sorted({
    "secretsmanager:CancelRotateSecret", "secretsmanager:CreateSecret", "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutResourcePolicy", "secretsmanager:PutSecretValue", "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:ReplicateSecretToRegions", "secretsmanager:RotateSecret", "secretsmanager:TagResource",
    "secretsmanager:UntagResource", "secretsmanager:UpdateSecret", "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:ValidateResourcePolicy",
}))
"""What a deployment pipeline does to its environment's secrets (Pulumi's create, update, tag, rotate).
UpdateSecretVersionStage: replacing or deleting a SecretVersion first takes the program's own label off it
(terraform-provider-aws secret_version.go, delete), since a label sits on one version at a time."""

ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
)
"""The four-step rotation protocol's calls on the secret being rotated (ListSecretVersionIds: the
single-user strategy's last resort, trying unlabelled older versions)."""

INVOKE_ACTION = "lambda:InvokeFunction"
"""What RotateSecret also requires of its caller, on the rotation function."""

APP_WRITE_ACTION = "secretsmanager:PutSecretValue"
"""What a service that renews its own value (`rotation: application`) may do to that secret."""

KMS_DECRYPT = ("kms:Decrypt",)
KMS_STORE = ("kms:GenerateDataKey",)
"""PutSecretValue under a customer-managed key: Secrets Manager asks KMS for a data key."""
KMS_ENCRYPT = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class Scope:
    """One environment of one application in one account, and the keys of its secrets."""

    app: str
    environment: str
    account_id: str
    region: str
    """The stack's region (the primary secrets and key)."""
    key_arns: tuple[str, ...]
    """The environment's key in the stack's region, then one per replica region."""
    replica_regions: tuple[str, ...] = ()
    other_environments: tuple[str, ...] = ()
    """The application's other environments (the catalog's `environments`), denied explicitly."""

    @property
    def regions(self) -> tuple[str, ...]:
        return (self.region, *self.replica_regions)

    def secret(self, name: str) -> tuple[str, ...]:
        """ARN patterns of one secret in every region it lives in."""
        return tuple(iam.secret_arn_pattern(r, self.account_id, f"{self.app}/{self.environment}/{name}")
                     for r in self.regions)

    def environment_secrets(self) -> tuple[str, ...]:
        return tuple(iam.environment_secrets_pattern(r, self.account_id, self.app, self.environment)
                     for r in self.regions)

    def kms_via_secrets_manager(self) -> dict[str, dict[str, tuple[str, ...]]]:
        return {"StringEquals": {"kms:ViaService": tuple(iam.secrets_manager_via(r) for r in self.regions)}}

    def isolation_deny(self) -> list[iam.Statement]:
        """Deny every secret action on the application's other environments, whatever other policies
        attached to the same role grant. Within the environment, what is not allowed is not granted.
        `secretsmanager:*` (a Deny only): every action that names a secret, today's and any AWS adds, in
        fewer characters than the list of SECRET_ACTIONS, which IAM's 6,144-character limit needs."""
        if not self.other_environments:
            return []
        return [iam.Statement(
            sid="DenyOtherEnvironments", effect="Deny", actions=("secretsmanager:*",),
            resources=tuple(f"arn:aws:secretsmanager:*:{self.account_id}:secret:{self.app}/{env}/*"
                            for env in sorted(self.other_environments)),
        )]


def read_statements(scope: Scope, secrets: Sequence[str] | None, denied: Sequence[str] = (),
                    app_written: Sequence[str] = (), private_keys: Sequence[str] = ()) -> list[iam.Statement]:
    """Read-only access: exactly these secrets (one service), or with `secrets=None` every secret of
    the environment (the application runtime; one ARN pattern, so the policy's size does not grow
    with the catalog), and an explicit deny of `denied` (admin credentials only rotation reads).

    Every write is denied, except PutSecretValue on the environment's `app_written` secrets: an
    explicit Deny would also cancel the grant of a writer service whose role holds this policy.
    `private_keys`: signing secrets whose public half this reader verifies with, denied explicitly.
    """
    if secrets is None:
        resources = scope.environment_secrets()
    else:
        resources = tuple(arn for name in secrets for arn in scope.secret(name))
    written = tuple(arn for name in app_written for arn in scope.secret(name))
    statements = [
        iam.Statement(
            sid="ReadSecrets", effect="Allow", actions=READ_ACTIONS, resources=resources,
            conditions={"StringEquals": {"aws:ResourceTag/environment": (scope.environment,)}},
        ),
        iam.Statement(
            sid="DecryptThroughSecretsManager", effect="Allow", actions=KMS_DECRYPT, resources=scope.key_arns,
            conditions=scope.kms_via_secrets_manager(),
        ),
        iam.Statement(sid="DenyWrites", effect="Deny", actions=WRITE_ACTIONS, resources=written or ("*",),
                      not_resource=bool(written)),
        *scope.isolation_deny(),
    ]
    if written:
        statements.insert(3, iam.Statement(
            sid="DenyWritesButRenewal", effect="Deny", resources=written,
            actions=tuple(a for a in WRITE_ACTIONS if a != APP_WRITE_ACTION),
        ))
    if denied:
        statements.append(iam.Statement(
            sid="DenyAdminCredentials", effect="Deny", actions=READ_ACTIONS,
            resources=tuple(arn for name in denied for arn in scope.secret(name)),
        ))
    if private_keys:
        statements.append(iam.Statement(
            sid="DenyPrivateSigningKeys", effect="Deny", actions=READ_ACTIONS,
            resources=tuple(arn for name in private_keys for arn in scope.secret(name)),
        ))
    return statements


def app_write_statements(scope: Scope, secrets: Sequence[str]) -> list[iam.Statement]:
    """A service that renews values itself (an OAuth refresh token): a new version of exactly these
    secrets, in the primary region (Secrets Manager replicates it; a replica refuses writes)."""
    return [
        iam.Statement(
            sid="WriteRenewedValues", effect="Allow", actions=(APP_WRITE_ACTION,),
            resources=tuple(iam.secret_arn_pattern(scope.region, scope.account_id,
                                                   f"{scope.app}/{scope.environment}/{name}") for name in secrets),
            conditions={"StringEquals": {"aws:ResourceTag/environment": (scope.environment,)}},
        ),
        iam.Statement(
            sid="EncryptThroughSecretsManager", effect="Allow", actions=KMS_STORE, resources=scope.key_arns,
            conditions=scope.kms_via_secrets_manager(),
        ),
        *scope.isolation_deny(),
    ]


def ci_statements(scope: Scope, *, reads_values: bool, min_recovery_days: int,
                  rotation_functions: Sequence[str] = (), first_value_functions: Sequence[str] = ()
                  ) -> list[iam.Statement]:
    """A deployment pipeline: manage this environment's secrets under its own keys, rotate them only
    with its own functions, never delete production's (nor its replicas), never replicate elsewhere,
    open a secret's policy or move it to another environment by its tags. The guard denies name `*`:
    the role is this stack's pipeline (isolation denies it every other environment's secrets), and
    repeating the environment's ARN patterns in each would push the document past IAM's 6,144 characters."""
    own = scope.environment_secrets()
    production = scope.environment == PRODUCTION
    manage = set(CI_MANAGE_ACTIONS) - {"secretsmanager:ReplicateSecretToRegions"}
    if production:
        # RemoveRegionsFromReplication deletes the replicas at once, with no recovery window.
        manage.discard("secretsmanager:RemoveRegionsFromReplication")
        # The provider deletes a SecretPolicy (DeleteResourcePolicy, terraform-provider-aws
        # secret_policy.go) only before deleting its secret, which no pipeline does in production.
        manage.discard("secretsmanager:DeleteResourcePolicy")
    else:
        manage.add("secretsmanager:DeleteSecret")
    production_secrets = (f"arn:aws:secretsmanager:*:{scope.account_id}:secret:{scope.app}/{PRODUCTION}/*",)
    statements = [
        iam.Statement(sid="ManageEnvironmentSecrets", effect="Allow", actions=tuple(sorted(manage)), resources=own),
        iam.Statement(
            sid="EncryptThroughSecretsManager", effect="Allow", actions=KMS_ENCRYPT, resources=scope.key_arns,
            conditions=scope.kms_via_secrets_manager(),
        ),
        # secretsmanager:KmsKeyArn (service authorization reference; KmsKeyId is deprecated) is in the
        # request context of CreateSecret and UpdateSecret when they name a key. Without these denies
        # the pipeline could move a secret to aws/secretsmanager, which any reader in the account may
        # decrypt; an UpdateSecret that names no key leaves the key as it is.
        iam.Statement(
            sid="DenyOtherKeys", effect="Deny", actions=("secretsmanager:CreateSecret", "secretsmanager:UpdateSecret"),
            resources=own, conditions={
                "Null": {"secretsmanager:KmsKeyArn": ("false",)},
                "ArnNotEquals": {"secretsmanager:KmsKeyArn": scope.key_arns},
            },
        ),
        iam.Statement(
            # CreateSecret without a key encrypts under aws/secretsmanager.
            sid="DenyCreatingWithoutTheKey", effect="Deny", actions=("secretsmanager:CreateSecret",),
            resources=own, conditions={"Null": {"secretsmanager:KmsKeyArn": ("true",)}},
        ),
        _rotation_function_deny(rotation_functions, own),
        iam.Statement(
            # In production also what deletes replicas at once or the secret's resource policy.
            sid="DenyDeletingProductionSecrets", effect="Deny", resources=production_secrets,
            actions=("secretsmanager:DeleteSecret", *((
                "secretsmanager:DeleteResourcePolicy", "secretsmanager:RemoveRegionsFromReplication",
            ) if production else ())),
        ),
        _replica_regions_deny(scope),
        iam.Statement(
            # A resource policy that opens a secret to other accounts is refused by Secrets Manager only
            # with BlockPublicPolicy=true; the provider sends what the SecretPolicy says (the program: true).
            # A request without the key counts as false.
            sid="DenyPolicyWithoutPublicBlock", effect="Deny", actions=("secretsmanager:PutResourcePolicy",),
            resources=("*",), conditions={"BoolIfExists": {"secretsmanager:BlockPublicPolicy": ("false",)}},
        ),
        *_reserved_tags_deny(scope),
        iam.Statement(
            sid="DenyDeletingWithoutRecovery", effect="Deny", actions=("secretsmanager:DeleteSecret",),
            resources=("*",), conditions={"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": ("true",)}},
        ),
        iam.Statement(
            sid="DenyShortRecoveryWindow", effect="Deny", actions=("secretsmanager:DeleteSecret",),
            resources=("*",),
            conditions={"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": (str(min_recovery_days),)}},
        ),
        *scope.isolation_deny(),
    ]
    if rotation_functions or first_value_functions:
        # RotateSecret also needs lambda:InvokeFunction on the function it runs (botocore's RotateSecret
        # documentation); only the stack's own functions. A direct invocation can drive only the
        # protocol's steps on the secrets a function was built for (rotation/protocol.py refuses others).
        # `pulumi up` invokes the first-value function itself (aws.lambda_.Invocation), by its ARN.
        statements.insert(1, iam.Statement(
            sid="InvokeOwnRotationFunctions", effect="Allow", actions=(INVOKE_ACTION,),
            resources=_invoked(rotation_functions, first_value_functions),
        ))
    if scope.replica_regions:
        # Replication only to the stack's own regions. The replica's key is not in the request
        # context of ReplicateSecretToRegions (no condition key), so the regions are what IAM can pin;
        # the program and the pack check each replica's key.
        statements.insert(1, iam.Statement(
            sid="ReplicateToStackRegions", effect="Allow", actions=("secretsmanager:ReplicateSecretToRegions",),
            resources=own,
            conditions={"ForAllValues:StringEquals": {"secretsmanager:AddReplicaRegions": scope.replica_regions}},
        ))
    if reads_values:
        # Pulumi reads a SecretVersion back after writing it; the stack config says so explicitly.
        statements.insert(1, iam.Statement(
            sid="ReadValuesForPulumi", effect="Allow", actions=("secretsmanager:GetSecretValue",), resources=own,
        ))
    return statements


RESERVED_TAGS_EVERYWHERE = ("app", "class", "environment", "managed-by", "owner", "rotation")
"""Platform tags every secret carries (components/secret.py; tests/access checks both stacks): the
program never removes one, so nobody may (UntagResource)."""


def _stack_tag_values(scope: Scope) -> dict[str, str]:
    """Platform tags with one value in the whole stack: read policies condition on `environment`."""
    return {"app": scope.app, "environment": scope.environment}


def _reserved_tags_deny(scope: Scope) -> list[iam.Statement]:
    """No retagging that moves a secret to another environment or application, no removal of a platform
    tag. The provider sends only the tags that change: TagResource with the added or changed ones,
    UntagResource with the removed keys (terraform-provider-aws `internal/tags` Updated/Removed), so the
    stack's own updates never name another value; CreateSecret carries its tags too (aws:RequestTag)."""
    statements = [
        iam.Statement(
            # The key must be present: a negated operator also holds on a request without it.
            sid=f"DenyRetagging{key.title()}", effect="Deny",
            actions=("secretsmanager:CreateSecret", "secretsmanager:TagResource"), resources=("*",),
            conditions={"Null": {f"aws:RequestTag/{key}": ("false",)},
                        "StringNotEquals": {f"aws:RequestTag/{key}": (value,)}},
        )
        for key, value in sorted(_stack_tag_values(scope).items())
    ]
    statements.append(iam.Statement(
        sid="DenyUntaggingPlatformTags", effect="Deny", actions=("secretsmanager:UntagResource",), resources=("*",),
        conditions={"ForAnyValue:StringEquals": {"aws:TagKeys": RESERVED_TAGS_EVERYWHERE}},
    ))
    return statements


def _replica_regions_deny(scope: Scope) -> iam.Statement:
    """No replica outside the stack's regions, whatever other policies of the role allow (CreateSecret
    with AddReplicaRegions, ReplicateSecretToRegions)."""
    actions = ("secretsmanager:CreateSecret", "secretsmanager:ReplicateSecretToRegions")
    if not scope.replica_regions:
        return iam.Statement(sid="DenyReplicasElsewhere", effect="Deny", actions=actions, resources=("*",),
                             conditions={"Null": {"secretsmanager:AddReplicaRegions": ("false",)}})
    return iam.Statement(
        sid="DenyReplicasElsewhere", effect="Deny", actions=actions, resources=("*",),
        conditions={"ForAnyValue:StringNotEquals": {"secretsmanager:AddReplicaRegions": scope.replica_regions}},
    )


def _invoked(rotation_functions: Sequence[str], first_value_functions: Sequence[str]) -> tuple[str, ...]:
    """The rotation functions' pattern, and each first-value function it does not already match."""
    pattern = (functions_pattern(rotation_functions),) if rotation_functions else ()
    return pattern + tuple(sorted({f for f in first_value_functions
                                   if not any(fnmatch.fnmatchcase(f, p) for p in pattern)}))


def functions_pattern(functions: Sequence[str]) -> str:
    """One ARN pattern for the stack's rotation functions: their common start (`<app>-<env>-rotate-`,
    components/names.py) and `*`, or the one ARN. A pattern keeps the CI policy's size constant as
    groups are added (IAM's 6,144 characters)."""
    first, *others = sorted(set(functions))
    if not others:
        return first
    common = next((i for i, chars in enumerate(zip(first, others[-1], strict=False)) if len(set(chars)) > 1),
                  min(len(first), len(others[-1])))
    return first[:common] + "*"


def _rotation_function_deny(functions: Sequence[str], own: tuple[str, ...]) -> iam.Statement:
    """RotateSecret may name only the stack's own rotation functions (secretsmanager:RotationLambdaARN
    is in the request context when the call names a function; a bare "rotate now" names none)."""
    if not functions:
        return iam.Statement(
            sid="DenyForeignRotationFunctions", effect="Deny", actions=("secretsmanager:RotateSecret",),
            resources=own, conditions={"Null": {"secretsmanager:RotationLambdaARN": ("false",)}},
        )
    return iam.Statement(
        sid="DenyForeignRotationFunctions", effect="Deny", actions=("secretsmanager:RotateSecret",), resources=own,
        conditions={"Null": {"secretsmanager:RotationLambdaARN": ("false",)},
                    "ArnNotLike": {"secretsmanager:RotationLambdaARN": (functions_pattern(functions),)}},
    )


VPC_NETWORK_ACTIONS = (
    "ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
"""What Lambda needs to attach a function to a VPC (Lambda developer guide, "Giving Lambda functions
access to resources in an Amazon VPC"): the EC2 half of AWSLambdaVPCAccessExecutionRole, whose logs
half would grant logs actions on every log group. The describe actions work only on `*`."""


def vpc_interfaces_resource(region: str, account_id: str) -> str:
    """Every EC2 resource of the account in the region, the form the Lambda developer guide gives for the
    network-interface actions. Lambda checks the execution role at CreateFunction and
    UpdateFunctionConfiguration, before any interface exists: a grant on `network-interface/*` (or on
    the subnets and security groups) fails that check ("does not have permissions to call
    DeleteNetworkInterface on EC2"). The function's subnets are fixed by its vpc_config, not by IAM."""
    return f"arn:aws:ec2:{region}:{account_id}:*/*"


def rotation_statements(
    scope: Scope, rotated: Sequence[str], masters: Sequence[str], log_group_arn: str, *,
    subnet_ids: Sequence[str] = (), publishes: Sequence[str] = (),
) -> list[iam.Statement]:
    """A rotation function: the protocol's calls on exactly the secrets it rotates, and a new version of
    the public-key secrets it `publishes` (jwt-rs256), nothing else."""
    own = tuple(arn for name in rotated for arn in scope.secret(name))
    master_arns = tuple(arn for name in masters for arn in scope.secret(name))
    published = tuple(arn for name in publishes for arn in scope.secret(name))
    statements = [
        iam.Statement(sid="RotateOwnSecrets", effect="Allow", actions=ROTATION_ACTIONS, resources=own),
        iam.Statement(
            sid="EncryptThroughSecretsManager", effect="Allow", actions=KMS_ENCRYPT, resources=scope.key_arns,
            conditions=scope.kms_via_secrets_manager(),
        ),
        iam.Statement(
            sid="WriteOwnLogs", effect="Allow", actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=(f"{log_group_arn}:*",),
        ),
        *scope.isolation_deny(),
    ]
    if master_arns:
        statements.insert(1, iam.Statement(
            sid="ReadAdminCredentials", effect="Allow", actions=READ_ACTIONS, resources=master_arns,
        ))
    if published:
        # PutSecretValue alone: the function never reads the public secret back.
        statements.insert(1, iam.Statement(
            sid="PublishPublicKeys", effect="Allow", actions=(APP_WRITE_ACTION,), resources=published,
        ))
    if subnet_ids:
        # A function in the stack's VPC (a database strategy): Lambda manages its network interfaces.
        at = -1 if scope.other_environments else len(statements)
        statements[at:at] = [
            # `network-interface/*` and `subnet/*` add nothing for IAM (a wildcard matches across the `/`),
            # but say the same to readers that take the resource type literally (the simulator, parliament).
            iam.Statement(sid="ManageNetworkInterfaces", effect="Allow", actions=VPC_NETWORK_ACTIONS, resources=(
                vpc_interfaces_resource(scope.region, scope.account_id),
                *(f"arn:aws:ec2:{scope.region}:{scope.account_id}:{kind}/*"
                  for kind in ("network-interface", "subnet")),
            )),
            iam.Statement(sid="DescribeNetwork", effect="Allow", actions=VPC_DESCRIBE_ACTIONS, resources=("*",)),
        ]
    return statements


def secret_resource_policy(account_id: str) -> list[iam.Statement]:
    """Attached to every secret: nobody outside the account, whatever their own policies say."""
    return [
        iam.Statement(
            sid="DenyOutsideAccount", effect="Deny", principals={"AWS": ("*",)}, actions=("secretsmanager:*",),
            resources=("*",),
            # AWS services acting for the account (replication, rotation) carry no principal account.
            conditions={
                "StringNotEquals": {"aws:PrincipalAccount": (account_id,)},
                "BoolIfExists": {"aws:PrincipalIsAWSService": ("false",)},
            },
        ),
    ]


# The state of a self-managed Pulumi backend (`python -m ops bootstrap-state`) ---------------------------

STATE_OBJECTS = ".pulumi/*"
"""Everything Pulumi's DIY backend keeps in its bucket: stacks, locks, history, backups, meta.yaml."""


def state_bucket_policy(bucket_arn: str) -> list[iam.Statement]:
    """The state bucket refuses requests over plain HTTP, from anyone."""
    return [iam.Statement(
        sid="RefusePlainHttp", effect="Deny", actions=("s3:*",), resources=(bucket_arn, f"{bucket_arn}/*"),
        principals={"AWS": ("*",)}, conditions={"Bool": {"aws:SecureTransport": ("false",)}},
    )]


def state_backend_statements(bucket_arn: str, key_arn: str, region: str, *, write: bool) -> list[iam.Statement]:
    """What a role running Pulumi needs on its state: `preview` reads the stack's state and opens its secrets
    (the data key, KMS Decrypt); `up`, `refresh` and `destroy` also write the state, its history and backups,
    and a lock they delete afterwards (pulumi/pulumi `pkg/backend/diy`). Objects are SSE-KMS under the same key,
    so S3 asks KMS for a data key on every write (GenerateDataKey through S3 only)."""
    statements = [
        iam.Statement(sid="ListState", effect="Allow", actions=("s3:ListBucket",), resources=(bucket_arn,),
                      conditions={"StringLike": {"s3:prefix": (".pulumi/", STATE_OBJECTS)}}),
        iam.Statement(sid="ReadState", effect="Allow", actions=("s3:GetObject",),
                      resources=(f"{bucket_arn}/{STATE_OBJECTS}",)),
        # The CLI unwraps the stack's data key itself (no kms:ViaService), and S3 decrypts objects through it.
        iam.Statement(sid="OpenStateSecrets", effect="Allow", actions=("kms:Decrypt",), resources=(key_arn,)),
    ]
    if write:
        statements += [
            iam.Statement(sid="WriteStateAndLocks", effect="Allow", actions=("s3:DeleteObject", "s3:PutObject"),
                          resources=(f"{bucket_arn}/{STATE_OBJECTS}",)),
            iam.Statement(sid="EncryptStateObjects", effect="Allow", actions=("kms:GenerateDataKey",),
                          resources=(key_arn,),
                          conditions={"StringEquals": {"kms:ViaService": (f"s3.{region}.amazonaws.com",)}}),
        ]
    return statements


def consumer_restart_statements(ecs_services: Sequence[str], functions: Sequence[str], queue_arn: str,
                                log_group_arn: str) -> list[iam.Statement]:
    """The consumer restart function (components/consumers.py): a new deployment of exactly these ECS
    services, new execution environments of exactly these Lambda functions, its own queue and logs. No
    secret and no key: it never reads a value."""
    statements = []
    if ecs_services:
        # DescribeServices and UpdateService both take the service ARN as their resource (service
        # authorization reference, Amazon ECS); forceNewDeployment passes no role.
        statements.append(iam.Statement(
            sid="RedeployConsumerServices", effect="Allow", actions=("ecs:DescribeServices", "ecs:UpdateService"),
            resources=tuple(sorted(set(ecs_services))),
        ))
    if functions:
        statements.append(iam.Statement(
            sid="RestartConsumerFunctions", effect="Allow",
            actions=("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"),
            resources=tuple(sorted(set(functions))),
        ))
    statements += [
        iam.Statement(
            sid="ReceiveRotationEvents", effect="Allow",
            actions=("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                     "sqs:ReceiveMessage"),
            resources=(queue_arn,),
        ),
        iam.Statement(
            sid="WriteOwnLogs", effect="Allow", actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=(f"{log_group_arn}:*",),
        ),
    ]
    return statements


def restart_queue_statements(queue_arn: str, rule_arn: str) -> list[iam.Statement]:
    """The restart queue's policy: only the environment's rule sends to it (EventBridge user guide,
    "Amazon SQS permissions": events.amazonaws.com with aws:SourceArn of the rule)."""
    return [iam.Statement(
        sid="RuleOfThisEnvironmentSends", effect="Allow", principals={"Service": ("events.amazonaws.com",)},
        actions=("sqs:SendMessage",), resources=(queue_arn,),
        conditions={"ArnEquals": {"aws:SourceArn": (rule_arn,)}},
    )]


# Sharing a secret with roles of other accounts (components/sharing.py) ----------------------------
# A cross-account read needs the resource policy (here), the key policy (components/kms.py) and the
# other account's identity policy (`shared_consumer_statements`, an output): Secrets Manager user guide,
# "Access AWS Secrets Manager secrets from a different account".


def shared_secret_resource_policy(account_id: str, role_arns: Sequence[str]) -> list[iam.Statement]:
    """A shared secret's resource policy: the account-wide deny excepts exactly these roles (by
    `aws:PrincipalArn`, never their account), which may read the secret and do nothing else to it."""
    base = secret_resource_policy(account_id)
    if not role_arns:
        return base
    roles = tuple(sorted(set(role_arns)))
    outside = base[0]
    return [
        replace(outside, conditions={**outside.conditions, "ArnNotEquals": {"aws:PrincipalArn": roles}}),
        *base[1:],
        iam.Statement(sid="SharedRolesRead", effect="Allow", principals={"AWS": roles}, actions=READ_ACTIONS,
                      resources=("*",)),  # in a resource policy, "*" is this secret
        # Whatever the other account's own policies say: no write, no policy change, no delete.
        iam.Statement(sid="SharedRolesOnlyRead", effect="Deny", principals={"AWS": ("*",)}, actions=READ_ACTIONS,
                      not_action=True, resources=("*",), conditions={"ArnEquals": {"aws:PrincipalArn": roles}}),
    ]


def shared_consumer_statements(scope: Scope, secrets: Sequence[str]) -> list[iam.Statement]:
    """The identity policy another account attaches to its role: read these secrets (every region they live
    in) and decrypt with the environment's keys only through Secrets Manager."""
    return [
        iam.Statement(sid="ReadSharedSecrets", effect="Allow", actions=READ_ACTIONS,
                      resources=tuple(arn for name in secrets for arn in scope.secret(name))),
        iam.Statement(sid="DecryptSharedSecrets", effect="Allow", actions=KMS_DECRYPT, resources=scope.key_arns,
                      conditions=scope.kms_via_secrets_manager()),
    ]


# AWS-managed admin credentials (components/managed.py) ---------------------------------------------------

def managed_master_statements(scope: Scope, masters: Sequence[tuple[str, str | None]]) -> list[iam.Statement]:
    """A rotation function whose admin credential is an RDS-managed master secret: read exactly those secrets
    (`masters`: (secret ARN, its customer-managed key ARN or None)). A customer-managed key is granted for
    Decrypt only through Secrets Manager and only for that secret (Secrets Manager's encryption context names
    the secret's ARN). `aws/secretsmanager` needs no statement: its key policy already allows every principal
    of the account through Secrets Manager in the region."""
    arns = tuple(sorted({arn for arn, _ in masters}))
    if not arns:
        return []
    statements = [iam.Statement(sid="ReadManagedAdminCredentials", effect="Allow", actions=READ_ACTIONS,
                                resources=arns)]
    for index, key in enumerate(sorted({k for _, k in masters if k is not None})):
        secrets = tuple(sorted(arn for arn, k in masters if k == key))
        statements.append(iam.Statement(
            sid=f"DecryptManagedAdminCredentials{index}" if index else "DecryptManagedAdminCredentials",
            effect="Allow", actions=KMS_DECRYPT, resources=(key,),
            conditions={"StringEquals": {"kms:ViaService": (iam.secrets_manager_via(scope.region),),
                                         "kms:EncryptionContext:SecretARN": secrets}},
        ))
    return statements


def managed_external_statements(scope: Scope, secrets: Sequence[tuple[str, str]]) -> list[iam.Statement]:
    """The role Secrets Manager assumes to rotate managed external secrets (`secrets`: catalog name, secret
    Type): the rotation calls on exactly those secrets, only while they carry their partner's Type
    (`secretsmanager:resource/Type`), and the environment's key through Secrets Manager (user guide, managed
    external secrets, "Security and permissions")."""
    arns = tuple(arn for name, _ in secrets for arn in scope.secret(name))
    types = tuple(sorted({t for _, t in secrets}))
    return [
        iam.Statement(
            sid="RotateManagedExternalSecrets", effect="Allow",
            actions=("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                     "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"),
            resources=arns, conditions={"StringEquals": {"secretsmanager:resource/Type": types}},
        ),
        # GetRandomPassword names no resource (Service Authorization Reference): it cannot be scoped.
        iam.Statement(sid="GeneratePasswords", effect="Allow", actions=("secretsmanager:GetRandomPassword",)),
        iam.Statement(
            sid="EncryptThroughSecretsManager", effect="Allow", actions=KMS_ENCRYPT, resources=scope.key_arns,
            conditions=scope.kms_via_secrets_manager(),
        ),
        *scope.isolation_deny(),
    ]


FIRST_VALUE_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue")
"""What the one-shot first-value function does to its secrets (rotation/first_value.py): DescribeSecret (has it
AWSCURRENT?) and PutSecretValue. It never reads a value, so no GetSecretValue."""


def first_value_statements(scope: Scope, secrets: Sequence[str], log_group_arn: str) -> list[iam.Statement]:
    """The first-value function: describe and write exactly its secrets, store through the environment's key
    (PutSecretValue under a customer-managed key asks KMS for a data key), write its own logs."""
    own = tuple(arn for name in secrets for arn in scope.secret(name))
    return [
        iam.Statement(sid="WriteFirstValues", effect="Allow", actions=FIRST_VALUE_ACTIONS, resources=own),
        iam.Statement(sid="StoreThroughSecretsManager", effect="Allow", actions=KMS_STORE, resources=scope.key_arns,
                      conditions=scope.kms_via_secrets_manager()),
        iam.Statement(sid="WriteOwnLogs", effect="Allow", actions=("logs:CreateLogStream", "logs:PutLogEvents"),
                      resources=(f"{log_group_arn}:*",)),
        *scope.isolation_deny(),
    ]
