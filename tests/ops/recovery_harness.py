"""A stack's named resources applied to moto with AWS's create-time name rules, beside the life engine's secrets.

The life engine (tests/life/engine.py) plays the provider's Secrets Manager operations; it leaves out every
other type. A recovery stack fails, or not, on those others: on names that must be unique. This applies the
resources whose create refuses an existing name, as `pulumi up` would create them, against moto on loopback:

- aws.kms.Key -> CreateKey in its region (a new key id; the mock's id is mapped to it), then
  aws.kms.Alias -> CreateAlias: an alias name is unique per account and region, AlreadyExistsException
  otherwise (KMS API reference, CreateAlias; moto enforces it);
- aws.iam.Role -> CreateRole, aws.iam.Policy -> CreatePolicy: unique per account whatever the region,
  EntityAlreadyExists otherwise (IAM API reference, CreateRole/CreatePolicy: "EntityAlreadyExists"; moto
  enforces it); aws.iam.RolePolicyAttachment -> AttachRolePolicy, NoSuchEntity when the role is missing;
- aws.cloudwatch.LogGroup -> CreateLogGroup (ResourceAlreadyExistsException per region);
- aws.lambda.Function -> CreateFunction (ResourceConflictException per region; moto checks the role exists).

Left out, because a second create of the same name succeeds or the name is not the resource's identity:
SNS CreateTopic (idempotent for the same name and attributes, SNS API reference), EventBridge PutRule (creates
or updates), Lambda permissions, topic and secret policies, event targets.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from preview.model import CollectedResource

KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"
ROLE, POLICY = "aws:iam/role:Role", "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP, FUNCTION = "aws:cloudwatch/logGroup:LogGroup", "aws:lambda/function:Function"
ORDER = (KEY, ALIAS, ROLE, POLICY, ATTACHMENT, LOG_GROUP, FUNCTION)


def mock_key_id(region: str, name: str) -> str:
    """The key id preview/mocks.py gives an aws.kms.Key (its ARN ends in it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{name}"))


@dataclass
class Account:
    """What one or more stacks created in moto's account, and the mock ids mapped to the real ones."""

    moto: Any
    account_id: str
    real: dict[str, str] = field(default_factory=dict)
    """A mock key id or key ARN -> the real one in moto."""
    created: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, region, name) of every resource applied, in order (cleanup goes backwards)."""

    def apply(self, resources: Iterable[CollectedResource], region: str) -> None:
        """Create each named resource as `pulumi up` would; the first refused name raises botocore's ClientError."""
        chosen = sorted((r for r in resources if r.custom and r.type in ORDER),
                        key=lambda r: (ORDER.index(r.type), r.urn))
        for r in chosen:
            where = r.inputs.get("region") or region
            if r.type == KEY:
                kms = self.moto.client("kms", where)
                created = kms.create_key(Description=r.inputs.get("description", ""))["KeyMetadata"]
                mock = mock_key_id(where, r.name)
                self.real[mock] = created["KeyId"]
                self.real[f"arn:aws:kms:{where}:{self.account_id}:key/{mock}"] = created["Arn"]
                self.created.append((KEY, where, created["KeyId"]))
            elif r.type == ALIAS:
                target = r.inputs["targetKeyId"]
                self.moto.client("kms", where).create_alias(AliasName=r.inputs["name"],
                                                            TargetKeyId=self.real.get(target, target))
                self.created.append((ALIAS, where, r.inputs["name"]))
            elif r.type == ROLE:
                self.moto.client("iam").create_role(RoleName=r.inputs["name"],
                                                    AssumeRolePolicyDocument=r.inputs["assumeRolePolicy"])
                self.created.append((ROLE, "global", r.inputs["name"]))
            elif r.type == POLICY:
                self.moto.client("iam").create_policy(PolicyName=r.inputs["name"], PolicyDocument=r.inputs["policy"])
                self.created.append((POLICY, "global", r.inputs["name"]))
            elif r.type == ATTACHMENT:
                self.moto.client("iam").attach_role_policy(RoleName=r.inputs["role"], PolicyArn=r.inputs["policyArn"])
                self.created.append((ATTACHMENT, r.inputs["role"], r.inputs["policyArn"]))
            elif r.type == LOG_GROUP:
                self.moto.client("logs", where).create_log_group(logGroupName=r.inputs["name"])
                self.created.append((LOG_GROUP, where, r.inputs["name"]))
            elif r.type == FUNCTION:
                variables = dict((r.inputs.get("environment") or {}).get("variables") or {})
                self.moto.client("lambda", where).create_function(
                    FunctionName=r.inputs["name"], Runtime="python3.12", Role=r.inputs["role"],
                    Handler="rotation.handler.lambda_handler", Code={"ZipFile": _zip()},
                    Environment={"Variables": variables})
                self.created.append((FUNCTION, where, r.inputs["name"]))

    def clean(self, since: int = 0) -> None:
        """Remove what was applied from the `since`-th creation on, newest first (as `pulumi destroy` of the stack
        that made them; moto's server lives for the whole session)."""
        for kind, where, name in reversed(self.created[since:]):
            if kind == KEY:
                self.moto.client("kms", where).schedule_key_deletion(KeyId=name, PendingWindowInDays=7)
            elif kind == ALIAS:
                self.moto.client("kms", where).delete_alias(AliasName=name)
            elif kind == ROLE:
                self.moto.client("iam").delete_role(RoleName=name)
            elif kind == POLICY:
                arn = f"arn:aws:iam::{self.account_id}:policy/{name}"
                self.moto.client("iam").delete_policy(PolicyArn=arn)
            elif kind == ATTACHMENT:
                self.moto.client("iam").detach_role_policy(RoleName=where, PolicyArn=name)
            elif kind == LOG_GROUP:
                self.moto.client("logs", where).delete_log_group(logGroupName=name)
            elif kind == FUNCTION:
                self.moto.client("lambda", where).delete_function(FunctionName=name)
        del self.created[since:]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rotation/__init__.py", "")
    return buffer.getvalue()


def with_subnets(path: Any) -> None:
    """What the failover's message asks of the recovery stack file: this region's subnets and security group
    for the functions that reach a server (ids made up: nothing here runs in a VPC)."""
    import yaml

    text = path.read_text()
    data = yaml.safe_load(text)
    data["config"]["secrets-platform:rotationSubnetIds"] = ["subnet-0a1b2c3d4e5f60718"]
    data["config"]["secrets-platform:rotationSecurityGroupIds"] = ["sg-0a1b2c3d4e5f60718"]
    path.write_text(json.dumps(data))
