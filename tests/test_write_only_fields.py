"""What pulumi-aws 7.51.1 does with `SecretVersion.secret_string_wo`, as the program would register it: the facts
docs/state.md ("Write-only values") relies on to keep `secret_string` for supplied values.

- The SDK sends the write-only value to the engine as an input, marked secret: the engine keeps it in the
  state's inputs, encrypted, as it keeps `secret_string` today (pulumi/pulumi-terraform-bridge#3201, open).
  Only the outputs lose it.
- `secret_string_wo_version` is a plain number in the inputs (and the outputs): whatever the program derives it
  from is stored readable, without the stack's key.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pulumi.runtime.rpc as rpc
import pulumi_aws as aws

from preview.model import CollectedResource, plain
from preview.runtime import run_program
from preview.stackconfig import load_stack_config
from tests.conftest import MINIMAL_STACK, REPO

VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PROGRAM = """\
import pulumi
import pulumi_aws as aws

config = pulumi.Config()
secret = aws.secretsmanager.Secret("s", name="shop/staging/api-token")
aws.secretsmanager.SecretVersion(
    "v", secret_id=secret.id, secret_string_wo=config.require_secret("apiToken"), secret_string_wo_version=7)
"""


def _registered(tmp_path: Path) -> CollectedResource:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.staging.yaml").write_text(MINIMAL_STACK + "  secrets-platform:apiToken:\n    secure: v1:"
                                                  + "A" * 44 + "\n")
    (tmp_path / "wo.py").write_text(PROGRAM)
    stack = load_stack_config(tmp_path, "staging")
    run = run_program(stack, tmp_path, "wo.py")
    return next(r for r in run.resources if r.type == VERSION)


def test_the_sdk_has_the_write_only_value_and_its_number() -> None:
    parameters = inspect.signature(aws.secretsmanager.SecretVersion._internal_init).parameters
    assert {"secret_string_wo", "secret_string_wo_version"} <= set(parameters)
    assert "write-only" in (aws.secretsmanager.SecretVersionArgs.secret_string_wo.__doc__ or "")


def test_the_write_only_value_is_an_input_the_engine_stores_encrypted(tmp_path: Path) -> None:
    version = _registered(tmp_path)
    value = version.inputs["secretStringWo"]
    # The wire form of a secret: the engine encrypts it in the state's inputs with the stack's secrets provider.
    assert isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig, version.urn
    assert isinstance(plain(value), str) and plain(value), version.urn
    assert "secretStringWo" in version.additional_secret_outputs
    assert "secretString" not in version.inputs


def test_the_version_number_is_stored_in_plain_text(tmp_path: Path) -> None:
    version = _registered(tmp_path)
    # A number on the wire (JSON: a float64), not a secret's signature object: readable in the state.
    assert version.inputs["secretStringWoVersion"] == 7, version.urn
    assert "secretStringWoVersion" not in version.additional_secret_outputs
