"""Mistakes in who-gets-access stop the preview with one line naming the file and the field (exit 2),
and a statement that would grant everything is refused before any policy is rendered."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from access_harness import ACCOUNT, APP, REPO, principals_config, stack_values

from components import iam
from preview.cli import main

FIELD = "secrets-platform:principals"


def _run(make_project: Callable[..., Path], principals: dict[str, Any]) -> tuple[int, str, str]:
    values = stack_values("staging")
    values[FIELD] = principals
    project = make_project((REPO / "catalog.yaml").read_text(), yaml.safe_dump({"config": values}), "staging")
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(project), "--no-policies"], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_the_tests_principals_are_accepted(make_project: Callable[..., Path]) -> None:
    code, _, err = _run(make_project, principals_config("staging"))
    assert code == 0, err


@pytest.mark.parametrize("value", [
    f"arn:aws:iam::{ACCOUNT}:user/{APP}-staging-app",     # a user, not a role
    "arn:aws:iam::12345:role/filot-staging-app",          # an 5-digit account
    f"arn:aws:iam:{ACCOUNT}:role/filot-staging-app",      # a missing colon
    "filot staging app",                                  # not a role name either
], ids=["user", "short-account", "missing-colon", "spaces"])
def test_malformed_principal_arn(make_project: Callable[..., Path], value: str) -> None:
    principals = principals_config("staging")
    principals["runtime"] = [value]
    code, _, err = _run(make_project, principals)
    line = _one_line(err)
    assert code == 2
    assert "Pulumi.staging.yaml" in line and f"'{FIELD}.runtime'" in line and value in line


def test_role_of_another_account(make_project: Callable[..., Path]) -> None:
    principals = principals_config("staging")
    principals["ci"] = ["arn:aws:iam::999999999999:role/filot-staging-deploy"]
    code, _, err = _run(make_project, principals)
    line = _one_line(err)
    assert code == 2
    assert "Pulumi.staging.yaml" in line and f"'{FIELD}.ci'" in line
    assert "999999999999" in line and ACCOUNT in line


def test_service_that_reads_no_secret(make_project: Callable[..., Path]) -> None:
    principals = principals_config("staging")
    principals["services"]["billing"] = [f"arn:aws:iam::{ACCOUNT}:role/{APP}-staging-billing"]
    code, _, err = _run(make_project, principals)
    line = _one_line(err)
    assert code == 2
    assert "Pulumi.staging.yaml" in line and f"'{FIELD}.services.billing'" in line and "consumers" in line


@pytest.mark.parametrize("statement", [
    iam.Statement(sid="Everything", effect="Allow", actions=("*",), resources=("arn:aws:secretsmanager:*",)),
    iam.Statement(sid="AllSecrets", effect="Allow", actions=("secretsmanager:*",), resources=("*",)),
    iam.Statement(sid="AllKms", effect="Allow", actions=("kms:Decrypt", "kms:*"), resources=("*",)),
    iam.Statement(sid="Anyone", effect="Allow", actions=("secretsmanager:GetSecretValue",), resources=("*",),
                  principals={"AWS": ("*",)}),
], ids=["star", "service-star", "one-of-several", "any-principal"])
def test_a_grant_of_everything_is_refused(statement: iam.Statement) -> None:
    with pytest.raises(iam.PolicyError) as raised:
        iam.document([statement], where="policy under test")
    message = str(raised.value)
    assert "policy under test" in message and statement.sid in message and "\n" not in message


SSO_ROLE = (f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/ap-southeast-2/"
            "AWSReservedSSO_Deploy_0123456789abcdef")
"""An IAM Identity Center role (https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html:
`role/aws-reserved/sso.amazonaws.com/<region>/AWSReservedSSO_<permission set>_<suffix>`)."""


@pytest.mark.parametrize("where", ["runtime", "ci", "services"])
@pytest.mark.parametrize("role", [
    SSO_ROLE,
    "AWSReservedSSO_Deploy_0123456789abcdef",  # by name: the lookup would find it under aws-reserved/
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/secretsmanager.amazonaws.com/AWSServiceRoleForSecretsManager",
], ids=["sso-arn", "sso-name", "service-linked"])
def test_a_role_iam_will_not_attach_a_policy_to_is_refused(
        make_project: Callable[..., Path], where: str, role: str) -> None:
    """IAM refuses AttachRolePolicy on a role only AWS may modify (botocore's iam model, AttachRolePolicy's
    UnmodifiableEntityException: "service-linked roles are protected AWS resources. Only the service that
    depends on the service-linked role can modify or delete the role"; IAM Identity Center's roles are
    changed only through their permission set: https://repost.aws/knowledge-center/identity-center-aws-reserved-sso).
    `pulumi up` would fail after creating the secrets; the preview refuses it first."""
    principals = principals_config("staging")
    if where == "services":
        consumer = sorted(principals["services"])[0]
        principals["services"][consumer] = [role]
        field = f"{FIELD}.services.{consumer}"
    else:
        principals[where] = [role]
        field = f"{FIELD}.{where}"
    code, _, err = _run(make_project, principals)
    line = _one_line(err)
    assert code == 2
    assert "Pulumi.staging.yaml" in line and f"'{field}'" in line and "UnmodifiableEntity" in line
    assert role.rsplit("/", 1)[-1] in line


def test_an_sso_role_may_deploy(make_project: Callable[..., Path]) -> None:
    """A deployer gets no policy attached (the key policy names it): an Identity Center role is fine there."""
    principals = principals_config("staging")
    principals["deployers"] = [SSO_ROLE]
    code, _, err = _run(make_project, principals)
    assert code == 0, err
