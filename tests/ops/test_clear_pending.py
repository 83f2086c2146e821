"""`python -m ops clear-pending`: remove a stale AWSPENDING that blocks RotateSecret, against moto's server.

AWS's rule (botocore's secretsmanager model, RotateSecret: "If the AWSPENDING staging label is present but
not attached to the same version as the AWSCURRENT version, then any later invocation of RotateSecret
assumes that a previous rotation request is still in progress and returns an error"), and the provider
sends RotateSecret when it creates a SecretRotation and on every update of its function or rules
(hashicorp/terraform-provider-aws `internal/service/secretsmanager/secret_rotation.go`,
resourceSecretRotationCreate and resourceSecretRotationUpdate), so one failed rotation blocks every later
`pulumi up` that touches that rotation. moto does not refuse in that state (it refuses only while
AWSPENDING sits on the current version, /work/shared/OFFLINE.md), so `ops rotate`'s own preflight, which
applies AWS's rule, is what the tests observe.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ops_harness import Moto, Result, Rotation, Terminal, enable_rotation

Run = Callable[..., Result]
STAGING = "filot/staging/service-internal-key"
PRODUCTION = "filot/production/service-internal-key"


def one_line(result: Result) -> str:
    assert result.code == 2, result.text
    assert result.out == ""
    lines = [line for line in result.err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def stale_pending(moto: Moto, full: str, region: str = "ap-southeast-2") -> str:
    """A rotation that failed after createSecret: AWSPENDING on a new version, AWSCURRENT where it was."""
    put = moto.client("secretsmanager", region).put_secret_value(
        SecretId=full, SecretString=moto.value(), VersionStages=["AWSPENDING"])
    return str(put["VersionId"])


def test_a_stale_pending_is_named_by_list_and_rotate_and_cleared(
        moto: Moto, ops: Run, rotation_function: Rotation) -> None:
    moto.seed("staging")
    enable_rotation(moto, rotation_function, STAGING, 90)
    current = moto.stages(STAGING)["AWSCURRENT"]
    pending = stale_pending(moto, STAGING)

    listed = ops("list", "--stack", "staging")
    assert "`python -m ops clear-pending service-internal-key --stack staging`" in listed.out
    refused = one_line(ops("rotate", "service-internal-key", "--stack", "staging"))
    assert "`python -m ops clear-pending service-internal-key --stack staging`" in refused

    result = ops("clear-pending", "service-internal-key", "--stack", "staging")
    assert result.code == 0, result.err
    assert f"Will remove AWSPENDING from version {pending} of {STAGING}" in result.err
    assert "left without a label" in result.err
    assert f"cleared AWSPENDING from version {pending}" in result.out
    assert moto.stages(STAGING) == {"AWSCURRENT": current, "AWSPREVIOUS": moto.stages(STAGING)["AWSPREVIOUS"]}
    assert "clear-pending" not in ops("list", "--stack", "staging").out

    # RotateSecret goes through again.
    rotated = ops("rotate", "service-internal-key", "--stack", "staging")
    assert rotated.code == 0, rotated.err
    assert moto.stages(STAGING)["AWSCURRENT"] != current


def test_without_a_pending_version_it_refuses(moto: Moto, ops: Run) -> None:
    moto.seed("staging")
    before = moto.stages(STAGING)
    line = one_line(ops("clear-pending", "service-internal-key", "--stack", "staging"))
    assert STAGING in line and "no AWSPENDING version" in line
    assert moto.stages(STAGING) == before


def test_pending_on_the_current_version_is_left_alone(moto: Moto, ops: Run) -> None:
    moto.seed("staging")
    sm = moto.client("secretsmanager")
    current = moto.stages(STAGING)["AWSCURRENT"]
    # Where a finished rotation may leave it (RotateSecret's documentation): RotateSecret is not blocked.
    sm.update_secret_version_stage(SecretId=STAGING, VersionStage="AWSPENDING", MoveToVersionId=current)
    line = one_line(ops("clear-pending", "service-internal-key", "--stack", "staging"))
    assert "on the current version" in line and "refusing" in line
    assert moto.stages(STAGING) == {"AWSCURRENT": current, "AWSPENDING": current}


@pytest.mark.parametrize("given", [
    "filot/production/service-internal-key",   # another environment's, from the staging stack
    "shop/staging/service-internal-key",       # another application's
    "filot/staging/not-in-the-catalog",
])
def test_a_secret_of_another_app_or_environment_is_refused(moto: Moto, ops: Run, given: str) -> None:
    moto.seed("staging")
    moto.seed("production")
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="shop/staging/service-internal-key", SecretString=moto.value())
    targets = [PRODUCTION, "shop/staging/service-internal-key"]
    for full in targets:
        stale_pending(moto, full)
    before = {full: moto.stages(full) for full in targets}
    line = one_line(ops("clear-pending", given, "--stack", "staging"))
    assert "unknown secret" in line
    assert {full: moto.stages(full) for full in targets} == before


@pytest.mark.parametrize("given", ["x" * 100_000, "redis\n--stack production", "\x1b[31mredis", "../redis"])
def test_a_hostile_secret_argument_is_one_line(moto: Moto, ops: Run, given: str) -> None:
    line = one_line(ops("clear-pending", given, "--stack", "staging"))
    assert len(line) < 300 and "\x1b" not in line


def test_production_needs_a_confirmation(moto: Moto, ops: Run) -> None:
    moto.seed("production")
    pending = stale_pending(moto, PRODUCTION)

    refused = ops("clear-pending", "service-internal-key", "--stack", "production")
    assert refused.code == 2 and "needs --yes" in refused.err
    assert f"Will remove AWSPENDING from version {pending}" in refused.err  # shown before asking
    assert moto.stages(PRODUCTION)["AWSPENDING"] == pending

    wrong = ops("clear-pending", "service-internal-key", "--stack", "production",
                stdin=Terminal("filot/production/redis\n"))
    assert wrong.code == 2 and "did not match" in wrong.err
    assert moto.stages(PRODUCTION)["AWSPENDING"] == pending

    typed = ops("clear-pending", "service-internal-key", "--stack", "production", stdin=Terminal(f"{PRODUCTION}\n"))
    assert typed.code == 0, typed.err
    assert "Type the secret name" in typed.err
    assert "AWSPENDING" not in moto.stages(PRODUCTION)


def test_production_with_yes_goes_ahead(moto: Moto, ops: Run) -> None:
    moto.seed("production")
    stale_pending(moto, PRODUCTION)
    result = ops("clear-pending", PRODUCTION, "--stack", "production", "--yes")
    assert result.code == 0, result.err
    assert "AWSPENDING" not in moto.stages(PRODUCTION)
