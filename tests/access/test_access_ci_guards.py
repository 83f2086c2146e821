"""What a pipeline could do with a secret beyond read/write/rotate/delete, cell by cell in the simulator.

Re-encrypting under another key, replicating elsewhere, removing a replica, pointing rotation at a
foreign function, cancelling rotation: each request carries the condition keys AWS puts in its
request context (service authorization reference for Secrets Manager), and the independent
simulator's decision must equal both the rule below and `preview.access_matrix`'s evaluator.
"""

from __future__ import annotations

from dataclasses import replace

from access_harness import ACCOUNT, APP, STACKS, Role, Simulator, Stacks, stack_values
from test_access_matrix import _both as both

from components.names import rotation_function
from preview.access_matrix import (
    Principal,
    Request,
    SecretInfo,
    cell_requests,
    combine,
    evaluate_cell,
    invoke_request,
    secret_request,
)

OTHER_KEY = f"arn:aws:kms:ap-southeast-2:{ACCOUNT}:key/00000000-1111-2222-3333-444444444444"
"""A key that is not the environment's (as aws/secretsmanager's would be)."""


def own(stacks: Stacks, env: str) -> list[SecretInfo]:
    return [s for s in stacks.model.secrets if s.environment == env]


def requests(stacks: Stacks, role: Role, action: str, context: dict[str, str | tuple[str, ...]]) -> list[Request]:
    principal = stacks.model.principal(role.arn)
    return [secret_request(principal, s, action, context) for s in own(stacks, role.environment)]


def key_of(stacks: Stacks, secret: SecretInfo) -> str:
    key = stacks.model.key_of(secret)
    assert key is not None
    return key.arn


def test_a_pipeline_cannot_move_a_secret_to_another_key(stacks: Stacks, simulator: Simulator) -> None:
    for env in STACKS:
        ci = Role(env, "ci")
        principal = stacks.model.principal(ci.arn)
        secrets = [s for s in own(stacks, env) if s.region == stacks.model.region]
        for action in ("secretsmanager:UpdateSecret", "secretsmanager:CreateSecret"):
            other = [secret_request(principal, s, action, {"secretsmanager:KmsKeyArn": OTHER_KEY}) for s in secrets]
            assert set(both(simulator, other)) == {"ExplicitlyDenied"}, (env, action)
            mine = [secret_request(principal, s, action, {"secretsmanager:KmsKeyArn": key_of(stacks, s)})
                    for s in secrets]
            assert set(both(simulator, mine)) == {"Allowed"}, (env, action)
        # An update that names no key (a new description) leaves the key alone; a creation that names
        # none would use aws/secretsmanager.
        assert set(both(simulator, requests(stacks, ci, "secretsmanager:UpdateSecret", {}))) == {"Allowed"}
        assert set(both(simulator, requests(stacks, ci, "secretsmanager:CreateSecret", {}))) == {"ExplicitlyDenied"}


def _replicating(stacks: Stacks, simulator: Simulator, env: str, action: str, regions: tuple[str, ...]) -> set[str]:
    """The decisions on `action` naming replica `regions` for each of `env`'s primary secrets, by its pipeline."""
    principal = stacks.model.principal(Role(env, "ci").arn)
    batch = []
    for secret in (s for s in own(stacks, env) if s.region == stacks.model.region):
        context: dict[str, str | tuple[str, ...]] = {"secretsmanager:AddReplicaRegions": regions}
        if action == "secretsmanager:CreateSecret":
            context["secretsmanager:KmsKeyArn"] = key_of(stacks, secret)  # or it is denied for that
        batch.append(secret_request(principal, secret, action, context))
    return set(both(simulator, batch))


def test_a_pipeline_replicates_only_to_the_stacks_regions(stacks: Stacks, simulator: Simulator) -> None:
    """secretsmanager:AddReplicaRegions is in the request context of CreateSecret and
    ReplicateSecretToRegions (Service Authorization Reference; parliament's copy of it lists the key on
    both actions): a replica outside the stack's regions is denied explicitly, whatever else the role holds."""
    replicas = {env: tuple(stack_values(env).get("secrets-platform:replicaRegions") or ()) for env in STACKS}
    assert any(replicas.values()), "some stack must replicate, or this test proves nothing"
    for env in STACKS:
        for action in ("secretsmanager:ReplicateSecretToRegions", "secretsmanager:CreateSecret"):
            assert _replicating(stacks, simulator, env, action, ("us-east-1",)) == {"ExplicitlyDenied"}, env
            assert _replicating(stacks, simulator, env, action, (*replicas[env], "us-east-1")) == {
                "ExplicitlyDenied"}, env
            if replicas[env]:
                assert _replicating(stacks, simulator, env, action, replicas[env]) == {"Allowed"}, (env, action)
        # A creation without replicas is not concerned.
        principal = stacks.model.principal(Role(env, "ci").arn)
        plain = [secret_request(principal, s, "secretsmanager:CreateSecret",
                                {"secretsmanager:KmsKeyArn": key_of(stacks, s)})
                 for s in own(stacks, env) if s.region == stacks.model.region]
        assert set(both(simulator, plain)) == {"Allowed"}, env


def test_production_replicas_are_never_removed_by_a_pipeline(stacks: Stacks, simulator: Simulator) -> None:
    removal = "secretsmanager:RemoveRegionsFromReplication"
    assert set(both(simulator, requests(stacks, Role("production", "ci"), removal, {}))) == {"ExplicitlyDenied"}
    assert set(both(simulator, requests(stacks, Role("staging", "ci"), removal, {}))) == {"Allowed"}


def test_rotation_goes_only_to_the_stacks_own_functions(stacks: Stacks, simulator: Simulator) -> None:
    for env in STACKS:
        ci = Role(env, "ci")
        foreign = f"arn:aws:lambda:{stacks.model.region}:{ACCOUNT}:function:exfiltrate"
        other_env = f"arn:aws:lambda:{stacks.model.region}:{ACCOUNT}:function:" + rotation_function(
            APP, next(e for e in STACKS if e != env), "token")
        for function in (foreign, other_env):
            batch = requests(stacks, ci, "secretsmanager:RotateSecret", {"secretsmanager:RotationLambdaARN": function})
            assert set(both(simulator, batch)) == {"ExplicitlyDenied"}, (env, function)
        mine = f"arn:aws:lambda:{stacks.model.region}:{ACCOUNT}:function:{rotation_function(APP, env, 'token')}"
        batch = requests(stacks, ci, "secretsmanager:RotateSecret", {"secretsmanager:RotationLambdaARN": mine})
        assert set(both(simulator, batch)) == {"Allowed"}, env
        # "Rotate now" names no function: the one configured runs.
        assert set(both(simulator, requests(stacks, ci, "secretsmanager:RotateSecret", {}))) == {"Allowed"}


def test_cancelling_rotation(stacks: Stacks, simulator: Simulator) -> None:
    """A pipeline may turn rotation off (Pulumi deletes a SecretRotation that the catalog dropped, after
    the pack's rules on rotation passed); the application's roles never may."""
    for env in STACKS:
        cancel = "secretsmanager:CancelRotateSecret"
        assert set(both(simulator, requests(stacks, Role(env, "ci"), cancel, {}))) == {"Allowed"}
        assert set(both(simulator, requests(stacks, Role(env, "runtime"), cancel, {}))) == {"ExplicitlyDenied"}


LAMBDA_VPC_GUIDE = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html"
"""Lambda developer guide, "Giving Lambda functions access to resources in an Amazon VPC" (source:
awsdocs/aws-lambda-developer-guide doc_source/configuration-vpc.md): Lambda uses the execution role to
create and manage network interfaces; DescribeNetworkInterfaces works only on `*`; for
DeleteNetworkInterface "either specify a unique resource ID, or include all resource IDs, for example
arn:aws:ec2:us-west-2:123456789012:*/*"."""

ENI_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
               "ec2:UnassignPrivateIpAddresses")
"""The network-interface actions Lambda checks; DescribeNetworkInterfaces is checked on `*` (the simulator
refuses it on any other resource: it has no resource-level permissions)."""


def _role_request(role: Principal, action: str, resource: str) -> Request:
    return Request(principal=role.arn, action=action, resource=resource, resource_account=ACCOUNT,
                   context={"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": role.arn},
                   identity_policies=role.policies, resource_policy=None, service=action.split(":")[0])


def test_lambda_accepts_a_vpc_rotation_role_when_the_function_is_created(
        stacks: Stacks, simulator: Simulator) -> None:
    """Emulates Lambda's check at CreateFunction/UpdateFunctionConfiguration: no interface exists yet, so
    no interface id can be named; the role must allow each ENI action on every EC2 resource of the
    account in the region, the guide's `arn:aws:ec2:<region>:<account>:*/*` (LAMBDA_VPC_GUIDE). A grant on
    `network-interface/*`, subnets or security groups does not cover it, and Lambda refuses the function
    ("The provided execution role does not have permissions to call DeleteNetworkInterface on EC2")."""
    region = stacks.model.region
    for env in STACKS:
        if not stack_values(env).get("secrets-platform:rotationSubnetIds"):
            continue
        role = next(r for r in stacks.model.principals if r.name == rotation_function(APP, env, "redis-acl"))
        checked = f"arn:aws:ec2:{region}:{ACCOUNT}:*/*"
        batch = [_role_request(role, action, checked) for action in ENI_ACTIONS]
        batch.append(_role_request(role, "ec2:DescribeNetworkInterfaces", "*"))
        assert both(simulator, batch) == ["Allowed"] * len(batch), env
        # Once running, the same rights cover the interfaces Lambda makes (by id) in the stack's region only.
        later = [_role_request(role, "ec2:DeleteNetworkInterface",
                               f"arn:aws:ec2:{region}:{ACCOUNT}:network-interface/eni-0123456789abcdef0"),
                 _role_request(role, "ec2:DeleteNetworkInterface",
                               f"arn:aws:ec2:us-east-1:{ACCOUNT}:network-interface/eni-0123456789abcdef0"),
                 _role_request(role, "ec2:DeleteNetworkInterface",
                               f"arn:aws:ec2:{region}:000000000000:network-interface/eni-0123456789abcdef0")]
        assert both(simulator, later) == ["Allowed", "ImplicitlyDenied", "ImplicitlyDenied"], env
        return
    raise AssertionError("no stack puts a rotation function in a VPC: this test proves nothing")


def test_a_vpc_rotation_role_gets_no_other_ec2_or_logs_rights(stacks: Stacks, simulator: Simulator) -> None:
    """The EC2 half of AWS's VPC access policy and nothing more; none of its logs:* on `*`."""
    values = stack_values("production")
    subnet = values["secrets-platform:rotationSubnetIds"][0]
    role = next(r for r in stacks.model.principals if r.name == rotation_function(APP, "production", "redis-acl"))
    region = stacks.model.region
    ec2 = f"arn:aws:ec2:{region}:{ACCOUNT}"
    cases = {
        ("ec2:DeleteSubnet", f"{ec2}:subnet/{subnet}"): "ImplicitlyDenied",
        ("ec2:RunInstances", f"{ec2}:*/*"): "ImplicitlyDenied",
        ("ec2:ModifyNetworkInterfaceAttribute", f"{ec2}:network-interface/eni-0123456789abcdef0"): "ImplicitlyDenied",
        ("logs:PutLogEvents", f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/someone-else:log-stream:x"):
            "ImplicitlyDenied",
        ("logs:CreateLogGroup", f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/anything"): "ImplicitlyDenied",
    }
    batch = [_role_request(role, action, resource) for action, resource in cases]
    assert both(simulator, batch) == list(cases.values())
    # A token function runs outside the VPC: no EC2 rights at all.
    token = next(r for r in stacks.model.principals if r.name == rotation_function(APP, "production", "token"))
    assert both(simulator, [_role_request(token, "ec2:DescribeNetworkInterfaces", "*")]) == ["ImplicitlyDenied"]


def test_rotating_now_needs_the_function_too(stacks: Stacks, simulator: Simulator) -> None:
    """RotateSecret also needs lambda:InvokeFunction on the rotation function (botocore's RotateSecret
    documentation, `secretsmanager` service model: "You also need lambda:InvokeFunction permissions on the
    rotation function"). The pipeline may invoke its own stack's functions only; the matrix's `rotate`
    cell is allowed only when both requests are."""
    region = stacks.model.region
    for env in STACKS:
        ci = stacks.model.principal(Role(env, "ci").arn)
        rotated = [s for s in own(stacks, env) if s.rotation_function is not None]
        assert rotated, f"{env}: no secret has a rotation schedule, this test proves nothing"
        mine = sorted({s.rotation_function for s in rotated if s.rotation_function})
        assert all(f.startswith(f"arn:aws:lambda:{region}:{ACCOUNT}:function:{APP}-{env}-rotate-") for f in mine)
        assert set(both(simulator, [invoke_request(ci, f) for f in mine])) == {"Allowed"}, env
        other = next(e for e in STACKS if e != env)
        foreign = [f"arn:aws:lambda:{region}:{ACCOUNT}:function:{rotation_function(APP, other, 'token')}",
                   f"arn:aws:lambda:{region}:{ACCOUNT}:function:exfiltrate",
                   f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{rotation_function(APP, env, 'token')}"]
        assert set(both(simulator, [invoke_request(ci, f) for f in foreign])) == {"ImplicitlyDenied"}, env
        runtime = stacks.model.principal(Role(env, "runtime").arn)
        assert set(both(simulator, [invoke_request(runtime, f) for f in mine])) == {"ImplicitlyDenied"}, env

        # Without the invoke grant the cell is not allowed, though RotateSecret alone still is.
        bare = replace(ci, policies=tuple(
            replace(p, document={**p.document, "Statement": [
                st for st in p.document["Statement"] if st.get("Sid") != "InvokeOwnRotationFunctions"]})
            for p in ci.policies))
        for principal, want in ((ci, "Allowed"), (bare, "ImplicitlyDenied")):
            for secret in rotated:
                pair = cell_requests(principal, secret, "rotate")
                assert [r.action for r in pair] == ["secretsmanager:RotateSecret", "lambda:InvokeFunction"]
                decided = both(simulator, list(pair))
                assert combine(decided) == evaluate_cell(principal, secret, "rotate") == want, (env, secret.name)
            assert decided[0] == "Allowed"
