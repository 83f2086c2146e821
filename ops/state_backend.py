"""`python -m ops bootstrap-state --stack <s>`: where a stack's Pulumi state lives without Pulumi Cloud.

A self-managed backend is an S3 bucket (Pulumi's DIY backend: `pulumi login s3://<bucket>`) and the stack's
`secure:` config values and secret outputs are encrypted under a KMS key of the organisation
(`--secrets-provider awskms://alias/<app>/<env>/pulumi-state`). This command makes both, or checks and
completes them when they exist, and prints the commands that point Pulumi at them and the IAM policies the
preview and deploy roles need on them. Every step reads first and changes only what differs, so a second run
changes nothing; `--dry-run` reads only.

What Pulumi does with them (pulumi/pulumi, `pkg/backend/diy/backend.go`, `pkg/secrets/cloud/manager.go`):
- `pulumi up`, `refresh`, `destroy` and `import` take a lock: an object under `.pulumi/locks/<project>/<stack>/`,
  written before and deleted after; a lock left by another run stops them. `pulumi preview` takes none.
- State is one object per stack under `.pulumi/stacks/`, with history and backups under `.pulumi/`.
- `awskms://` wraps a random 32-byte data key with KMS Encrypt once (`pulumi stack init` or
  `change-secrets-provider`, stored as `encryptedkey` in the stack file) and unwraps it with KMS Decrypt at
  every operation; values are then encrypted locally with that data key.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from components import grants, iam
from ops.aws import call, client_config, error_code
from ops.stack import OpsError, Stack

STATE_PREFIX = ".pulumi/"
"""Where Pulumi's DIY backend keeps everything in the bucket (stacks, locks, history, backups)."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]{1,250}$")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class StateBackend:
    """The bucket and key of one environment's state, and where they are."""

    bucket: str
    key_alias: str
    region: str
    account_id: str
    app: str
    environment: str

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def login_url(self) -> str:
        return f"s3://{self.bucket}?region={self.region}&awssdk=v2"

    @property
    def secrets_provider(self) -> str:
        return f"awskms://{self.key_alias}?region={self.region}&awssdk=v2"


@dataclass
class Report:
    """What a run found and did, one line a step."""

    lines: list[str] = field(default_factory=list)
    changed: int = 0

    def ok(self, what: str) -> None:
        self.lines.append(f"  ok       {what}")

    def change(self, what: str, dry_run: bool) -> None:
        self.changed += 1
        self.lines.append(f"  {'would' if dry_run else 'done':8} {what}")


def check_bucket_name(name: str) -> str | None:
    """Why S3 refuses a general-purpose bucket name, or None (S3 user guide, "General purpose bucket naming
    rules")."""
    if not _BUCKET.match(name):
        return "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "no two adjacent periods, and no period next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
        return "not formatted as an IP address"
    except ValueError:
        pass
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"not starting with '{prefix}'"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return f"not ending with '{suffix}'"
    return None


def plan(stack: Stack, account_id: str | None, bucket: str | None) -> StateBackend:
    """The names for a stack, checked before any call."""
    if not account_id or not _ACCOUNT.match(account_id):
        raise OpsError(f"stack '{stack.name}': secrets-platform:accountId must be the 12-digit account that holds the "
                       "state (or pass --account-id)")
    app, environment = stack.catalog.app, stack.environment
    # One bucket per application and account: every environment's stacks under it, each under its own key.
    name = bucket or f"{app}-pulumi-state-{account_id}"
    problem = check_bucket_name(name)
    if problem:
        raise OpsError(f"--bucket: {name[:80]!r} is not a name S3 accepts ({problem})")
    alias = f"alias/{app}/{environment}/pulumi-state"
    if not _ALIAS.match(alias) or alias.startswith("alias/aws/"):
        raise OpsError(f"the key alias '{alias}' is not one KMS accepts")
    return StateBackend(bucket=name, key_alias=alias, region=stack.region, account_id=account_id, app=app,
                        environment=environment)


def bucket_policy(backend: StateBackend) -> str:
    """Requests over plain HTTP are refused (S3 user guide, "Security best practices": aws:SecureTransport)."""
    return iam.document(grants.state_bucket_policy(backend.bucket_arn), where=f"bucket policy of {backend.bucket}")


def role_policies(backend: StateBackend, key_arn: str) -> dict[str, str]:
    """The identity policies the preview (read-only) and deploy roles need on the bucket and the key."""
    return {
        role: iam.document(grants.state_backend_statements(backend.bucket_arn, key_arn, backend.region,
                                                           write=role == "deploy"),
                           where=f"state access of the {role} role")
        for role in ("preview", "deploy")
    }


def _key(backend: StateBackend, kms: Any, report: Report, dry_run: bool) -> str:
    """The state key's ARN, after making sure it exists, is enabled and rotates."""
    from botocore.exceptions import ClientError

    try:
        described = kms.describe_key(KeyId=backend.key_alias)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise OpsError(f"{backend.key_alias}: AWS DescribeKey failed: {error_code(exc)}") from None
        described = None
    if described is None:
        report.change(f"create KMS key {backend.key_alias} (symmetric, rotation on)", dry_run)
        if dry_run:
            return f"arn:aws:kms:{backend.region}:{backend.account_id}:{backend.key_alias}"
        created = call("create the state key", kms.create_key,
                       Description=f"Pulumi state secrets of {backend.app} {backend.environment}",
                       KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                       Tags=[{"TagKey": "app", "TagValue": backend.app},
                             {"TagKey": "environment", "TagValue": backend.environment},
                             {"TagKey": "managed-by", "TagValue": "ops bootstrap-state"}])["KeyMetadata"]
        call("enable the state key's rotation", kms.enable_key_rotation, KeyId=created["KeyId"])
        call("name the state key", kms.create_alias, AliasName=backend.key_alias, TargetKeyId=created["KeyId"])
        return str(created["Arn"])
    arn = str(described["Arn"])
    if described.get("AccountId") not in (None, backend.account_id):
        raise OpsError(f"{backend.key_alias} is a key of account {described.get('AccountId')}, not "
                       f"{backend.account_id}")
    state = described.get("KeyState")
    if state == "PendingDeletion":
        raise OpsError(f"{backend.key_alias} is scheduled for deletion: run `aws kms cancel-key-deletion --key-id "
                       f"{described['KeyId']} --region {backend.region}` and `aws kms enable-key --key-id "
                       f"{described['KeyId']} --region {backend.region}`, then run this again")
    if state != "Enabled":
        raise OpsError(f"{backend.key_alias} is {state}: enable it (`aws kms enable-key --key-id "
                       f"{described['KeyId']} --region {backend.region}`), then run this again")
    if described.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        raise OpsError(f"{backend.key_alias} is not a symmetric key: Pulumi's awskms provider needs one")
    report.ok(f"KMS key {backend.key_alias} ({arn})")
    rotation = call("read the state key's rotation", kms.get_key_rotation_status, KeyId=described["KeyId"])
    if rotation.get("KeyRotationEnabled"):
        report.ok("key rotation on")
    else:
        report.change("turn the key's rotation on", dry_run)
        if not dry_run:
            call("enable the state key's rotation", kms.enable_key_rotation, KeyId=described["KeyId"])
    return arn


def _get(s3: Any, operation: str, missing: tuple[str, ...], **kwargs: Any) -> Any:
    """A bucket setting, or None when the bucket has none."""
    from botocore.exceptions import ClientError

    try:
        return getattr(s3, operation)(**kwargs)
    except ClientError as exc:
        if error_code(exc) in missing:
            return None
        raise OpsError(f"AWS {operation} failed: {error_code(exc)}") from None


def _bucket(backend: StateBackend, key_arn: str, s3: Any, report: Report, dry_run: bool) -> None:
    from botocore.exceptions import ClientError

    bucket = backend.bucket
    exists = True
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=backend.account_id)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            exists = False
        elif code in ("403", "AccessDenied", "Forbidden"):
            # Bucket names are global: another account's bucket of that name answers 403.
            raise OpsError(f"bucket {bucket} exists but not in account {backend.account_id} (or this role may not "
                           "read it): choose another name with --bucket") from None
        else:
            raise OpsError(f"bucket {bucket}: AWS HeadBucket failed: {code}") from None
    if not exists:
        report.change(f"create bucket {bucket} in {backend.region}", dry_run)
        if not dry_run:
            kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
            if backend.region != "us-east-1":  # us-east-1 refuses its own name as a LocationConstraint
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
            call(f"create bucket {bucket}", s3.create_bucket, **kwargs)
    else:
        report.ok(f"bucket {bucket}")
    fresh = not exists

    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
    found = None if fresh else _get(s3, "get_public_access_block", ("NoSuchPublicAccessBlockConfiguration",),
                                    Bucket=bucket)
    if found and found.get("PublicAccessBlockConfiguration") == block:
        report.ok("public access blocked")
    else:
        report.change("block all public access", dry_run)
        if not dry_run:
            call("block public access", s3.put_public_access_block, Bucket=bucket,
                 PublicAccessBlockConfiguration=block)

    found = None if fresh else _get(s3, "get_bucket_versioning", (), Bucket=bucket)
    if found and found.get("Status") == "Enabled":
        report.ok("versioning on (every earlier state stays readable)")
    else:
        report.change("turn versioning on (every earlier state stays readable)", dry_run)
        if not dry_run:
            call("turn versioning on", s3.put_bucket_versioning, Bucket=bucket,
                 VersioningConfiguration={"Status": "Enabled"})

    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True}
    found = None if fresh else _get(s3, "get_bucket_encryption", ("ServerSideEncryptionConfigurationNotFoundError",),
                                    Bucket=bucket)
    rules = (found or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if any(r.get("ApplyServerSideEncryptionByDefault") == rule["ApplyServerSideEncryptionByDefault"] for r in rules):
        report.ok("objects encrypted under the state key by default")
    else:
        report.change("encrypt objects under the state key by default (SSE-KMS, bucket key)", dry_run)
        if not dry_run:
            call("set the bucket's encryption", s3.put_bucket_encryption, Bucket=bucket,
                 ServerSideEncryptionConfiguration={"Rules": [rule]})

    wanted = json.loads(bucket_policy(backend))
    found = None if fresh else _get(s3, "get_bucket_policy", ("NoSuchBucketPolicy",), Bucket=bucket)
    if found and json.loads(found["Policy"]) == wanted:
        report.ok("plain-HTTP requests refused (bucket policy)")
    elif found:
        # Replacing a policy someone wrote would drop their statements: say so instead.
        report.lines.append("  differs  the bucket has a policy of its own: add the statement of `bucket_policy` "
                            "(aws:SecureTransport) to it by hand")
    else:
        report.change("refuse plain-HTTP requests (bucket policy)", dry_run)
        if not dry_run:
            call("set the bucket policy", s3.put_bucket_policy, Bucket=bucket, Policy=bucket_policy(backend))


def bootstrap(backend: StateBackend, s3: Any, kms: Any, dry_run: bool) -> tuple[Report, str]:
    """Make or check the key, then the bucket (whose default encryption names the key)."""
    report = Report()
    key_arn = _key(backend, kms, report, dry_run)
    _bucket(backend, key_arn, s3, report, dry_run)
    return report, key_arn


def render(stack: Stack, backend: StateBackend, report: Report, key_arn: str, dry_run: bool, out: TextIO) -> None:
    verb = "would change" if dry_run else "changed"
    out.write(f"State backend of stack '{stack.name}' ({backend.app}/{backend.environment}, {backend.region}): "
              f"{report.changed} {verb}\n")
    out.writelines(line + "\n" for line in report.lines)
    out.write("\nPoint Pulumi at them (once per machine, then once per stack):\n")
    out.write(f"  pulumi login '{backend.login_url}'\n")
    out.write(f"  pulumi stack init {stack.name} --secrets-provider '{backend.secrets_provider}'\n")
    out.write(f"  # an existing stack: pulumi stack change-secrets-provider '{backend.secrets_provider}' "
              f"--stack {stack.name}\n")
    out.write("  (whoever runs `stack init` or `change-secrets-provider` needs kms:Encrypt on the key once; "
              "nobody else does)\n")
    out.write("\nIAM policies for the roles that run Pulumi against this state:\n")
    for role, document in role_policies(backend, key_arn).items():
        out.write(f"  {role}: {document}\n")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bootstrap-state",
        help="make (or check) the S3 bucket and KMS key of a self-managed Pulumi state backend; print how to use them")
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config-file", default=None, help="a stack config file other than Pulumi.<stack>.yaml")
    parser.add_argument("--bucket", default=None, help="bucket name (default <app>-pulumi-state-<account>)")
    parser.add_argument("--account-id", default=None, help="the account (default secrets-platform:accountId)")
    parser.add_argument("--dry-run", action="store_true", help="read only: say what would be made or changed")
    parser.add_argument("--endpoint-url", default=None, help=argparse.SUPPRESS)


def clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    """S3 and KMS clients, bounded like every `ops` client (a hung endpoint ends the command)."""
    import os

    import boto3

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return (boto3.client("s3", region_name=region, endpoint_url=endpoint, config=client_config()),
            boto3.client("kms", region_name=region, endpoint_url=endpoint, config=client_config()))


def main(args: argparse.Namespace, stack: Stack, account_id: str | None, out: TextIO,
         make_clients: Callable[[str, str | None], tuple[Any, Any]] | None = None) -> int:
    backend = plan(stack, args.account_id or account_id, args.bucket)
    s3, kms = (make_clients or clients)(backend.region, args.endpoint_url)
    report, key_arn = bootstrap(backend, s3, kms, args.dry_run)
    render(stack, backend, report, key_arn, args.dry_run, out)
    return 0
