"""The offline preview with the policy pack: the project's stacks and examples are clean; a mandatory
violation fails the preview, an advisory one is printed and does not."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from preview.cli import main, preview
from tests.conftest import REPO

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/catalog.yaml"))


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_project_stacks_pass_every_mandatory_rule(stack: str) -> None:
    report = preview(stack, REPO)
    blocking = [(v.policy, v.urn) for v in report.violations if v.blocking]
    assert blocking == []
    undecided = [v.policy for v in report.violations if v.undecided]
    assert undecided == [], "every rule decides on the mocked values"


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_example_passes_every_mandatory_rule(example: str, stack: str, tmp_path: Path) -> None:
    # The pack's defaults: every rule mandatory (staging's own config would make them advisory).
    defaults = tmp_path / "defaults.json"
    defaults.write_text("{}")
    config = REPO / "examples" / example / f"Pulumi.{stack}.yaml"
    policy_config = REPO / "policies" / "config" / "production.json" if stack == "production" else defaults
    report = preview(stack, REPO, config, policy_config=policy_config)
    assert [(v.policy, v.urn) for v in report.violations if v.blocking] == []


def _copy_stack(tmp_path: Path, stack: str, extra: str) -> Path:
    text = (REPO / f"Pulumi.{stack}.yaml").read_text() + extra
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text)
    return path


def test_a_mandatory_violation_fails_the_preview_and_is_listed(tmp_path: Path) -> None:
    # An unprotected production stack: its secrets could be destroyed by `pulumi destroy`.
    config = _copy_stack(tmp_path, "production", "")
    config.write_text(config.read_text().replace("protectSecrets: true", "protectSecrets: false"))
    code, out, err = run(["production", "--config-file", str(config), "--format", "json"])
    assert code == 1
    report = json.loads(out)
    mandatory = {v["policy"] for v in report["violations"] if v["enforcement"] == "mandatory"}
    assert mandatory == {"secret-production-protected"}
    assert "1 mandatory policy violation" in err or "mandatory policy violation(s)" in err


def test_an_advisory_finding_is_printed_and_does_not_fail(tmp_path: Path) -> None:
    # Staging's policy config makes every rule advisory; the same unprotected stack passes there.
    config = _copy_stack(tmp_path, "production", "")
    config.write_text(config.read_text().replace("protectSecrets: true", "protectSecrets: false"))
    code, out, _ = run(["production", "--config-file", str(config),
                        "--policy-config", str(REPO / "policies" / "config" / "staging.json")])
    assert code == 0
    assert "[advisory] secret-production-protected" in out


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "no such policy config file"),
    ("{not json", "is not a readable JSON policy config"),
    ("[1, 2]", "must be a JSON object"),
])
def test_a_bad_policy_config_is_a_user_mistake(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "policy.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(["staging", "--policy-config", str(path)])
    assert code == 2 and out == ""
    assert err.strip() == f"error: {path}: {fragment}" or (fragment in err and err.count("\n") == 1)


def test_the_preview_script_keeps_the_preview_exit_status(tmp_path: Path) -> None:
    """CI calls scripts/preview.sh: 1 (a mandatory violation) must stay 1, not become make's 2."""
    config = _copy_stack(tmp_path, "production", "")
    config.write_text(config.read_text().replace("protectSecrets: true", "protectSecrets: false"))
    done = subprocess.run(["bash", str(REPO / "scripts" / "preview.sh"), "production", "--config-file", str(config),
                           "--format", "json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert {v["policy"] for v in json.loads(done.stdout)["violations"]} >= {"secret-production-protected"}
    mistake = subprocess.run(["bash", str(REPO / "scripts" / "preview.sh"), "no-such-stack"],
                             capture_output=True, text=True, timeout=300, check=False)
    assert mistake.returncode == 2 and mistake.stdout == ""
