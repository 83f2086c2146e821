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


# The pack beside the program (preview.policy_check.PackSession) ---------------------------------------


def _strict_production(tmp_path: Path) -> tuple[Path, Path]:
    """Production unprotected, with a policy config that adds findings of resource and stack rules
    (one suppressed), so that their order can be compared."""
    config = _copy_stack(tmp_path, "production", "")
    config.write_text(config.read_text().replace("protectSecrets: true", "protectSecrets: false"))
    settings = tmp_path / "strict.json"
    settings.write_text(json.dumps({
        "secret-rotation-required": {"maxRotationDays": 1, "maxSigningKeyRotationDays": 1},
        "secret-recovery-window": {"minRecoveryWindowDays": 31, "suppressions": [
            {"name": "filot-production-buli2-secret", "reason": "a planted suppression for the test"}]},
    }))
    return config, settings


def test_the_pack_beside_the_program_finds_what_the_pack_after_it_finds(tmp_path: Path) -> None:
    """Analyze while the program runs, AnalyzeStack afterwards: the same findings, in the same order,
    as evaluate() over the finished run."""
    from preview import policy_check

    config, settings = _strict_production(tmp_path)
    report = preview("production", REPO, config, policy_config=settings)
    after = policy_check.evaluate(
        report.run.resources, project=report.run.stack.project, stack="production",
        policy_config=json.loads(settings.read_text()), stack_config=report.run.stack.values,
    )
    assert report.violations == after
    policies = {v.policy for v in after}
    assert {"secret-production-protected", "secret-rotation-required"} <= policies
    assert any(v.suppressed for v in after)


def test_wait_false_leaves_the_stack_check_running_until_wait(tmp_path: Path) -> None:
    config, settings = _strict_production(tmp_path)
    report = preview("production", REPO, config, policy_config=settings, wait=False)
    assert report.pending is not None and report.violations == []
    report.wait()
    assert report.pending is None and report.mandatory


def test_a_program_error_stops_the_pack_started_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user mistake (exit 2) leaves no policy pack process behind."""
    from preview import policy_check

    sessions: list[policy_check.PackSession] = []
    original = policy_check.PackSession.__init__

    def remember(self: policy_check.PackSession, **kwargs: object) -> None:
        original(self, **kwargs)  # type: ignore[arg-type]
        sessions.append(self)

    monkeypatch.setattr(policy_check.PackSession, "__init__", remember)
    config = _copy_stack(tmp_path, "staging", "  secrets-platform:environment: Not-An-Env\n")
    code, _, err = run(["staging", "--config-file", str(config)])
    assert code == 2 and "environment" in err, err
    assert len(sessions) == 1
    session = sessions[0]
    assert session._closed
    assert session._pack is None or session._pack.proc.poll() is not None


def test_a_pack_that_does_not_start_is_reported(tmp_path: Path) -> None:
    from preview import policy_check

    broken = tmp_path / "pack"
    broken.mkdir()
    (broken / "__main__.py").write_text("raise SystemExit('no pack here')\n")
    session = policy_check.PackSession(project="p", stack="staging", pack_dir=broken)
    with pytest.raises(policy_check.PolicyPackError, match=r"did not start: .*no pack here"):
        session.finish([])


def test_timings_name_every_phase(tmp_path: Path) -> None:
    timings = tmp_path / "timings.json"
    code, out, _ = run(["staging", "--format", "json", "--timings", str(timings)])
    assert code == 0 and json.loads(out)["resources"]
    reported = json.loads(timings.read_text())
    assert set(reported["phases"]) == {"load", "program", "pack", "matrix", "cost", "render"}
    assert all(s >= 0 for s in reported["phases"].values())
    assert reported["resources"] == len(json.loads(out)["resources"])
    assert reported["pack"]["resources"] == reported["resources"]


@pytest.mark.parametrize("cells", [0, 1, 3])
def test_the_json_document_is_written_as_json_dump_writes_it(cells: int) -> None:
    """The access list is written by a template (most of a large document): byte for byte what
    json.dump(indent=2) writes, escapes included."""
    from preview.access_matrix import Decision
    from preview.cli import _write_json

    access = [Decision(principal=f'arn:aws:iam::1:role/r"{i}', secret=f"app/staging/s\\{i}-é\u2028",
                       operation="read", decision="Allowed") for i in range(cells)]
    document = {"project": "p", "resources": [{"a": [1, 2.5, None, True]}], "access": [],
                "violations": [{"message": "x"}], "summary": {"resources": 1}}
    written = io.StringIO()
    _write_json(document, access, written)
    expected = json.dumps({**document, "access": [
        {"principal": d.principal, "secret": d.secret, "operation": d.operation, "decision": d.decision}
        for d in access]}, indent=2)
    assert written.getvalue() == expected
