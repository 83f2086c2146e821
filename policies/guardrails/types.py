"""Resource type tokens the rules look at (as the engine sends them)."""

# ruff: noqa: S105 - type tokens, not passwords

from typing import Final

SECRET: Final = "aws:secretsmanager/secret:Secret"
SECRET_VERSION: Final = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET_ROTATION: Final = "aws:secretsmanager/secretRotation:SecretRotation"
SECRET_POLICY: Final = "aws:secretsmanager/secretPolicy:SecretPolicy"

KMS_KEY: Final = "aws:kms/key:Key"
KMS_ALIAS: Final = "aws:kms/alias:Alias"

IAM_POLICY: Final = "aws:iam/policy:Policy"
IAM_ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
IAM_USER_POLICY: Final = "aws:iam/userPolicy:UserPolicy"
IAM_USER_POLICY_ATTACHMENT: Final = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
IAM_POLICY_ATTACHMENT: Final = "aws:iam/policyAttachment:PolicyAttachment"

LAMBDA_FUNCTION: Final = "aws:lambda/function:Function"
LAMBDA_PERMISSION: Final = "aws:lambda/permission:Permission"
LAMBDA_FUNCTION_URL: Final = "aws:lambda/functionUrl:FunctionUrl"
LAMBDA_INVOCATION: Final = "aws:lambda/invocation:Invocation"
LOG_GROUP: Final = "aws:cloudwatch/logGroup:LogGroup"

RANDOM_PREFIX: Final = "random:"
"""Every pulumi-random resource type starts with this (`random:index/randomPassword:RandomPassword`)."""

# Resource types whose `policy` input is an IAM policy document (JSON string).
POLICY_DOCUMENT_TYPES: Final = (IAM_POLICY, IAM_ROLE_POLICY, IAM_USER_POLICY, SECRET_POLICY)
