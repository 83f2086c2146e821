"""A stack may not deploy the environment another stack of the project deploys in the same account.

`secrets-platform:environment` defaults to the stack name (components/settings.py); set to another
stack's environment it would take over that environment's secrets, key and policies under its own
settings (a staging stack saying `environment: production` got 99 advisory findings and went ahead).
The rule (components/stack_claims.py): the stack named after an environment owns it in its account; any
other stack naming it there is refused with one line. Stacks in other accounts are not concerned, so a
developer's `dev-alice` stack deploys `dev` in a sandbox account.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from components.errors import ConfigurationError
from components.stack_claims import check_environment_claim
from preview.cli import main
from tests.test_errors import GOOD

CATALOG = GOOD.replace("owner: platform\n", "owner: platform\nenvironments: [production, staging, dev]\n")
ACCOUNT = "210987654321"
SANDBOX = "111111111111"


def stack_file(account: str = ACCOUNT, environment: str | None = None) -> str:
    lines = ["config:", "  aws:region: eu-west-1", f'  secrets-platform:accountId: "{account}"',
             "  secrets-platform:recoveryWindowDays: 7"]
    if environment is not None:
        lines.append(f"  secrets-platform:environment: {environment}")
    return "\n".join(lines) + "\n"


def run(project: Path, stack: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([stack, "--project-dir", str(project), "--no-policies"], out=out, err=err)
    return code, err.getvalue()


def test_a_staging_stack_may_not_deploy_production(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, stack_file(environment="production"), "staging")
    (project / "Pulumi.production.yaml").write_text(stack_file())
    code, err = run(project, "staging")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: Pulumi.staging.yaml, field 'secrets-platform:environment': 'production' is the "
                               "environment stack 'production' deploys in account 210987654321")
    # The stack named after the environment keeps it.
    code, err = run(project, "production")
    assert code == 0, err


def test_other_stacks_may_name_an_environment_of_their_own(make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, stack_file(account=SANDBOX, environment="dev"), "dev-alice")
    (project / "Pulumi.dev.yaml").write_text(stack_file())  # the shared dev stack, in another account
    (project / "Pulumi.production.yaml").write_text(stack_file())
    code, err = run(project, "dev-alice")
    assert code == 0, err


def test_two_stacks_that_share_an_environment_in_one_account_are_both_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev-alice.yaml").write_text(stack_file(environment="dev"))
    (tmp_path / "Pulumi.dev-bob.yaml").write_text(stack_file(environment="dev"))
    for stack, other in (("dev-alice", "dev-bob"), ("dev-bob", "dev-alice")):
        with pytest.raises(ConfigurationError) as raised:
            check_environment_claim(stack, "dev", ACCOUNT, f"Pulumi.{stack}.yaml", tmp_path)
        assert f"stack '{other}'" in str(raised.value)


@pytest.mark.parametrize("content", [
    b"\x00\xff\xfe binary",
    b"config: [not, a, mapping]\n",
    b"config:\n  secrets-platform:accountId: {secure: AAAA}\n",
    b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    b"config: {secrets-platform:accountId: '210987654321', secrets-platform:environment: dev}\n"
    b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    b"config:\n  secrets-platform:accountId: '210987654321'\n" + b"  k: " + b"x" * 2_000_000 + b"\n",
    b"key: [unclosed\n",
], ids=["binary", "malformed", "secure-account", "alias-bomb", "huge", "unparsable"])
def test_stack_files_that_are_not_claims_are_passed_over(tmp_path: Path, content: bytes) -> None:
    """Another stack's file that cannot be read as a claim is that stack's own run's business (and an alias
    bomb is never expanded: only the two scalars are looked at)."""
    (tmp_path / "Pulumi.dev.yaml").write_bytes(content)
    if b"&a" in content:
        # A claim inside a file full of aliases is still read, without expanding them.
        with pytest.raises(ConfigurationError):
            check_environment_claim("dev-alice", "dev", ACCOUNT, "Pulumi.dev-alice.yaml", tmp_path)
    else:
        check_environment_claim("dev-alice", "dev", ACCOUNT, "Pulumi.dev-alice.yaml", tmp_path)


def test_a_stack_file_that_leads_outside_the_project_is_passed_over(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "Pulumi.dev.yaml").write_text(stack_file())
    project = tmp_path / "project"
    project.mkdir()
    os.symlink(outside / "Pulumi.dev.yaml", project / "Pulumi.dev.yaml")
    (project / "Pulumi.qa.yaml").mkdir()  # a directory, not a file
    check_environment_claim("dev-alice", "dev", ACCOUNT, "Pulumi.dev-alice.yaml", project)
