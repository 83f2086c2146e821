"""`python -m ops bootstrap-state`: the S3 bucket and KMS key of a self-managed Pulumi backend, against moto's
S3 and KMS on loopback. What Pulumi does with them is cited in `ops/state_backend.py` (pulumi/pulumi
`pkg/backend/diy/backend.go`: up, refresh, destroy and import take a lock object, preview does not;
`pkg/secrets/cloud/manager.go`: the data key is wrapped with KMS Encrypt once and unwrapped with Decrypt)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ops_harness import Moto, Result

from ops.state_backend import check_bucket_name

BUCKET = "filot-pulumi-state-123456789012"
ALIAS = "alias/filot/production/pulumi-state"


def _bucket(moto: Moto) -> dict[str, Any]:
    s3 = moto.client("s3")
    return {
        "versioning": s3.get_bucket_versioning(Bucket=BUCKET).get("Status"),
        "encryption": s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0],
        "public": s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"],
        "policy": json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]),
    }


@pytest.fixture
def clean(moto: Moto) -> Moto:
    s3, kms = moto.client("s3"), moto.client("kms")
    if BUCKET in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        for v in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
            s3.delete_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=BUCKET)
    for alias in kms.list_aliases()["Aliases"]:
        if alias["AliasName"].startswith("alias/filot/"):
            kms.delete_alias(AliasName=alias["AliasName"])
    return moto


def test_a_first_run_makes_a_versioned_bucket_encrypted_under_a_rotating_key(
        clean: Moto, ops: Callable[..., Result]) -> None:
    result = ops("bootstrap-state", "--stack", "production")
    assert result.code == 0, result.err
    key = clean.client("kms").describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert clean.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    found = _bucket(clean)
    assert found["versioning"] == "Enabled"
    assert found["encryption"]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert found["public"] == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                               "RestrictPublicBuckets": True}
    [statement] = found["policy"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert f"pulumi login 's3://{BUCKET}?region=ap-southeast-2&awssdk=v2'" in result.out
    assert f"--secrets-provider 'awskms://{ALIAS}?region=ap-southeast-2&awssdk=v2'" in result.out


def test_a_second_run_changes_nothing(clean: Moto, ops: Callable[..., Result]) -> None:
    assert ops("bootstrap-state", "--stack", "production").code == 0
    before = _bucket(clean)
    again = ops("bootstrap-state", "--stack", "production")
    assert again.code == 0 and ": 0 changed" in again.out.splitlines()[0]
    assert "  done" not in again.out
    assert _bucket(clean) == before


def test_a_dry_run_reads_only(clean: Moto, ops: Callable[..., Result]) -> None:
    result = ops("bootstrap-state", "--stack", "production", "--dry-run")
    assert result.code == 0 and "would" in result.out
    assert BUCKET not in {b["Name"] for b in clean.client("s3").list_buckets().get("Buckets", [])}
    assert ALIAS not in {a["AliasName"] for a in clean.client("kms").list_aliases()["Aliases"]}


def test_a_key_scheduled_for_deletion_stops_with_the_command_that_cancels_it(
        clean: Moto, ops: Callable[..., Result]) -> None:
    kms = clean.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    result = ops("bootstrap-state", "--stack", "production")
    assert result.code == 2 and len(result.err.splitlines()) == 1 and "Traceback" not in result.err
    assert f"aws kms cancel-key-deletion --key-id {key['KeyId']}" in result.err
    assert BUCKET not in {b["Name"] for b in clean.client("s3").list_buckets().get("Buckets", [])}


def test_a_bucket_policy_someone_wrote_is_kept(clean: Moto, ops: Callable[..., Result]) -> None:
    s3 = clean.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    theirs = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{BUCKET}"}]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(theirs))
    result = ops("bootstrap-state", "--stack", "production")
    assert result.code == 0 and "differs" in result.out
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == theirs


@pytest.mark.parametrize("name", [
    "Filot-State", "ab", "a" * 64, "192.168.1.10", "xn--state", "state..bucket", "state-.bucket", "-state",
    "state-s3alias", "state--ol-s3", "sthree-state", "state\nbucket", "state_bucket", "état",
])
def test_a_bucket_name_s3_refuses_is_one_line(clean: Moto, ops: Callable[..., Result], name: str) -> None:
    assert check_bucket_name(name) is not None
    result = ops("bootstrap-state", "--stack", "production", f"--bucket={name}")
    assert result.code == 2 and result.err.startswith("error: --bucket:") and len(result.err.splitlines()) == 1
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", ["filot-state", "abc", "a" * 63, "state.bucket.1", "1-state"])
def test_names_s3_accepts(name: str) -> None:
    assert check_bucket_name(name) is None


def test_another_accounts_bucket_of_that_name_is_refused(clean: Moto, ops: Callable[..., Result],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Bucket names are global: HeadBucket with ExpectedBucketOwner answers 403 for another account's bucket
    (S3 API reference, HeadBucket). moto does not check the owner, so the answer is AWS's, stubbed."""
    from botocore.stub import Stubber

    import ops.state_backend as state_backend

    real = state_backend.clients

    def stubbed(region: str, endpoint: str | None) -> tuple[Any, Any]:
        s3, kms = real(region, endpoint)
        stub = Stubber(s3)
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        stub.activate()
        return s3, kms

    monkeypatch.setattr(state_backend, "clients", stubbed)
    result = ops("bootstrap-state", "--stack", "production")
    assert result.code == 2 and "not in account 123456789012" in result.err and "--bucket" in result.err


def test_the_role_policies_give_preview_reads_and_deploy_writes_only_on_the_state() -> None:
    import gc
    import warnings

    with warnings.catch_warnings():
        # parliament opens its data files without closing them (ResourceWarning at import).
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

        gc.collect()

    from ops.state_backend import StateBackend, role_policies

    backend = StateBackend(bucket=BUCKET, key_alias=ALIAS, region="ap-southeast-2", account_id="123456789012",
                           app="filot", environment="production")
    key = "arn:aws:kms:ap-southeast-2:123456789012:key/00000000-0000-0000-0000-000000000000"
    policies = {role: json.loads(text) for role, text in role_policies(backend, key).items()}

    def actions(document: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for s in document["Statement"]:
            found.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        return found

    assert actions(policies["preview"]) == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}
    assert actions(policies["deploy"]) - actions(policies["preview"]) == {
        "s3:PutObject", "s3:DeleteObject", "kms:GenerateDataKey"}
    for document in policies.values():
        for s in document["Statement"]:
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            assert all(r in (f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/.pulumi/*", key) for r in resources), s
        findings = analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
        assert [f.issue for f in findings] == []
