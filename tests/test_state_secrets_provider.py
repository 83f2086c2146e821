"""The offline preview says what encrypts the secrets in a stack's state, and warns when production's state
hangs on a passphrase. Pulumi records the provider in the stack file: `secretsprovider:` (with `encryptedkey:`,
the data key wrapped by KMS) after `pulumi stack init --secrets-provider` or `change-secrets-provider`, and
`encryptionsalt:` for the passphrase provider (pulumi/pulumi `pkg/secrets/cloud/manager.go`,
`pkg/secrets/passphrase/manager.go`)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from preview.cli import main
from preview.stackconfig import secrets_provider

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("document", "expected"), [
    ({}, "default"),
    ({"encryptionsalt": "v1:AbCd:v1:EfGh:IjKl"}, "passphrase"),
    ({"secretsprovider": "passphrase", "encryptionsalt": "v1:x"}, "passphrase"),
    ({"secretsprovider": "awskms://alias/filot/production/pulumi-state?region=ap-southeast-2",
      "encryptedkey": "AQICAHh"}, "awskms://alias/filot/production/pulumi-state?region=ap-southeast-2"),
    ({"secretsprovider": "  "}, "default"),
    ({"secretsprovider": 7}, "default"),
])
def test_the_provider_is_read_from_the_stack_file(document: dict[str, object], expected: str) -> None:
    assert secrets_provider(document) == expected


def _project(tmp_path: Path, stack: str, header: str) -> Path:
    for name in ("Pulumi.yaml", "catalog.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(header + (REPO / f"Pulumi.{stack}.yaml").read_text())
    return tmp_path


def _run(project: Path, stack: str, fmt: str = "text") -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([stack, "--project-dir", str(project), "--format", fmt, "--no-policies"], out=out, err=err)
    return code, out.getvalue()


def test_production_on_a_passphrase_is_warned_about(tmp_path: Path) -> None:
    project = _project(tmp_path, "production", "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n")
    code, text = _run(project, "production")
    assert code == 0
    assert "State secrets: a passphrase" in text
    assert "encrypts the secrets in its state with a passphrase" in text
    assert "python -m ops bootstrap-state --stack production" in text


def test_production_under_the_organisations_key_is_not(tmp_path: Path) -> None:
    url = "awskms://alias/filot/production/pulumi-state?region=ap-southeast-2&awssdk=v2"
    project = _project(tmp_path, "production", f"secretsprovider: {url}\nencryptedkey: AQICAHhWrapped\n")
    code, text = _run(project, "production", "json")
    document = json.loads(text)
    assert code == 0 and document["secretsProvider"] == url
    assert not any("passphrase" in w for w in document["warnings"])


def test_staging_on_a_passphrase_is_listed_without_a_warning(tmp_path: Path) -> None:
    project = _project(tmp_path, "staging", "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n")
    code, text = _run(project, "staging", "json")
    document = json.loads(text)
    assert code == 0 and document["secretsProvider"] == "passphrase"
    assert not any("passphrase" in w for w in document["warnings"])
