"""Every example previewed with every external value set (`secure:` stand-ins, as `pulumi config set
--secret` leaves them), through the policy pack's mandatory rules, beside the committed configs that leave
values missing (test_preview_policies.py).

Only with every value set do the secrets whose values are supplied get a version, so only then do the
rules about versions (a renewed value must be ignored by later deploys, a stored value must come from
config or a generator) have something to check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from preview.cli import Report, preview
from preview.policy_check import evaluate
from tests.conftest import REPO, run_stack

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/catalog.yaml"))
STACKS = ("staging", "production")
FAKE_CIPHERTEXT = "v1:" + "A" * 44
"""The preview never decrypts: it only needs the `secure:` shape and makes a stand-in per value."""
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def _complete_config(app: str, stack: str, directory: Path) -> Path:
    committed = REPO / "examples" / app / f"Pulumi.{stack}.yaml"
    gaps = run_stack(stack, REPO, committed).run.outputs["actionRequired"]
    assert gaps, f"{app} {stack}: the committed config leaves values to set"
    document = yaml.safe_load(committed.read_text())
    for gap in gaps:
        # A plain value (a host) is set in plain text; a secret one as a `secure:` stand-in.
        plain = "--secret" not in gap["command"]
        document["config"][f"secrets-platform:{gap['configKey']}"] = (
            "stand-in.example.internal" if plain else {"secure": FAKE_CIPHERTEXT})
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _policy_config(stack: str, directory: Path) -> Path:
    if stack == "production":
        return REPO / "policies" / "config" / "production.json"
    # Staging's own config makes rules advisory; the pack's defaults make every rule mandatory.
    defaults = directory / "defaults.json"
    defaults.write_text("{}")
    return defaults


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    runs: dict[tuple[str, str], Report] = {}

    def get(app: str, stack: str) -> Report:
        if (app, stack) not in runs:
            directory = tmp_path_factory.mktemp(f"{app}-{stack}")
            runs[app, stack] = preview(stack, REPO, _complete_config(app, stack, directory),
                                       policy_config=_policy_config(stack, directory))
        return runs[app, stack]

    return get


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("app", EXAMPLES)
def test_every_example_with_every_value_set_passes_every_mandatory_rule(complete, app: str, stack: str) -> None:  # type: ignore[no-untyped-def]
    report = complete(app, stack)
    assert report.run.stack.secret_keys, "the stand-ins are in play"
    assert report.run.outputs["actionRequired"] == []
    assert [(v.policy, v.urn) for v in report.violations if v.blocking] == []
    assert [v.policy for v in report.violations if v.undecided] == [], "every rule decides on these values"


@pytest.mark.parametrize("stack", STACKS)
def test_the_renewed_xero_token_is_stored_once_and_then_left_to_the_application(complete, stack: str) -> None:  # type: ignore[no-untyped-def]
    """Seed 002's single-use refresh token: the next deploy must not write the first value back."""
    report = complete("tria-aibpo", stack)
    by_urn = {r.urn: r for r in report.run.resources}
    versions = {by_urn[v.parent].name.removeprefix(f"tria-aibpo-{stack}-"): v
                for v in report.run.resources if v.type == VERSION and v.parent}
    assert "xero-refresh-token" in versions
    assert tuple(versions["xero-refresh-token"].ignore_changes) == ("secretString", "versionStages")
    # The same stack, the version changed to be overwritten on every deploy: the pack stops it.
    stripped = [r if r is not versions["xero-refresh-token"] else
                type(r)(**{**r.__dict__, "ignore_changes": ()}) for r in report.run.resources]
    settings = json.loads((REPO / "policies" / "config" / "production.json").read_text()) \
        if stack == "production" else {}
    violations = evaluate(stripped, project=report.run.stack.project, stack=stack, policy_config=settings,
                          stack_config=report.run.stack.values)
    blocking = sorted((v.policy, v.urn.rsplit("::", 1)[-1]) for v in violations if v.blocking)
    assert blocking == [("secret-version-ignores-rotated-value", f"tria-aibpo-{stack}-xero-refresh-token-value")]
