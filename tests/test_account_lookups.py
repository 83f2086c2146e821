"""What the account holds before the first resource: names scheduled for deletion, their keys, regions.

AWS behaviours emulated here (docs/aws-contract.md, "Secrets Manager: deletion, recovery, regions,
RotateSecret"):
- CreateSecret refuses a name scheduled for deletion ("You can't create this secret because a secret
  with this name is already scheduled for deletion"), and the provider retries that for two minutes
  before failing the update (hashicorp/terraform-provider-aws `internal/service/secretsmanager/secret.go`,
  resourceSecretCreate; `consts.go` PropagationTimeout = 2 * time.Minute).
- ListSecrets leaves planned deletions out unless IncludePlannedDeletion is true, pages at most 100
  entries, and its `name` filter is a case-sensitive prefix match (botocore's secretsmanager model).
- `pulumi destroy` schedules the environment's KMS key for deletion too: DescribeKey says
  KeyState PendingDeletion (KMS API reference, ScheduleKeyDeletion).
- An opt-in region the account has not enabled is `not-opted-in` in DescribeRegions (the EC2 API;
  pulumi-aws `get_regions` calls it: terraform-provider-aws `internal/service/meta/regions_data_source.go`).
The real lookups run against moto's server on 127.0.0.1; the program's path runs under the mock runtime
with the mocks answering as such an account would.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from components import account
from components.account import AwsAccountLookup, ListedSecret, check_scheduled_deletions
from components.errors import ConfigurationError
from components.settings import StackSettings
from preview.mocks import AwsMocks
from preview.runtime import run_program
from preview.stackconfig import load_stack_config
from tests.conftest import REPO, current_build
from tests.servers import LOOPBACK, REGION, MotoServer, moto_server

CATALOG = """\
app: shop
owner: platform
secrets:
  session-secret:
    description: Signs sessions
    class: critical
    rotation: on-compromise
    rotation_reason: only replaced when leaked
    value:
      env: SESSION_SECRET
      generate: {kind: bytes, bytes: 32, encoding: hex}
  feature-flags:
    description: Flag service key
    class: configuration
    rotation: manual
    value:
      env: FLAGS_KEY
      generate: {kind: bytes, bytes: 16, encoding: hex}
"""
STACK = """\
config:
  aws:region: eu-west-1
  secrets-platform:accountId: "210987654321"
  secrets-platform:recoveryWindowDays: 7
"""
KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def settings(stack: str = "staging", region: str = REGION) -> StackSettings:
    return StackSettings(stack=stack, environment=stack, account_id="123456789012", region=region)


def lookup(server: MotoServer) -> AwsAccountLookup:
    return AwsAccountLookup(REGION, access_key="testing", secret_key="testing", endpoint_url=server.endpoint_url)


def app_name() -> str:
    return "app" + uuid.uuid4().hex[:8]


def destroyed(server: MotoServer, app: str, names: list[str], deleted: list[str], env: str = "staging") -> str:
    """What `pulumi destroy` leaves: the secrets deleted with a recovery window, the key pending deletion."""
    kms, sm = server.client("kms"), server.client("secretsmanager")
    key = kms.create_key(Description=f"{app} {env}")["KeyMetadata"]["KeyId"]
    for name in names:
        sm.create_secret(Name=f"{app}/{env}/{name}", SecretString=uuid.uuid4().hex, KmsKeyId=key)
    for name in deleted:
        sm.delete_secret(SecretId=f"{app}/{env}/{name}", RecoveryWindowInDays=7)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=30)
    return str(key)


# ------------------------------------------------------------------ the real lookup, against moto


def test_a_destroyed_stack_is_found_with_its_key_pending_deletion(moto: MotoServer) -> None:
    app = app_name()
    key = destroyed(moto, app, ["session-secret", "feature-flags"], ["session-secret"])
    destroyed(moto, app, ["session-secret"], ["session-secret"], env="stagingx")  # a longer prefix: not ours
    found = lookup(moto)
    listed = found.secrets_under(f"{app}/staging/")
    assert sorted(s.name for s in listed) == [f"{app}/staging/feature-flags", f"{app}/staging/session-secret"]
    by_name = {s.name: s for s in listed}
    assert by_name[f"{app}/staging/session-secret"].deleted and not by_name[f"{app}/staging/feature-flags"].deleted
    assert found.key_state(key) == "PendingDeletion"
    # Without IncludePlannedDeletion (what aws.secretsmanager.get_secrets sends) the deleted one is invisible.
    plain = moto.client("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": [f"{app}/staging/"]}])
    assert [s["Name"] for s in plain["SecretList"]] == [f"{app}/staging/feature-flags"]

    with pytest.raises(ConfigurationError) as caught:
        check_scheduled_deletions(settings(), app, [f"{app}/staging/session-secret", f"{app}/staging/feature-flags"],
                                  found)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("Pulumi.staging.yaml: 1 secret name(s)")
    assert f"aws secretsmanager restore-secret --region {REGION} --secret-id {app}/staging/session-secret" in message
    assert f"aws kms cancel-key-deletion --region {REGION} --key-id {key}" in message
    assert f"aws kms enable-key --region {REGION} --key-id {key}" in message
    assert "python -m ops draft --stack staging" in message and "--force-delete-without-recovery" in message
    assert "stagingx" not in message and "feature-flags" not in message
    # One ListSecrets page, one DescribeKey: no call per secret.
    assert found.calls == {"ListSecrets": 2, "DescribeKey": 2}  # two listings and two key lookups above


def test_after_a_restore_and_a_cancelled_key_deletion_nothing_stops(moto: MotoServer) -> None:
    app = app_name()
    key = destroyed(moto, app, ["session-secret"], ["session-secret"])
    found = lookup(moto)
    names = [f"{app}/staging/session-secret"]
    with pytest.raises(ConfigurationError):
        check_scheduled_deletions(settings(), app, names, found)
    moto.client("secretsmanager").restore_secret(SecretId=names[0])
    moto.client("kms").cancel_key_deletion(KeyId=key)
    check_scheduled_deletions(settings(), app, names, found)


def test_a_scheduled_name_the_stack_no_longer_creates_does_not_stop_it(moto: MotoServer) -> None:
    app = app_name()
    destroyed(moto, app, ["retired"], ["retired"])
    check_scheduled_deletions(settings(), app, [f"{app}/staging/session-secret"], lookup(moto))


def test_450_secrets_cost_five_pages(moto: MotoServer) -> None:
    app = app_name()
    sm = moto.client("secretsmanager")
    for i in range(450):
        sm.create_secret(Name=f"{app}/staging/s{i:04d}", SecretString="-")
    sm.delete_secret(SecretId=f"{app}/staging/s0449", RecoveryWindowInDays=7)
    found = lookup(moto)
    names = [f"{app}/staging/s{i:04d}" for i in range(450)]
    with pytest.raises(ConfigurationError) as caught:
        check_scheduled_deletions(settings(), app, names, found)
    assert f"{app}/staging/s0449" in str(caught.value)
    # 100 per page (1,000 secrets: 10 calls); no KmsKeyId (the AWS managed key): no DescribeKey at all.
    assert found.calls == {"ListSecrets": 5}


def test_the_page_cap_stops_with_one_line(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_name()
    sm = moto.client("secretsmanager")
    for i in range(201):
        sm.create_secret(Name=f"{app}/staging/s{i:03d}", SecretString="-")
    monkeypatch.setattr(account, "MAX_PAGES", 2)
    found = lookup(moto)
    with pytest.raises(ConfigurationError) as caught:
        check_scheduled_deletions(settings(), app, [f"{app}/staging/s000"], found)
    assert "more than 200 secrets" in str(caught.value) and "\n" not in str(caught.value)
    assert "ListSecrets" not in str(caught.value)  # not a permission problem
    assert found.calls == {"ListSecrets": 2}


def test_an_unreachable_endpoint_fails_soon_with_one_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    found = AwsAccountLookup(REGION, access_key="testing", secret_key="testing",
                             endpoint_url=f"http://{LOOPBACK}:{port}")
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        check_scheduled_deletions(settings(), "shop", ["shop/staging/a"], found)
    assert time.monotonic() - started < 30  # three attempts with short timeouts, not botocore's defaults
    assert "secretsmanager:ListSecrets" in str(caught.value) and "\n" not in str(caught.value)
    assert found.calls["ListSecrets"] == account.MAX_ATTEMPTS


def test_the_lookup_uses_the_stacks_profile_and_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    credentials = tmp_path / "credentials"
    key_id = f"deploy-profile-{uuid.uuid4().hex[:8]}"  # made here: only which profile signs matters
    credentials.write_text(f"[deploy]\naws_access_key_id = {key_id}\naws_secret_access_key = x\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    pulumi.runtime.set_all_config({"aws:profile": "deploy", "aws:region": "eu-central-1"})
    try:
        found = account.stack_lookup(settings(region="eu-central-1"))
    finally:
        pulumi.runtime.set_all_config({})
    assert isinstance(found, AwsAccountLookup)
    client: Any = found._sm  # what the client would sign with
    assert client.meta.region_name == "eu-central-1"
    assert client._request_signer._credentials.access_key == key_id
    assert client.meta.config.connect_timeout == account.CONNECT_TIMEOUT
    assert client.meta.config.read_timeout == account.READ_TIMEOUT
    assert client.meta.config.retries["total_max_attempts"] == account.MAX_ATTEMPTS


def test_the_lookup_assumes_the_stacks_roles_in_turn(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider acts as the last role of `aws:assumeRoles`; the lookups must ask that identity's account."""
    import json

    import pulumi

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIABASECREDENTIALS0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    roles = [{"roleArn": "arn:aws:iam::123456789012:role/hop", "sessionName": "first"},
             {"roleArn": "arn:aws:iam::123456789012:role/deploy", "externalId": "ext-1"}]
    pulumi.runtime.set_all_config({"aws:assumeRoles": json.dumps(roles)})
    try:
        found = account.stack_lookup(settings())
    finally:
        pulumi.runtime.set_all_config({})
    assert isinstance(found, AwsAccountLookup)
    client: Any = found._sm
    key = client._request_signer._credentials.access_key
    assert key != "AKIABASECREDENTIALS0" and client._request_signer._credentials.token
    assert found.secrets_under("nothing-here/") == []
    for malformed in ("not json", "[{}]", '[{"roleArn": 3}]', "7"):
        pulumi.runtime.set_all_config({"aws:assumeRoles": malformed})
        try:
            with pytest.raises(ConfigurationError) as caught:
                account.stack_lookup(settings())
        finally:
            pulumi.runtime.set_all_config({})
        assert caught.value.field == "aws:assumeRoles"


def test_an_unknown_profile_is_one_line_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    pulumi.runtime.set_all_config({"aws:profile": "no-such-profile\x1b[31m"})
    try:
        with pytest.raises(ConfigurationError) as caught:
            account.stack_lookup(settings())
    finally:
        pulumi.runtime.set_all_config({})
    assert caught.value.field == "aws:profile" and "\x1b" not in str(caught.value)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------ the program's path (mock runtime)


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(CATALOG, STACK)


def run(project: Path, mocks: AwsMocks, *, preview: bool, extra: dict[str, str] | None = None) -> Any:
    current_build(project)  # its generated values are made once by the first-value function (the rotation package)
    stack = load_stack_config(project, "staging")
    stack.values.update(extra or {})
    return run_program(stack, project, str(REPO / "__main__.py"), preview=preview, mocks=mocks)


def test_pulumi_up_stops_before_anything_when_a_name_is_scheduled_for_deletion(project: Path) -> None:
    mocks = AwsMocks("eu-west-1", "210987654321")
    mocks.listed = (ListedSecret("shop/staging/feature-flags", deleted="2026-12-01T10:00:00+00:00", kms_key_id=KEY),
                    ListedSecret("shop/staging/session-secret"))
    mocks.key_states = {KEY: "PendingDeletion"}
    for preview in (False, True):  # a real preview stops too: the plan could not be applied
        with pytest.raises(ConfigurationError) as caught:
            run(project, mocks, preview=preview)
        assert caught.value.registered == 0
        message = str(caught.value)
        assert "shop/staging/feature-flags (deleted 2026-12-01)" in message
        assert "restore-secret --region eu-west-1 --secret-id shop/staging/feature-flags" in message
        assert f"cancel-key-deletion --region eu-west-1 --key-id {KEY}" in message
        assert "session-secret" not in message


def test_another_environments_or_apps_scheduled_names_do_not_stop_the_stack(project: Path) -> None:
    mocks = AwsMocks("eu-west-1", "210987654321")
    mocks.listed = (ListedSecret("shop/production/feature-flags", deleted="2026-12-01T10:00:00+00:00"),
                    ListedSecret("shopx/staging/feature-flags", deleted="2026-12-01T10:00:00+00:00"),
                    ListedSecret("shop/staging/old-name", deleted="2026-12-01T10:00:00+00:00"))
    assert run(project, mocks, preview=False).resources


def test_an_adopted_secret_is_not_created_so_its_name_is_not_checked() -> None:
    found = AwsMocks("eu-west-1", "210987654321")
    found.listed = (ListedSecret("shop/staging/a", deleted="2026-12-01T10:00:00+00:00"),)
    check_scheduled_deletions(settings(), "shop", ["shop/staging/b"], found)
    with pytest.raises(ConfigurationError):
        check_scheduled_deletions(settings(), "shop", ["shop/staging/a"], found)


OPT_IN = STACK + "  secrets-platform:replicaRegions: [ap-southeast-3]\n"


def test_pulumi_up_stops_on_a_region_the_account_has_not_enabled(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, OPT_IN)
    mocks = AwsMocks("eu-west-1", "210987654321")
    mocks.not_opted_in = ("ap-east-1", "ap-southeast-3", "me-south-1")
    with pytest.raises(ConfigurationError) as caught:
        run(project, mocks, preview=False)
    assert caught.value.registered == 0
    assert caught.value.field == "secrets-platform:replicaRegions"
    assert "aws account enable-region --region-name ap-southeast-3" in str(caught.value)
    # The stack's own region, not enabled: the field is aws:region.
    project = make_project(CATALOG, STACK.replace("eu-west-1", "ap-southeast-3"))
    with pytest.raises(ConfigurationError) as caught:
        run(project, _with_disabled("ap-southeast-3"), preview=False)
    assert caught.value.field == "aws:region" and caught.value.registered == 0


def _with_disabled(region: str) -> AwsMocks:
    mocks = AwsMocks(region, "210987654321")
    mocks.not_opted_in = (region,)
    return mocks


def test_a_preview_only_warns_about_a_region_not_enabled(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, OPT_IN)
    mocks = AwsMocks("eu-west-1", "210987654321")
    mocks.not_opted_in = ("ap-southeast-3",)
    result = run(project, mocks, preview=True)
    assert any("ap-southeast-3 is an opt-in region that account 210987654321 has not enabled" in w
               for w in result.warnings)


def test_an_enabled_opt_in_region_deploys(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, OPT_IN)
    result = run(project, AwsMocks("eu-west-1", "210987654321"), preview=False)
    assert any(r.type == "aws:secretsmanager/secret:Secret" for r in result.resources)


def test_a_failed_region_lookup_names_the_permission(make_project: Callable[..., Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = AwsMocks.call

    def denied(self: AwsMocks, args: Any) -> Any:
        if args.token == "aws:index/getRegions:getRegions":
            raise Exception("invoke of aws:index/getRegions:getRegions failed: reading Regions: operation error "
                            "EC2: DescribeRegions, https response error StatusCode: 403, UnauthorizedOperation")
        return real(self, args)

    monkeypatch.setattr(AwsMocks, "call", denied)
    with pytest.raises(ConfigurationError) as caught:
        run(make_project(CATALOG, OPT_IN), AwsMocks("eu-west-1", "210987654321"), preview=False)
    assert "ec2:DescribeRegions" in str(caught.value) and "UnauthorizedOperation" in str(caught.value)
    assert caught.value.registered == 0


def test_a_stack_in_default_regions_asks_nothing_about_regions(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens: list[str] = []
    real = AwsMocks.call

    def record(self: AwsMocks, args: Any) -> Any:
        tokens.append(args.token)
        return real(self, args)

    monkeypatch.setattr(AwsMocks, "call", record)
    run(project, AwsMocks("eu-west-1", "210987654321"), preview=False)
    assert "aws:index/getRegions:getRegions" not in tokens


# ------------------------------------------------------------------ a throwaway stack: no recovery window


def test_a_throwaway_stack_may_delete_without_recovery(make_project: Callable[..., Path]) -> None:
    """0 reaches the provider, which sends it as ForceDeleteWithoutRecovery (terraform-provider-aws
    secret.go, resourceSecretDelete): the names are free for the next `pulumi up` at once."""
    project = make_project(CATALOG, STACK.replace("recoveryWindowDays: 7", "recoveryWindowDays: 0"))
    result = run(project, AwsMocks("eu-west-1", "210987654321"), preview=True)
    windows = {r.name: r.inputs.get("recoveryWindowInDays") for r in result.resources
               if r.type == "aws:secretsmanager/secret:Secret"}
    assert windows and set(windows.values()) == {0}


@pytest.mark.parametrize("days", ["1", "6", "31", "-1", "99999999999999999999999"])
def test_a_window_between_0_and_7_or_above_30_is_refused(make_project: Callable[..., Path], days: str) -> None:
    project = make_project(CATALOG, STACK.replace("recoveryWindowDays: 7", f"recoveryWindowDays: {days}"))
    with pytest.raises(ConfigurationError) as caught:
        run(project, AwsMocks("eu-west-1", "210987654321"), preview=True)
    assert caught.value.field == "secrets-platform:recoveryWindowDays"
    assert "outside the allowed range 7-30 (or 0" in str(caught.value)
