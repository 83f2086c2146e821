"""Due dates of secrets rotated by hand: `rotation: manual` + `rotate_every_days`.

Against moto, with the versions' creation dates moved into the past through moto's own backend
(the server runs in this process), so the ages are exact and nothing depends on timing: the date
comes from the AWSCURRENT version's CreatedDate (ListSecretVersionIds), never from a tag.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ops_harness import Moto, Result

from ops import due

Run = Callable[..., Result]
REGION = "ap-southeast-2"
ACCOUNT = "123456789012"  # moto's default account

CATALOG = """\
app: shop
owner: platform
secrets:
  partner-key:
    description: Partner API key, rotated by hand in the partner console
    class: critical
    rotation: manual
    rotate_every_days: 180
    rotation_reason: the partner console issues keys by hand
    value: {env: PARTNER_KEY, external: {}}
  cloud-access-key:
    description: Access key of the reporting cloud account
    class: critical
    rotation: manual
    rotate_every_days: 90
    rotation_reason: issued by the cloud account owner
    value: {env: CLOUD_ACCESS_KEY, external: {}}
  legacy-token:
    description: Rotated only when it leaks
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the legacy vendor on request
    value: {env: LEGACY_TOKEN, external: {}}
"""
STACK = f'config:\n  aws:region: {REGION}\n  secrets-platform:accountId: "210987654321"\n'


@pytest.fixture(autouse=True)
def versions_keep_their_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5's ListSecretVersionIds reports every version as created now; AWS reports each version's
    creation date ("CreatedDate: The date and time this version of the secret was created", API reference).
    Give moto AWS's behaviour: the date it stored when the version was put (what GetSecretValue returns)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.list_secret_version_ids

    def listed(self: SecretsManagerBackend, secret_id: str) -> str:
        result = json.loads(original(self, secret_id))
        versions = self.secrets[secret_id].versions
        for version in result["Versions"]:
            version["CreatedDate"] = versions[version["VersionId"]]["createdate"]
        return json.dumps(result)

    monkeypatch.setattr(SecretsManagerBackend, "list_secret_version_ids", listed)


def test_moto_without_the_fix_reports_every_version_as_new(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the fixture exists (so that it can be dropped once moto keeps the dates)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    monkeypatch.undo()
    assert "listed" not in SecretsManagerBackend.list_secret_version_ids.__qualname__
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, {"AWS_ENDPOINT_URL": moto.url}.get(name, "testing"))
    version = _create(moto, "shop/staging/partner-key", 200)
    listed = moto.client("secretsmanager", REGION).list_secret_version_ids(SecretId="shop/staging/partner-key")
    created = next(v["CreatedDate"] for v in listed["Versions"] if v["VersionId"] == version)
    assert dt.datetime.now(dt.UTC) - created < dt.timedelta(days=1)


def backdate(name: str, version: str, days: float) -> None:
    """Make `version` of `name` look created `days` ago (moto's backend; CreatedDate is epoch seconds there)."""
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[ACCOUNT][REGION].secrets[name]
    secret.versions[version]["createdate"] = int(time.time() - days * 86400)


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(CATALOG, STACK)


def _create(moto: Moto, name: str, age_days: float) -> str:
    sm = moto.client("secretsmanager", REGION)
    version = str(sm.create_secret(Name=name, SecretString=moto.value())["VersionId"])
    backdate(name, version, age_days)
    return version


def _due(ops: Run, project: Path, *extra: str) -> Result:
    return ops("due", "--stack", "staging", "--project-dir", str(project), *extra)


def test_an_overdue_secret_exits_1_and_the_others_are_listed(moto: Moto, ops: Run, project: Path) -> None:
    _create(moto, "shop/staging/partner-key", 200)
    _create(moto, "shop/staging/cloud-access-key", 10)
    _create(moto, "shop/staging/legacy-token", 900)  # no period: never due
    result = _due(ops, project)
    assert result.code == 1, result.text
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("shop/")}
    assert set(lines) == {"shop/staging/partner-key", "shop/staging/cloud-access-key"}
    assert "OVERDUE (20 days ago)" in lines["shop/staging/partner-key"]
    assert "OK (in 79 days)" in lines["shop/staging/cloud-access-key"]
    assert "1 overdue" in result.out


def test_nothing_overdue_exits_0_and_due_soon_is_reported(moto: Moto, ops: Run, project: Path) -> None:
    _create(moto, "shop/staging/partner-key", 170.5)
    _create(moto, "shop/staging/cloud-access-key", 0)
    result = _due(ops, project)
    assert result.code == 0, result.text
    assert "DUE (in 9 days)" in result.out
    assert _due(ops, project, "--warn-days", "5").out.count("OK (") == 2


def test_the_date_is_the_current_versions_not_the_secrets(moto: Moto, ops: Run, project: Path) -> None:
    """A new value (pulumi up after `pulumi config set --secret`) is a new version: the period restarts."""
    sm = moto.client("secretsmanager", REGION)
    _create(moto, "shop/staging/partner-key", 400)
    _create(moto, "shop/staging/cloud-access-key", 1)
    new = sm.put_secret_value(SecretId="shop/staging/partner-key", SecretString=moto.value())["VersionId"]
    backdate("shop/staging/partner-key", new, 30)
    result = _due(ops, project, "--format", "json")
    assert result.code == 0, result.text
    report = {s["name"]: s for s in json.loads(result.out)["secrets"]}
    partner = report["shop/staging/partner-key"]
    assert partner["status"] == "ok" and partner["days_left"] == 149
    changed = dt.datetime.fromisoformat(partner["changed"])
    assert abs((dt.datetime.now(dt.UTC) - changed) - dt.timedelta(days=30)) < dt.timedelta(minutes=5)
    # A rollback to the old version brings its old date back: the value in use is that old again.
    sm.update_secret_version_stage(SecretId="shop/staging/partner-key", VersionStage="AWSCURRENT",
                                   MoveToVersionId=next(v["VersionId"] for v in sm.list_secret_version_ids(
                                       SecretId="shop/staging/partner-key")["Versions"] if v["VersionId"] != new),
                                   RemoveFromVersionId=new)
    assert _due(ops, project).code == 1


def test_list_shows_due_and_overdue_in_its_table_and_attention(moto: Moto, ops: Run, project: Path) -> None:
    _create(moto, "shop/staging/partner-key", 181)
    _create(moto, "shop/staging/cloud-access-key", 85)
    result = ops("list", "--stack", "staging", "--project-dir", str(project))
    assert result.code == 0, result.text
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("shop/")}
    assert "manual/180d OVERDUE" in rows["shop/staging/partner-key"]
    assert "manual/90d DUE" in rows["shop/staging/cloud-access-key"]
    assert "rotation by hand overdue: every 180 days" in result.out
    assert "rotation by hand due: every 90 days" in result.out
    listed = json.loads(ops("list", "--stack", "staging", "--project-dir", str(project), "--format", "json").out)
    by_name = {s["name"]: s for s in listed["secrets"]}
    assert by_name["shop/staging/partner-key"]["due"]["status"] == "overdue"
    assert by_name["shop/staging/legacy-token"]["due"] is None


def test_a_missing_secret_is_unknown_not_overdue(moto: Moto, ops: Run, project: Path) -> None:
    _create(moto, "shop/staging/cloud-access-key", 1)
    result = _due(ops, project)
    assert result.code == 0, result.text
    assert "UNKNOWN (missing in AWS)" in result.out


def test_a_negative_warning_window_is_refused(moto: Moto, ops: Run, project: Path) -> None:
    result = _due(ops, project, "--warn-days", "-1")
    assert result.code == 2 and result.err.strip() == "error: --warn-days must be 0 or more (got -1)"


def test_an_aws_error_is_one_line(moto: Moto, ops: Run, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(moto, "shop/staging/partner-key", 1)
    _create(moto, "shop/staging/cloud-access-key", 1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    result = _due(ops, project)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert result.err.startswith("error: secret shop/staging/partner-key:")


@pytest.mark.parametrize(("age", "status", "left"), [
    (0.0, "ok", 180), (165.5, "ok", 14), (166.5, "due", 13), (179.9, "due", 0), (180.5, "overdue", 0),
    (181.5, "overdue", -1), (1000.0, "overdue", -820),
])
def test_assess_boundaries(age: float, status: str, left: int) -> None:
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    item = due.assess("x", 180, now - dt.timedelta(days=age), now)
    assert (item.status, item.days_left) == (status, left)


def test_list_knows_the_published_public_key_secret(moto: Moto, ops: Run, make_project: Callable[..., Path]) -> None:
    """`<name>-public-key` is derived from the catalog (components/public_key.py), not an unknown secret."""
    project = make_project("""\
        app: shop
        owner: platform
        secrets:
          signing-key:
            description: Signs access tokens (RS256)
            class: critical
            rotation: {strategy: jwt-rs256, every_days: 180, first_value: rotation}
            public_key: {verifiers: [gateway]}
            keys:
              kid: {rotation: {}}
              private_key_pem: {rotation: {}}
        """, STACK)
    sm = moto.client("secretsmanager", REGION)
    sm.create_secret(Name="shop/staging/signing-key")
    sm.create_secret(Name="shop/staging/signing-key-public-key")
    result = ops("list", "--stack", "staging", "--project-dir", str(project), "--format", "json")
    listed = {s["name"]: s for s in json.loads(result.out)["secrets"]}
    assert listed["shop/staging/signing-key-public-key"]["catalog"] == "signing-key-public-key"
    assert "not in the catalog" not in result.out


PUT_CATALOG = """\
app: shop
owner: platform
secrets:
  smtp:
    description: SMTP relay login, put by the mail team
    class: critical
    rotation: manual
    rotate_every_days: 90
    rotation_reason: issued by the mail provider console
    keys:
      user: {env: SMTP_USER, external: {put: ops}}
      password: {env: SMTP_PASSWORD, external: {put: ops}, min_length: 20}
  webhook:
    description: Webhook signing secret from the payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    value: {env: WEBHOOK_SECRET, external: {put: ops}, pattern: '^whsec_'}
"""


def test_a_value_put_by_ops_that_was_never_put_is_not_put_yet_with_the_command(
        moto: Moto, ops: Run, make_project: Callable[..., Path]) -> None:
    """As the program leaves them: created empty. Not 'unknown' or 'overdue': not put yet, with the command."""
    project = make_project(PUT_CATALOG, STACK)
    sm = moto.client("secretsmanager", REGION)
    for name in ("shop/staging/smtp", "shop/staging/webhook"):
        sm.create_secret(Name=name)
    result = _due(ops, project)
    assert result.code == 1, result.text
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("shop/")}
    assert set(lines) == {"shop/staging/smtp", "shop/staging/webhook"}
    assert "NOT-PUT (not put yet: run python -m ops put --stack staging smtp user; python -m ops put --stack " \
           "staging smtp password)" in lines["shop/staging/smtp"]
    assert "not put yet: run python -m ops put --stack staging webhook)" in lines["shop/staging/webhook"]
    assert "OVERDUE" not in result.out and "UNKNOWN" not in result.out and "pulumi" not in result.out
    document = json.loads(_due(ops, project, "--format", "json").out)
    assert document["notPut"] == 2 and document["overdue"] == 0


def test_once_put_its_period_runs_from_the_put_and_overdue_says_ops_put(
        moto: Moto, ops: Run, make_project: Callable[..., Path]) -> None:
    project = make_project(PUT_CATALOG, STACK)
    sm = moto.client("secretsmanager", REGION)
    put = json.dumps({"user": moto.value(8), "password": moto.value(24)})
    version = str(sm.create_secret(Name="shop/staging/smtp", SecretString=put)["VersionId"])
    sm.create_secret(Name="shop/staging/webhook", SecretString="whsec_" + moto.value(16))
    backdate("shop/staging/smtp", version, 10)
    result = _due(ops, project)
    assert result.code == 0, result.text
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("shop/")}
    # The on-compromise value, once put, has no period: not listed.
    assert set(lines) == {"shop/staging/smtp"} and "OK (in 79 days)" in lines["shop/staging/smtp"]
    backdate("shop/staging/smtp", version, 100)
    result = _due(ops, project)
    assert result.code == 1 and "OVERDUE (10 days ago)" in result.out
    assert "put the new value with `python -m ops put`" in result.out and "pulumi config set" not in result.out


def test_check_env_names_the_put_command_and_applies_the_puts_checks(make_project: Callable[..., Path],
                                                                    tmp_path: Path, ops: Run) -> None:
    project = make_project(PUT_CATALOG, STACK)
    env = tmp_path / "app.env"
    env.write_text("SMTP_USER=relay-user-0001\nWEBHOOK_SECRET=sk_" + "a1b2" * 8 + "\n")
    result = ops("check-env", "--stack", "staging", "--project-dir", str(project), "--env-file", str(env))
    assert result.code == 1, result.text
    lines = {line.split()[1]: line for line in result.out.splitlines() if line[:1].isupper() and " from " in line}
    assert lines["SMTP_PASSWORD"].startswith("MISSING") and \
        "python -m ops put --stack staging smtp password" in lines["SMTP_PASSWORD"]
    # The pattern `ops put` would refuse it with (quoting the pattern, never the value).
    assert lines["WEBHOOK_SECRET"].startswith("PLACEHOLDER") and "'^whsec_'" in lines["WEBHOOK_SECRET"]
    assert "a1b2a1b2" not in result.out
