"""`python -m ops` on bad input and failing AWS calls: one line and exit 2, never a traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from ops_harness import Moto, Result
from test_ops_commands import one_line

from ops import compare
from ops.stack import OpsError, load_stack

REPO = Path(__file__).resolve().parents[2]
Run = Callable[..., Result]


def project_with(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "catalog.yaml", tmp_path / "catalog.yaml")
    text = (REPO / "Pulumi.staging.yaml").read_text()
    assert old in text
    (tmp_path / "Pulumi.staging.yaml").write_text(text.replace(old, new))
    return tmp_path


def test_an_invalid_region(moto: Moto, ops: Run, tmp_path: Path) -> None:
    project = project_with(tmp_path, "aws:region: ap-southeast-2", "aws:region: zz-nowhere-9")
    line = one_line(ops("list", "--stack", "staging", "--project-dir", str(project)))
    assert "Pulumi.staging.yaml" in line and "'aws:region'" in line and "zz-nowhere-9" in line


@pytest.mark.parametrize("path", ["/etc/passwd", "../../etc/passwd", "/dev/zero"])
def test_a_catalog_outside_the_project(moto: Moto, ops: Run, tmp_path: Path, path: str) -> None:
    project = project_with(tmp_path, "config:\n", f"config:\n  secrets-platform:catalog: '{path}'\n")
    line = one_line(ops("list", "--stack", "staging", "--project-dir", str(project)))
    assert "secrets-platform:catalog" in line


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "ftp//x"])
def test_a_malformed_endpoint_url(moto: Moto, ops: Run, url: str) -> None:
    line = one_line(ops("list", "--stack", "staging", "--endpoint-url", url))
    assert "Secrets Manager client" in line


def test_compare_without_credentials(moto: Moto, ops: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    moto.seed("staging")
    moto.seed("production")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials an earlier test found
    line = one_line(ops("compare", "--stack", "production", "--other", "staging"))
    assert "credentials" in line.lower()


def test_compare_when_describe_is_denied(moto: Moto) -> None:
    production, staging = load_stack("production"), load_stack("staging")
    mine = boto3.client("secretsmanager", region_name=production.region, endpoint_url=moto.url)
    theirs = boto3.client("secretsmanager", region_name=staging.region, endpoint_url=moto.url)
    with Stubber(mine) as stub:
        # What AWS answers a caller without secretsmanager:DescribeSecret.
        stub.add_client_error("describe_secret", service_error_code="AccessDeniedException",
                              service_message="User is not authorized to perform: secretsmanager:DescribeSecret",
                              http_status_code=400)
        with pytest.raises(OpsError) as caught:
            compare.compare(production, staging, mine, theirs)
    assert "AccessDeniedException" in str(caught.value) and "\n" not in str(caught.value)


def test_check_env_a_file_that_is_not_utf8(moto: Moto, ops: Run, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"SESSION_SECRET=\xff\xfe\n")
    line = one_line(ops("check-env", "--stack", "staging", "--env-file", str(path)))
    assert "not UTF-8" in line and str(path) in line


def test_check_env_of_an_example_through_its_config_file(moto: Moto, ops: Run, tmp_path: Path) -> None:
    """relaybox's trial: without --config-file, ops read the repository's own stack (filot) and reported
    all of filot's variables missing from relaybox's .env."""
    import secrets as random_source

    from preview.cli import preview

    config = Path("examples/relaybox/Pulumi.staging.yaml")
    variables = preview("staging", REPO, REPO / config, policies=False).run.outputs["envVars"]
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{v}={random_source.token_urlsafe(32)}\n" for v in variables))
    result = ops("check-env", "--stack", "staging", "--config-file", str(REPO / config), "--env-file", str(env_file))
    assert result.code == 0, result.out
    assert "relaybox/staging" in result.out and "filot" not in result.out
    missing = ops("check-env", "--stack", "staging", "--config-file", str(REPO / "examples/nowhere.yaml"),
                  "--env-file", str(env_file))
    assert "nowhere.yaml" in one_line(missing)
