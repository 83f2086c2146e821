"""Every access policy (components/grants.py) rendered for one scope with a replica region and another
environment, and compared whole: each action, ARN pattern, condition and Deny.

The access tests (tests/access) prove what these documents allow with an IAM simulator; this pins the
documents themselves, so a widened pattern or a dropped condition that the simulator's requests happen not
to probe still fails. Keys: `aws:ResourceTag/environment` (IAM global condition keys),
`kms:ViaService` (KMS condition keys), `secretsmanager:ForceDeleteWithoutRecovery` and
`secretsmanager:RecoveryWindowInDays` (Secrets Manager's service authorization reference).
"""

from __future__ import annotations

import json

import pytest

from components import grants, iam
from components.grants import Scope
from preview.access_matrix import wildcard_match

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/primary"
REPLICA_KEY = f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/replica"
SCOPE = Scope(app="shop", environment="staging", account_id=ACCOUNT, region="eu-west-1",
              key_arns=(KEY, REPLICA_KEY), replica_regions=("eu-central-1",), other_environments=("production",))
PRODUCTION = Scope(app="shop", environment="production", account_id=ACCOUNT, region="eu-west-1", key_arns=(KEY,))


def arn(name: str, region: str = "eu-west-1", env: str = "staging") -> str:
    return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:shop/{env}/{name}-??????"


def both(name: str) -> list[str]:
    return sorted([arn(name), arn(name, "eu-central-1")])


VIA = {"StringEquals": {"kms:ViaService": ["secretsmanager.eu-central-1.amazonaws.com",
                                          "secretsmanager.eu-west-1.amazonaws.com"]}}
TAGGED = {"StringEquals": {"aws:ResourceTag/environment": "staging"}}
# Every action on another environment's secrets, today's SECRET_ACTIONS and any AWS adds (a Deny only).
ISOLATION = {"Sid": "DenyOtherEnvironments", "Effect": "Deny", "Action": "secretsmanager:*",
             "Resource": f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:shop/production/*"}


def rendered(statements: list[iam.Statement]) -> list[dict]:
    return json.loads(iam.document(statements, where="test", limit=iam.SECRET_POLICY_LIMIT))["Statement"]


def test_a_service_reads_exactly_its_secrets_and_writes_nothing() -> None:
    assert rendered(grants.read_statements(SCOPE, ["db", "api"], denied=["db-admin"])) == [
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": sorted(grants.READ_ACTIONS),
         "Resource": sorted(both("db") + both("api")), "Condition": TAGGED},
        {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": sorted([KEY, REPLICA_KEY]), "Condition": VIA},
        {"Sid": "DenyWrites", "Effect": "Deny", "Action": sorted(grants.WRITE_ACTIONS), "Resource": "*"},
        ISOLATION,
        {"Sid": "DenyAdminCredentials", "Effect": "Deny", "Action": sorted(grants.READ_ACTIONS),
         "Resource": both("db-admin")},
    ]


def test_the_runtime_reads_the_environment_through_one_pattern() -> None:
    statements = rendered(grants.read_statements(SCOPE, None))
    assert statements[0]["Resource"] == sorted(
        f"arn:aws:secretsmanager:{r}:{ACCOUNT}:secret:shop/staging/*" for r in ("eu-west-1", "eu-central-1"))
    assert [s["Sid"] for s in statements] == ["ReadSecrets", "DecryptThroughSecretsManager", "DenyWrites",
                                              "DenyOtherEnvironments"]


def test_a_reader_of_a_renewed_value_keeps_only_put_secret_value_open_on_it() -> None:
    statements = rendered(grants.read_statements(SCOPE, ["token"], app_written=["token"]))
    assert statements[2:] == [
        {"Sid": "DenyWrites", "Effect": "Deny", "Action": sorted(grants.WRITE_ACTIONS), "NotResource": both("token")},
        {"Sid": "DenyWritesButRenewal", "Effect": "Deny",
         "Action": sorted(a for a in grants.WRITE_ACTIONS if a != "secretsmanager:PutSecretValue"),
         "Resource": both("token")},
        ISOLATION,
    ]


def test_a_writer_puts_new_values_of_exactly_its_secrets_in_the_primary_region() -> None:
    assert rendered(grants.app_write_statements(SCOPE, ["token", "other"])) == [
        {"Sid": "WriteRenewedValues", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue",
         "Resource": sorted([arn("token"), arn("other")]), "Condition": TAGGED},
        {"Sid": "EncryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:GenerateDataKey",
         "Resource": sorted([KEY, REPLICA_KEY]), "Condition": VIA},
        ISOLATION,
    ]


@pytest.mark.parametrize("reads_values", [False, True])
def test_a_staging_pipeline_manages_and_may_delete_with_recovery(reads_values: bool) -> None:
    own = sorted(f"arn:aws:secretsmanager:{r}:{ACCOUNT}:secret:shop/staging/*" for r in ("eu-west-1", "eu-central-1"))
    function = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:shop-staging-rotate-token"
    manage = sorted({*grants.CI_MANAGE_ACTIONS, "secretsmanager:DeleteSecret"}
                    - {"secretsmanager:ReplicateSecretToRegions"})
    expected = [
        {"Sid": "ManageEnvironmentSecrets", "Effect": "Allow", "Action": manage, "Resource": own},
        {"Sid": "ReplicateToStackRegions", "Effect": "Allow", "Action": "secretsmanager:ReplicateSecretToRegions",
         "Resource": own,
         "Condition": {"ForAllValues:StringEquals": {"secretsmanager:AddReplicaRegions": "eu-central-1"}}},
        # RotateSecret needs lambda:InvokeFunction on the function (botocore's RotateSecret documentation).
        {"Sid": "InvokeOwnRotationFunctions", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": function},
        {"Sid": "EncryptThroughSecretsManager", "Effect": "Allow", "Action": sorted(grants.KMS_ENCRYPT),
         "Resource": sorted([KEY, REPLICA_KEY]), "Condition": VIA},
        {"Sid": "DenyOtherKeys", "Effect": "Deny",
         "Action": ["secretsmanager:CreateSecret", "secretsmanager:UpdateSecret"], "Resource": own,
         "Condition": {"ArnNotEquals": {"secretsmanager:KmsKeyArn": sorted([KEY, REPLICA_KEY])},
                       "Null": {"secretsmanager:KmsKeyArn": "false"}}},
        {"Sid": "DenyCreatingWithoutTheKey", "Effect": "Deny", "Action": "secretsmanager:CreateSecret",
         "Resource": own, "Condition": {"Null": {"secretsmanager:KmsKeyArn": "true"}}},
        {"Sid": "DenyForeignRotationFunctions", "Effect": "Deny", "Action": "secretsmanager:RotateSecret",
         "Resource": own, "Condition": {"ArnNotLike": {"secretsmanager:RotationLambdaARN": function},
                                        "Null": {"secretsmanager:RotationLambdaARN": "false"}}},
        {"Sid": "DenyDeletingProductionSecrets", "Effect": "Deny", "Action": "secretsmanager:DeleteSecret",
         "Resource": f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:shop/production/*"},
        # secretsmanager:AddReplicaRegions (Service Authorization Reference): any region but the stack's.
        {"Sid": "DenyReplicasElsewhere", "Effect": "Deny",
         "Action": ["secretsmanager:CreateSecret", "secretsmanager:ReplicateSecretToRegions"], "Resource": "*",
         "Condition": {"ForAnyValue:StringNotEquals": {"secretsmanager:AddReplicaRegions": "eu-central-1"}}},
        {"Sid": "DenyPolicyWithoutPublicBlock", "Effect": "Deny", "Action": "secretsmanager:PutResourcePolicy",
         "Resource": "*", "Condition": {"BoolIfExists": {"secretsmanager:BlockPublicPolicy": "false"}}},
        *({"Sid": f"DenyRetagging{key.title()}", "Effect": "Deny",
           "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"], "Resource": "*",
           "Condition": {"Null": {f"aws:RequestTag/{key}": "false"},
                         "StringNotEquals": {f"aws:RequestTag/{key}": value}}}
          for key, value in (("app", "shop"), ("environment", "staging"))),
        {"Sid": "DenyUntaggingPlatformTags", "Effect": "Deny", "Action": "secretsmanager:UntagResource",
         "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {
             "aws:TagKeys": ["app", "class", "environment", "managed-by", "owner", "rotation"]}}},
        {"Sid": "DenyDeletingWithoutRecovery", "Effect": "Deny", "Action": "secretsmanager:DeleteSecret",
         "Resource": "*", "Condition": {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}},
        {"Sid": "DenyShortRecoveryWindow", "Effect": "Deny", "Action": "secretsmanager:DeleteSecret",
         "Resource": "*", "Condition": {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "7"}}},
        ISOLATION,
    ]
    if reads_values:
        expected.insert(1, {"Sid": "ReadValuesForPulumi", "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue", "Resource": own})
    assert rendered(grants.ci_statements(SCOPE, reads_values=reads_values, min_recovery_days=7,
                                         rotation_functions=(function,))) == expected


def test_a_production_pipeline_cannot_delete_at_all() -> None:
    statements = rendered(grants.ci_statements(PRODUCTION, reads_values=False, min_recovery_days=30))
    # No replicas: no replication at all; RemoveRegionsFromReplication deletes replicas at once; the
    # provider deletes a resource policy only before deleting its secret.
    assert statements[0]["Action"] == sorted(set(grants.CI_MANAGE_ACTIONS) - {
        "secretsmanager:ReplicateSecretToRegions", "secretsmanager:RemoveRegionsFromReplication",
        "secretsmanager:DeleteResourcePolicy"})
    assert "secretsmanager:DeleteSecret" not in grants.CI_MANAGE_ACTIONS
    assert [s["Sid"] for s in statements] == [
        "ManageEnvironmentSecrets", "EncryptThroughSecretsManager", "DenyOtherKeys", "DenyCreatingWithoutTheKey",
        "DenyForeignRotationFunctions", "DenyDeletingProductionSecrets", "DenyReplicasElsewhere",
        "DenyPolicyWithoutPublicBlock", "DenyRetaggingApp", "DenyRetaggingEnvironment", "DenyUntaggingPlatformTags",
        "DenyDeletingWithoutRecovery", "DenyShortRecoveryWindow"], "no other environment: no isolation deny"
    # Without functions, no RotateSecret may name one, and nothing is invoked.
    assert statements[4]["Condition"] == {"Null": {"secretsmanager:RotationLambdaARN": "false"}}
    assert statements[5] == {"Sid": "DenyDeletingProductionSecrets", "Effect": "Deny", "Action": [
        "secretsmanager:DeleteResourcePolicy", "secretsmanager:DeleteSecret",
        "secretsmanager:RemoveRegionsFromReplication"],
        "Resource": f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:shop/production/*"}
    # No replica region at all: any replica is denied.
    assert statements[6]["Condition"] == {"Null": {"secretsmanager:AddReplicaRegions": "false"}}
    assert statements[12]["Condition"] == {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "30"}}


@pytest.mark.parametrize(("names", "pattern"), [
    (["shop-staging-rotate-token"], "shop-staging-rotate-token"),
    (["shop-staging-rotate-token", "shop-staging-rotate-redis-acl", "shop-staging-rotate-token-2"],
     "shop-staging-rotate-*"),
    (["shop-staging-rotate-jwt-hs256", "shop-staging-rotate-jwt-rs256"], "shop-staging-rotate-jwt-*"),
])
def test_the_pipeline_invokes_its_stacks_functions_through_one_pattern(names: list[str], pattern: str) -> None:
    """The functions' common start (components/names.py: `<app>-<env>-rotate-<group>`), so the policy does
    not grow with rotation groups; another environment's functions never match."""
    functions = [f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{n}" for n in names]
    statements = rendered(grants.ci_statements(SCOPE, reads_values=False, min_recovery_days=7,
                                               rotation_functions=functions))
    invoke = next(s for s in statements if s["Sid"] == "InvokeOwnRotationFunctions")
    assert invoke["Resource"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{pattern}"
    foreign = next(s for s in statements if s["Sid"] == "DenyForeignRotationFunctions")
    assert foreign["Condition"]["ArnNotLike"] == {"secretsmanager:RotationLambdaARN": invoke["Resource"]}
    assert not wildcard_match(invoke["Resource"],
                              f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:shop-production-rotate-token")


def test_a_vpc_rotation_function_manages_interfaces_in_the_form_lambda_checks() -> None:
    """Lambda checks the execution role when the function is created, before any interface exists
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html): every EC2 resource of the
    region and account, `*/*`; the describe actions only on `*`; nothing else about the subnets."""
    logs = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/rotator"
    statements = rendered(grants.rotation_statements(SCOPE, ["db"], [], logs, subnet_ids=["subnet-0123abcd"]))
    assert statements[3:6] == [
        {"Sid": "ManageNetworkInterfaces", "Effect": "Allow", "Action": sorted(grants.VPC_NETWORK_ACTIONS),
         "Resource": [f"arn:aws:ec2:eu-west-1:{ACCOUNT}:*/*", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:network-interface/*",
                      f"arn:aws:ec2:eu-west-1:{ACCOUNT}:subnet/*"]},
        {"Sid": "DescribeNetwork", "Effect": "Allow", "Action": sorted(grants.VPC_DESCRIBE_ACTIONS), "Resource": "*"},
        ISOLATION,
    ]


def test_a_rotation_function_touches_only_its_secrets_and_reads_its_masters() -> None:
    logs = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/rotator"
    assert rendered(grants.rotation_statements(SCOPE, ["db"], ["db-admin"], logs)) == [
        {"Sid": "RotateOwnSecrets", "Effect": "Allow", "Action": sorted(grants.ROTATION_ACTIONS),
         "Resource": both("db")},
        {"Sid": "ReadAdminCredentials", "Effect": "Allow", "Action": sorted(grants.READ_ACTIONS),
         "Resource": both("db-admin")},
        {"Sid": "EncryptThroughSecretsManager", "Effect": "Allow", "Action": sorted(grants.KMS_ENCRYPT),
         "Resource": sorted([KEY, REPLICA_KEY]), "Condition": VIA},
        {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"{logs}:*"},
        ISOLATION,
    ]
    without = rendered(grants.rotation_statements(SCOPE, ["db"], [], logs))
    assert [s["Sid"] for s in without] == ["RotateOwnSecrets", "EncryptThroughSecretsManager", "WriteOwnLogs",
                                           "DenyOtherEnvironments"]


def test_a_secret_denies_every_principal_outside_the_account() -> None:
    assert rendered(grants.secret_resource_policy(ACCOUNT)) == [{
        "Sid": "DenyOutsideAccount", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:*",
        "Resource": "*", "Condition": {
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            "StringNotEquals": {"aws:PrincipalAccount": ACCOUNT},
        }}]


def test_the_action_lists() -> None:
    assert grants.READ_ACTIONS == ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
    assert grants.ROTATION_ACTIONS == (
        "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
        "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage")
    assert set(grants.READ_ACTIONS) | set(grants.WRITE_ACTIONS) <= set(grants.SECRET_ACTIONS)
    assert not set(grants.READ_ACTIONS) & set(grants.WRITE_ACTIONS)
    assert SCOPE.regions == ("eu-west-1", "eu-central-1") and PRODUCTION.regions == ("eu-west-1",)
    assert PRODUCTION.isolation_deny() == []
