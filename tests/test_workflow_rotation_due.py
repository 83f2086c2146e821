"""The daily workflow that fails when a secret rotated by hand is overdue (`.github/workflows/rotation-due.yml`).

Its rules, and its `run:` script executed with a stand-in for `python -m ops due` that exits 0, 1 or
2: the job's status is the command's (never swallowed by `tee`), and an overdue stack gets an error
annotation. actionlint and shellcheck check the file with every other workflow (test_workflows.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_workflows import load, secrets_used, steps

NAME = "rotation-due.yml"


def job() -> dict[str, Any]:
    return dict(load(NAME)["jobs"]["due"])


def test_it_runs_daily_and_on_demand_for_both_stacks() -> None:
    on = load(NAME)["on"]
    [schedule] = on["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    assert "workflow_dispatch" in on
    assert set(job()["strategy"]["matrix"]["stack"]) == {"staging", "production"}
    assert job()["strategy"]["fail-fast"] is False


def test_it_reads_metadata_with_a_read_only_role_and_no_secret() -> None:
    assert job()["permissions"] == {"contents": "read", "id-token": "write"}
    assert load(NAME)["permissions"] == {"contents": "read"}
    assert secrets_used(load(NAME)) == set()
    assert "environment" not in job(), "a production environment's approval would hold the daily run"
    credentials = [s for s in steps(job()) if str(s.get("uses", "")).startswith("aws-actions/")]
    assert credentials and credentials[0]["with"]["role-to-assume"] == "${{ vars.AWS_AUDIT_ROLE_ARN }}"
    assert not any(s.get("continue-on-error") for s in steps(job()))


def _script() -> str:
    [step] = [s for s in steps(job()) if "ops due" in str(s.get("run", ""))]
    assert 'python -m ops due --stack "$STACK"' in step["run"]
    return str(step["run"])


@pytest.mark.parametrize(("code", "annotated"), [(0, False), (1, True), (2, False)])
def test_the_job_fails_with_the_commands_status(tmp_path: Path, code: int, annotated: bool) -> None:
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\necho \"shop/$STACK/partner-key  180d  OVERDUE\"\nexit {code}\n")
    fake.chmod(0o755)
    summary = tmp_path / "summary.md"
    done = subprocess.run(["bash", "-e", "-c", _script()], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "STACK": "production", "GITHUB_STEP_SUMMARY": str(summary)},
                          check=False)
    assert done.returncode == code, done.stderr
    assert ("::error title=Secrets overdue for rotation::stack production" in done.stdout) == annotated
    assert re.fullmatch(r"```\nshop/production/partner-key  180d  OVERDUE\n```\n", summary.read_text())
