"""`python -m ops`: list, rotate, rollback and check-env against moto's server, never printing a value."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ops_harness import Moto, Result, Rotation, Terminal, enable_rotation

from ops.secrets import _next_rotation
from ops.stack import load_stack

REPO = Path(__file__).resolve().parents[2]
Run = Callable[..., Result]


def one_line(result: Result) -> str:
    assert result.code == 2, result.text
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


# ---------------------------------------------------------------- list


def test_list_reports_every_catalog_secret_with_its_stages_and_flags_missing_ones(moto: Moto, ops: Run) -> None:
    created = moto.seed("staging", versions=2, skip=("database-url",))
    result = ops("list", "--stack", "staging", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    by_name = {s["name"]: s for s in report["secrets"]}
    catalog = load_stack("staging").secrets
    assert [s["catalog"] for s in report["secrets"]] == list(catalog)
    missing = by_name["filot/staging/database-url"]
    assert missing["exists"] is False
    assert any("missing in AWS" in p for p in missing["problems"])
    assert report["summary"]["missing"] == 1
    for full, versions in created.items():
        entry = by_name[full]
        assert entry["exists"] is True
        assert entry["stages"] == {"AWSCURRENT": versions[1], "AWSPENDING": None, "AWSPREVIOUS": versions[0]}
        assert entry["last_changed"] is not None
    # A catalog secret that rotates but has no rotation in AWS yet is called out.
    assert any("rotation is off in AWS" in p for p in by_name["filot/staging/redis"]["problems"])

    text = ops("list", "--stack", "staging")
    assert text.code == 0
    row = next(line for line in text.out.splitlines() if line.startswith("filot/staging/database-url"))
    assert "MISSING" in row
    row = next(line for line in text.out.splitlines() if line.startswith("filot/staging/jwt-secret "))
    assert created["filot/staging/jwt-secret"][1][:8] in row and created["filot/staging/jwt-secret"][0][:8] in row


def test_list_explains_a_secret_waiting_for_its_first_rotation(moto: Moto, ops: Run) -> None:
    moto.seed("staging", skip=("service-internal-key",))
    moto.client("secretsmanager").create_secret(Name="filot/staging/service-internal-key")  # as `pulumi up` does
    result = ops("list", "--stack", "staging", "--format", "json")
    assert result.code == 0, result.err
    entry = next(s for s in json.loads(result.out)["secrets"] if s["catalog"] == "service-internal-key")
    assert entry["exists"] is True and entry["stages"]["AWSCURRENT"] is None
    assert any(p.startswith("no value yet: the first rotation makes it") for p in entry["problems"])


def test_list_flags_a_generated_server_credential_not_yet_installed(
    moto: Moto, ops: Run, rotation_function: Rotation,
) -> None:
    """redis (redis-acl, master redis-admin, generated password): until a rotation completes, AWSCURRENT is
    the program's first value, which no server knows."""
    moto.seed("staging", skip=("redis",))
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="filot/staging/redis")  # waits for redis-admin's value: no value yet

    def problems() -> list[str]:
        result = ops("list", "--stack", "staging", "--format", "json")
        assert result.code == 0, result.err
        entry = next(s for s in json.loads(result.out)["secrets"] if s["catalog"] == "redis")
        return [p for p in entry["problems"] if p.startswith("first install outstanding")]

    assert problems() == ["first install outstanding: waits for the value of redis-admin, which installs it"]
    sm.put_secret_value(SecretId="filot/staging/redis", SecretString=json.dumps({"password": moto.value()}))
    (outstanding,) = problems()
    assert "the first rotation, started by `pulumi up`, has not completed" in outstanding
    assert "redis-admin installs it" in outstanding
    assert "filot/staging/redis: first install outstanding" in ops("list", "--stack", "staging").out
    sm.rotate_secret(SecretId="filot/staging/redis", RotationLambdaARN=rotation_function.arn,
                     RotationRules={"AutomaticallyAfterDays": 90})
    assert problems() == []
    text = ops("list", "--stack", "staging")
    assert "filot/staging/redis: first install" not in text.out
    # Other catalog secrets (a token, a JWT key, external values) never need an install.
    result = ops("list", "--stack", "staging", "--format", "json")
    flagged = {s["catalog"] for s in json.loads(result.out)["secrets"]
               if any(p.startswith("first install") for p in s["problems"])}
    assert flagged == set()


def test_list_shows_rotation_state_and_the_next_rotation_date(
    moto: Moto, ops: Run, rotation_function: Rotation
) -> None:
    moto.seed("staging")
    enable_rotation(moto, rotation_function, "filot/staging/service-internal-key", 90)
    report = json.loads(ops("list", "--stack", "staging", "--format", "json").out)
    entry = next(s for s in report["secrets"] if s["catalog"] == "service-internal-key")
    assert entry["rotation_enabled"] is True
    assert entry["last_rotated"] is not None
    assert entry["next_rotation_source"] == "aws"
    next_date = dt.datetime.fromisoformat(entry["next_rotation"])
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)
    assert abs((next_date - expected).total_seconds()) < 3600
    assert entry["stages"]["AWSPREVIOUS"] is not None  # enabling rotation rotated it once
    assert not any("rotation" in p for p in entry["problems"])


def test_next_rotation_is_computed_from_the_rules_when_aws_gives_no_date() -> None:
    last = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    described = {"RotationEnabled": True, "RotationRules": {"AutomaticallyAfterDays": 30}, "LastRotatedDate": last}
    assert _next_rotation(described) == ("2026-02-09T12:00:00+00:00", "computed")
    assert _next_rotation({"RotationEnabled": False}) == (None, None)
    scheduled = {"RotationEnabled": True, "RotationRules": {"ScheduleExpression": "rate(10 days)"}}
    assert _next_rotation(scheduled) == ("per rate(10 days)", "computed")


def test_list_reports_a_secret_under_the_prefix_that_the_catalog_does_not_declare(moto: Moto, ops: Run) -> None:
    moto.seed("staging")
    moto.client("secretsmanager").create_secret(Name="filot/staging/legacy-token", SecretString=moto.value())
    report = json.loads(ops("list", "--stack", "staging", "--format", "json").out)
    legacy = next(s for s in report["secrets"] if s["name"] == "filot/staging/legacy-token")
    assert legacy["catalog"] is None and "not in the catalog" in legacy["problems"]
    assert report["summary"]["notInCatalog"] == 1


# ---------------------------------------------------------------- rotate


def test_rotate_runs_the_rotation_function_and_moves_the_stages(
    moto: Moto, ops: Run, rotation_function: Rotation
) -> None:
    moto.seed("staging")
    full = "filot/staging/service-internal-key"
    enable_rotation(moto, rotation_function, full, 90)
    before = moto.stages(full)
    value_before = moto.current_value(full)
    rotation_function.invocations.clear()

    result = ops("rotate", "service-internal-key", "--stack", "staging")

    assert result.code == 0, result.err
    steps = [step for step, secret in rotation_function.invocations if secret == full]
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    after = moto.stages(full)
    assert after["AWSCURRENT"] != before["AWSCURRENT"]
    assert after["AWSPREVIOUS"] == before["AWSCURRENT"]
    assert "AWSPENDING" not in after
    assert moto.current_value(full) != value_before
    assert after["AWSCURRENT"] in result.out


def test_rotate_refuses_a_secret_without_rotation(moto: Moto, ops: Run) -> None:
    moto.seed("staging")
    before = moto.stages("filot/staging/database-url")
    line = one_line(ops("rotate", "filot/staging/database-url", "--stack", "staging"))
    assert "filot/staging/database-url" in line and "no rotation configured" in line
    assert "on-compromise" in line
    assert moto.stages("filot/staging/database-url") == before


def test_list_says_a_published_public_key_changes_with_its_signing_key(moto: Moto, ops: Run) -> None:
    """relaybox's trial: the public-key secret was listed as rotated by hand ('manual'); the signing
    key's rotation writes it."""
    config = REPO / "examples" / "relaybox" / "Pulumi.staging.yaml"
    region = load_stack("staging", REPO, config).region
    full = "relaybox/staging/dashboard-jwt-key-public-key"
    moto.client("secretsmanager", region).create_secret(Name=full, SecretString=json.dumps({"alg": "RS256"}))
    result = ops("list", "--stack", "staging", "--config-file", str(config), "--format", "json")
    rows = {row["name"]: row for row in json.loads(result.out)["secrets"]}
    assert rows[full]["catalog_rotation"] == "with dashboard-jwt-key"
    assert rows["relaybox/staging/dashboard-jwt-key"]["catalog_rotation"] == "90d"


def test_rotate_refusal_gives_the_replace_command_of_a_generated_value(moto: Moto, ops: Run, tmp_path: Path) -> None:
    """A generated key beside a supplied one in a secret rotated only on compromise (filot's buli2) is made by
    pulumi-random: the hint names the random resource's URN, which must be the URN the preview, shaped as the
    engine's, gives that resource."""
    from preview.cli import preview

    moto.seed("staging")
    line = one_line(ops("rotate", "buli2", "--stack", "staging"))
    assert "no rotation configured" in line
    urns = re.findall(r"--replace '([^']+)'", line)
    assert len(urns) == 1 and f"pulumi up --stack staging --replace '{urns[0]}'" in line
    # With its supplied apiKey set (a secure stand-in), the program writes buli2 and generates signatureSecret.
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text((REPO / "Pulumi.staging.yaml").read_text().replace(
        "config:\n", "config:\n  secrets-platform:buli2ApiKey:\n    secure: v1:" + "A" * 44 + "\n", 1))
    resources = preview("staging", REPO, config, policies=False).run.resources
    behind = [r for r in resources if r.urn == urns[0]]
    assert len(behind) == 1 and behind[0].type == "random:index/randomBytes:RandomBytes"


def test_rotate_refusal_of_a_value_made_once_names_no_random_resource(moto: Moto, ops: Run) -> None:
    """relaybox's api-key-signing-key (generated, on-compromise) is made once inside AWS by the first-value
    function: there is no random resource to replace, and the hint says so instead of naming one."""
    config = REPO / "examples" / "relaybox" / "Pulumi.staging.yaml"
    full = "relaybox/staging/api-key-signing-key"
    region = load_stack("staging", REPO, config).region
    moto.client("secretsmanager", region).create_secret(Name=full, SecretString=moto.value())
    line = one_line(ops("rotate", "api-key-signing-key", "--stack", "staging", "--config-file", str(config)))
    assert "no rotation configured" in line and "first-value function" in line
    assert "--replace" not in line and "pulumi config set" not in line
    assert "python -m ops rotate --leaked api-key-signing-key --stack staging" in line


def test_rotate_refuses_a_catalog_rotation_that_is_not_deployed(moto: Moto, ops: Run) -> None:
    moto.seed("staging")
    line = one_line(ops("rotate", "redis", "--stack", "staging"))
    assert "filot/staging/redis" in line and "pulumi up" in line


def test_rotate_a_secret_missing_in_aws(moto: Moto, ops: Run) -> None:
    moto.seed("staging", skip=("session-secret",))
    line = one_line(ops("rotate", "session-secret", "--stack", "staging"))
    assert "filot/staging/session-secret does not exist" in line


# ---------------------------------------------------------------- rollback


def test_rollback_moves_awscurrent_back_to_the_previous_version(moto: Moto, ops: Run) -> None:
    created = moto.seed("staging", versions=2)
    full = "filot/staging/session-secret"
    first, second = created[full]
    old_value = moto.client("secretsmanager").get_secret_value(
        SecretId=full, VersionId=first, VersionStage="AWSPREVIOUS")["SecretString"]

    result = ops("rollback", "session-secret", "--stack", "staging")

    assert result.code == 0, result.err
    assert moto.stages(full) == {"AWSCURRENT": first, "AWSPREVIOUS": second}
    assert moto.current_value(full) == old_value
    assert first in result.out and second in result.out


def test_rollback_refuses_without_a_previous_version(moto: Moto, ops: Run) -> None:
    moto.seed("staging", versions=1)
    full = "filot/staging/jwt-secret"
    before = moto.stages(full)
    line = one_line(ops("rollback", "jwt-secret", "--stack", "staging"))
    assert full in line and "no AWSPREVIOUS version" in line
    assert moto.stages(full) == before


def test_production_rollback_without_yes_and_without_a_terminal_is_refused(moto: Moto, ops: Run) -> None:
    created = moto.seed("production", versions=2)
    full = "filot/production/session-secret"
    result = ops("rollback", "session-secret", "--stack", "production")
    assert result.code == 2
    assert "needs --yes" in result.err and full in result.err
    assert moto.stages(full)["AWSCURRENT"] == created[full][1]


def test_production_rollback_with_a_wrong_typed_name_is_refused(moto: Moto, ops: Run) -> None:
    created = moto.seed("production", versions=2)
    full = "filot/production/session-secret"
    result = ops("rollback", "session-secret", "--stack", "production", stdin=Terminal("filot/production/redis\n"))
    assert result.code == 2 and "did not match" in result.err
    assert moto.stages(full)["AWSCURRENT"] == created[full][1]


def test_production_rollback_with_the_typed_name_goes_ahead(moto: Moto, ops: Run) -> None:
    created = moto.seed("production", versions=2)
    full = "filot/production/session-secret"
    result = ops("rollback", "session-secret", "--stack", "production", stdin=Terminal(f"{full}\n"))
    assert result.code == 0, result.err
    assert "Type the secret name" in result.err
    assert moto.stages(full)["AWSCURRENT"] == created[full][0]


def test_production_rollback_with_yes_goes_ahead(moto: Moto, ops: Run) -> None:
    created = moto.seed("production", versions=2)
    full = "filot/production/session-secret"
    result = ops("rollback", full, "--stack", "production", "--yes")
    assert result.code == 0, result.err
    assert moto.stages(full)["AWSCURRENT"] == created[full][0]


def test_a_rotated_server_credential_is_not_rolled_back_without_force(moto: Moto, ops: Run) -> None:
    # redis-acl keeps the previous password only while the server still accepts it: here no server answers the
    # seeded host, so the previous password is not seen to log in and nothing changes without --force.
    created = moto.seed("production", versions=2)
    full = "filot/production/redis"
    line = one_line(ops("rollback", full, "--stack", "production", "--yes"))
    assert "the previous redis-acl password does not log in" in line and "--force" in line
    assert moto.stages(full)["AWSCURRENT"] == created[full][1], "nothing changed"
    forced = ops("rollback", full, "--stack", "production", "--yes", "--force")
    assert forced.code == 0, forced.err
    assert moto.stages(full)["AWSCURRENT"] == created[full][0]
    assert "forced" in forced.out


def test_a_value_the_application_renews_is_not_rolled_back_without_force(
    moto: Moto, ops: Run, make_project: Callable[..., Path],
) -> None:
    from tests.conftest import RENEWED_SECRET

    project = make_project(
        "app: shop\nowner: platform\nsecrets:\n" + RENEWED_SECRET,
        "config:\n  aws:region: ap-southeast-2\n  secrets-platform:accountId: \"210987654321\"\n",
    )
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="shop/staging/refresh-token", SecretString=moto.value())
    sm.put_secret_value(SecretId="shop/staging/refresh-token", SecretString=moto.value())  # the app renewed it
    before = sm.describe_secret(SecretId="shop/staging/refresh-token")["VersionIdsToStages"]
    argv = ("rollback", "refresh-token", "--stack", "staging", "--project-dir", str(project))
    line = one_line(ops(*argv))
    assert "renewed by the application itself" in line and "--force" in line
    assert sm.describe_secret(SecretId="shop/staging/refresh-token")["VersionIdsToStages"] == before
    assert ops(*argv, "--force").code == 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["rotate", "rollback"])
def test_unknown_secret(moto: Moto, ops: Run, command: str) -> None:
    moto.seed("staging")
    line = one_line(ops(command, "no-such-secret", "--stack", "staging"))
    assert "unknown secret 'no-such-secret'" in line and "stack 'staging'" in line


@pytest.mark.parametrize("argv", [["list"], ["check-env"], ["rollback", "redis", "--yes"]])
def test_unknown_stack(moto: Moto, ops: Run, argv: list[str]) -> None:
    line = one_line(ops(*argv, "--stack", "qa"))
    assert "stack 'qa' is not defined" in line and "production, staging" in line


def test_an_aws_error_is_one_line(moto: Moto, ops: Run) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    line = one_line(ops("list", "--stack", "staging", "--endpoint-url", closed))
    assert "filot/staging/jwt-secret" in line


def test_the_module_entry_point_in_a_subprocess(moto: Moto) -> None:
    moto.seed("staging", versions=2)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.url}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
        moto.outputs.extend([done.stdout, done.stderr])
        return done

    listed = run("list", "--stack", "staging", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["secrets"]) == len(load_stack("staging").secrets)
    refused = run("rollback", "session-secret", "--stack", "production")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") <= 2 and "Traceback" not in refused.stderr
    assert "secret filot/production/session-secret does not exist" in refused.stderr


# ---------------------------------------------------------------- check-env


def full_environment(moto: Moto, stack: str = "staging") -> dict[str, str]:
    """A value for every variable of the stack's catalog, generated now."""
    return {var: moto.value(24) for entry in load_stack(stack).secrets.values()
            for value in entry.values.values() for var in value.env}


def write_env(path: Path, environ: dict[str, str]) -> Path:
    path.write_text("# local\n" + "".join(f'export {k}="{v}"\n' for k, v in environ.items()))
    return path


def test_check_env_ok(moto: Moto, ops: Run, tmp_path: Path) -> None:
    environ = full_environment(moto)
    result = ops("check-env", "--stack", "staging", "--env-file", str(write_env(tmp_path / ".env", environ)))
    assert result.code == 0, result.out
    assert result.out.count("\nOK ") + result.out.startswith("OK ") == len(environ)
    assert f"{len(environ)} ok, 0 missing, 0 placeholder" in result.out


def test_check_env_reports_missing_and_placeholder_values_without_printing_them(
    moto: Moto, ops: Run, tmp_path: Path
) -> None:
    environ = full_environment(moto)
    del environ["DATABASE_URL"]
    environ["STACK_SECRET_SERVER_KEY"] = "YOUR_STACK_SECRET_KEY_HERE"
    environ["CF_R2_SECRET_ACCESS_KEY"] = "<r2-secret-access-key>"
    environ["SESSION_SECRET"] = "dev-" + moto.value(16)
    moto.planted.update(("YOUR_STACK_SECRET_KEY_HERE", "<r2-secret-access-key>"))
    path = write_env(tmp_path / ".env.production", environ)

    result = ops("check-env", "--stack", "staging", "--env-file", str(path))

    assert result.code == 1
    lines = {line.split()[1]: line for line in result.out.splitlines() if line[:1].isupper() and "  from " in line}
    assert lines["DATABASE_URL"].startswith("MISSING")
    assert lines["STACK_SECRET_SERVER_KEY"].startswith("PLACEHOLDER") and "YOUR_..._HERE" in lines[
        "STACK_SECRET_SERVER_KEY"]
    assert lines["CF_R2_SECRET_ACCESS_KEY"].startswith("PLACEHOLDER")
    assert lines["SESSION_SECRET"].startswith("PLACEHOLDER") and "development value" in lines["SESSION_SECRET"]
    assert lines["REDIS_PORT"].startswith("OK")

    report = json.loads(ops("check-env", "--stack", "staging", "--env-file", str(path), "--format", "json").out)
    statuses = {v["variable"]: v["status"] for v in report["variables"]}
    assert statuses["DATABASE_URL"] == "MISSING" and report["ok"] is False


def test_check_env_reads_the_process_environment(moto: Moto, ops: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = full_environment(moto)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert ops("check-env", "--stack", "staging").code == 0
    monkeypatch.setenv("REDIS_URL", "")
    result = ops("check-env", "--stack", "staging")
    assert result.code == 1
    assert any(line.startswith("MISSING") and "REDIS_URL" in line for line in result.out.splitlines())


def test_check_env_an_optional_value_does_not_fail(moto: Moto, ops: Run, make_project: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    project = make_project(
        """\
        app: shop
        owner: platform
        secrets:
          partner:
            description: Partner API
            class: critical
            rotation: on-compromise
            rotation_reason: issued by the partner
            keys:
              apiKey: {env: PARTNER_KEY, external: {}}
              backupKey: {env: PARTNER_BACKUP_KEY, external: {}, required: false}
        """,
        "config:\n  aws:region: eu-west-1\n  secrets-platform:accountId: \"210987654321\"\n",
    )
    path = write_env(tmp_path / "partner.env", {"PARTNER_KEY": moto.value(24)})
    result = ops("check-env", "--stack", "staging", "--project-dir", str(project), "--env-file", str(path))
    assert result.code == 0, result.out
    assert any(line.startswith("OPTIONAL") and "PARTNER_BACKUP_KEY" in line for line in result.out.splitlines())


def test_check_env_a_bad_env_file_names_the_line_not_its_content(moto: Moto, ops: Run, tmp_path: Path) -> None:
    secret_line = moto.value(16)
    path = tmp_path / ".env"
    path.write_text(f"JWT_SECRET={moto.value()}\n{secret_line}\n")
    line = one_line(ops("check-env", "--stack", "staging", "--env-file", str(path)))
    assert f"{path}, line 2" in line
    line = one_line(ops("check-env", "--stack", "staging", "--env-file", str(tmp_path / "absent.env")))
    assert "absent.env" in line


# ---------------------------------------------------------------- compare


def test_compare_reports_a_value_shared_by_production_and_staging(moto: Moto, ops: Run) -> None:
    moto.seed("production")
    moto.seed("staging")
    sm = moto.client("secretsmanager")
    shared = sm.get_secret_value(SecretId="filot/staging/session-secret", VersionStage="AWSCURRENT")["SecretString"]
    sm.put_secret_value(SecretId="filot/production/session-secret", SecretString=shared,
                        VersionStages=["AWSCURRENT"])
    result = ops("compare", "--stack", "production", "--other", "staging")
    assert result.code == 1, result.err
    same = [line for line in result.out.splitlines() if line.strip().startswith("SAME")]
    assert [line.split()[-1] for line in same] == ["session-secret"]
    assert "different" in result.out


def test_compare_passes_when_every_value_differs(moto: Moto, ops: Run) -> None:
    moto.seed("production")
    moto.seed("staging")
    result = ops("compare", "--stack", "production", "--other", "staging")
    assert result.code == 0, result.err
    assert "SAME" not in result.out


def test_compare_refuses_the_same_environment(moto: Moto, ops: Run) -> None:
    line = one_line(ops("compare", "--stack", "staging", "--other", "staging"))
    assert "same environment" in line


def test_check_env_takes_a_short_key_id_but_not_a_short_signing_key(moto: Moto, ops: Run, tmp_path: Path) -> None:
    """relaybox's trial: a 2-character JWT key ID the rotation writes was called a placeholder. A key
    ID is public; the private key keeps the critical floor."""
    config = str(REPO / "examples" / "relaybox" / "Pulumi.staging.yaml")
    stack = load_stack("staging", REPO, Path(config))
    environ = {var: moto.value(24) for entry in stack.secrets.values()
               for value in entry.values.values() for var in value.env}
    environ["DASHBOARD_JWT_KEY_ID"] = "k1"
    path = write_env(tmp_path / ".env", environ)
    result = ops("check-env", "--stack", "staging", "--config-file", config, "--env-file", str(path))
    assert result.code == 0, result.out
    environ["DASHBOARD_JWT_PRIVATE_KEY"] = moto.value(4)
    path = write_env(tmp_path / ".env", environ)
    result = ops("check-env", "--stack", "staging", "--config-file", config, "--env-file", str(path))
    assert result.code == 1
    line = next(x for x in result.out.splitlines() if x.split()[1:2] == ["DASHBOARD_JWT_PRIVATE_KEY"])
    assert line.startswith("PLACEHOLDER") and "critical value needs at least 16" in line


# ---------------------------------------------------------------- rollback restarts consumers


def _ecs_consumer(moto: Moto, tmp_path: Path, service: str = "api") -> tuple[Path, Callable[[], str]]:
    """A stack file whose `api` consumer is an ECS service that reads its secrets at task start, the service
    made in moto (in a cluster of this test's own: moto's server outlives a test), and a reader of its PRIMARY
    deployment's id (a forced deployment makes a new one)."""
    ecs = moto.client("ecs")
    cluster = f"shop-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="api", containerDefinitions=[{"name": "api", "image": "api", "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="api", desiredCount=1)
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text((REPO / "Pulumi.staging.yaml").read_text()
                      + f"  secrets-platform:consumption:\n    api: {{kind: ecs, cluster: {cluster}, service: api}}\n")

    def primary() -> str:
        answer = ecs.describe_services(cluster=cluster, services=["api"])
        return next(d["id"] for d in answer["services"][0]["deployments"] if d["status"] == "PRIMARY")

    return config, primary


def test_a_rollback_restarts_the_ecs_consumers_that_read_the_secret_at_start(moto: Moto, ops: Run,
                                                                             tmp_path: Path) -> None:
    """UpdateSecretVersionStage sends no RotationSucceeded event, so the restart function never hears of a
    rollback: the command restarts the service itself, or it would keep the value rolled back from."""
    moto.seed("staging", versions=2)
    config, primary = _ecs_consumer(moto, tmp_path)
    before = primary()
    result = ops("rollback", "session-secret", "--stack", "staging", "--config-file", str(config))
    assert result.code == 0, result.err
    assert re.search(r"ECS service shop-[0-9a-f]{8}/api: restarted", result.out), result.out
    assert primary() != before


def test_a_rollback_with_no_restart_leaves_the_consumers_alone(moto: Moto, ops: Run, tmp_path: Path) -> None:
    moto.seed("staging", versions=2)
    config, primary = _ecs_consumer(moto, tmp_path)
    before = primary()
    result = ops("rollback", "session-secret", "--stack", "staging", "--config-file", str(config), "--no-restart")
    assert result.code == 0, result.err
    assert primary() == before and "restarted" not in result.out


def test_a_consumer_that_cannot_be_restarted_is_named_with_the_command_and_exits_1(moto: Moto, ops: Run,
                                                                                    tmp_path: Path) -> None:
    """The rollback itself is done (AWSCURRENT moved); the service that is not there is reported, not hidden."""
    created = moto.seed("staging", versions=2)
    config, _ = _ecs_consumer(moto, tmp_path, service="elsewhere")
    result = ops("rollback", "session-secret", "--stack", "staging", "--config-file", str(config))
    assert result.code == 1
    first, _second = created["filot/staging/session-secret"]
    assert moto.stages("filot/staging/session-secret")["AWSCURRENT"] == first
    (line,) = [ln for ln in result.err.splitlines() if "not restarted" in ln]
    cluster = re.search(r"ECS service (shop-[0-9a-f]{8})/api not restarted", line)
    assert cluster is not None, line
    assert f"aws ecs update-service --cluster {cluster.group(1)} --service api --force-new-deployment" in line


@pytest.mark.parametrize(("consumption", "field"), [
    ("[api]", "secrets-platform:consumption"),
    ("{api: {kind: ecs, cluster: 'arn:aws:ecs:us-east-1:999999999999:cluster/other', service: api}}",
     "secrets-platform:consumption.api.cluster"),
    ("{stranger: {kind: runtime, cacheTtlSeconds: 1}}", "secrets-platform:consumption.stranger"),
])
def test_a_malformed_consumption_stops_before_any_restart_in_one_line(moto: Moto, ops: Run, tmp_path: Path,
                                                                      consumption: str, field: str) -> None:
    """Another account's cluster, a consumer the catalog does not name, a list: refused as the program refuses
    them, before the rollback changes anything."""
    created = moto.seed("staging", versions=2)
    config = tmp_path / "Pulumi.staging.yaml"
    config.write_text((REPO / "Pulumi.staging.yaml").read_text() + f"  secrets-platform:consumption: {consumption}\n")
    result = ops("rollback", "session-secret", "--stack", "staging", "--config-file", str(config))
    assert result.code == 2
    line = one_line(result)
    assert field in line and "Traceback" not in result.err
    assert moto.stages("filot/staging/session-secret")["AWSCURRENT"] == created["filot/staging/session-secret"][1]
