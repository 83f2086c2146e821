"""`secrets-platform:firstValues`: `program` (the default) keeps today's program; `aws` registers no pulumi-random
resource and no SecretVersion for a rotated token or HS256 key whose catalog entry does not set `first_value`, and
every version the program still writes is retained on delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from components.secret import base64url
from preview.model import CollectedResource
from tests.conftest import MINIMAL_STACK, REPO, run_stack
from tests.test_errors import GOOD, expect_error

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
FLIPPED = ("token", "jwt-hs256")
APPS = ("fieldkit", "filot", "ledgerly", "relaybox", "tria-aibpo", "whatsapp-saas")


def _resources(app: str, first_values: str | None, directory: Path) -> list[CollectedResource]:
    document = yaml.safe_load((REPO / "examples" / app / "Pulumi.staging.yaml").read_text())
    if first_values is not None:
        document["config"]["secrets-platform:firstValues"] = first_values
    path = directory / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return run_stack("staging", REPO, path).run.resources


def _rotated_by(resources: list[CollectedResource]) -> dict[str, str]:
    """Component URN -> the strategy of the secret it holds."""
    return {r.parent or "": (r.inputs.get("tags") or {}).get("rotation-strategy", "") for r in resources
            if r.type == SECRET}


@pytest.mark.parametrize("app", APPS)
def test_aws_registers_no_value_for_a_rotated_token_or_hs256_key(app: str, tmp_path: Path) -> None:
    default = _resources(app, None, tmp_path)
    flipped = _resources(app, "aws", tmp_path)
    by = _rotated_by(flipped)
    valued = [r.urn for r in flipped if (r.type == VERSION or r.type.startswith("random:"))
              and by.get(r.parent or "") in FLIPPED]
    assert valued == [], "aws: no random resource and no version for a rotated token or HS256 key"
    before = [r for r in default if (r.type == VERSION or r.type.startswith("random:"))
              and _rotated_by(default).get(r.parent or "") in FLIPPED]
    was_flipped = {r.parent for r in before}
    # What `aws` moved is tagged as made by rotation, and nothing else changed kind.
    assert {r.parent for r in flipped if r.type == SECRET and (r.inputs.get("tags") or {}).get("first-value")
            == "rotation" and r.parent in was_flipped} == was_flipped
    assert len([r for r in default if r.type == SECRET]) == len([r for r in flipped if r.type == SECRET])
    for resources in (default, flipped):
        for version in (r for r in resources if r.type == VERSION):
            assert version.retain_on_delete, version.urn


def test_program_is_the_default_and_keeps_the_values_in_the_program(tmp_path: Path) -> None:
    default = _resources("whatsapp-saas", None, tmp_path)
    program = _resources("whatsapp-saas", "program", tmp_path)
    assert sorted(r.urn for r in default) == sorted(r.urn for r in program)
    assert sum(r.type.startswith("random:") for r in default) == 2  # admin-token and meta-verify-token


def test_an_entry_that_says_program_keeps_it(make_project: Callable[..., Path], tmp_path: Path) -> None:
    from preview.cli import preview

    explicit = GOOD.replace("strategy: token, every_days: 30", "strategy: token, every_days: 30, first_value: program")
    project = make_project(explicit, MINIMAL_STACK + "  secrets-platform:firstValues: aws\n")
    resources = preview("staging", project, None, policies=False).run.resources
    assert [r.name for r in resources if r.type.startswith("random:")] == ["shop-staging-session-secret-value"]
    flipped = make_project(GOOD, MINIMAL_STACK + "  secrets-platform:firstValues: aws\n")
    resources = preview("staging", flipped, None, policies=False).run.resources
    assert not [r for r in resources if r.type.startswith("random:")]


@pytest.mark.parametrize("value", ["AWS", "rotation", "true", "x" * 10_000, "aws\nprogram"])
def test_a_bad_value_is_one_line_naming_the_key(make_project: Callable[..., Path], value: str) -> None:
    config = MINIMAL_STACK + f"  secrets-platform:firstValues: {yaml.safe_dump(value).splitlines()[0]!s}\n" \
        if "\n" not in value else MINIMAL_STACK + '  secrets-platform:firstValues: "aws\\nprogram"\n'
    line = expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", "field 'secrets-platform:firstValues'",
                        "is not program or aws")
    assert len(line) < 400


@pytest.mark.parametrize("stack", ["staging", "production"])
@pytest.mark.parametrize("app", APPS)
def test_canaries_with_aws_no_value_of_a_flipped_secret_reaches_the_state(
        app: str, stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The canary test's helpers (tests/test_state_canaries.py), on the stack with every value set: with `aws`, the
    state holds no generated value of a rotated token or HS256 key (only those of the pulumi-random resources that
    remain), and every supplied value as before."""
    from preview.cli import preview
    from tests.test_state_canaries import Capture, _complete, _state

    counts = {}
    for first_values in ("program", "aws"):
        config = _complete(app, stack, tmp_path)
        document = yaml.safe_load(config.read_text())
        document["config"]["secrets-platform:firstValues"] = first_values
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        capture = Capture(monkeypatch)
        run = preview(stack, REPO, config, policies=False).run
        state = _state_of(run, capture, _state)
        by = _rotated_by(run.resources)
        randoms = [r for r in run.resources if r.type.startswith("random:")]
        flipped = [r.urn for r in randoms if by.get(r.parent or "") in FLIPPED]
        in_state = [g for g in run.generated if g in state]
        # The remaining random resources' values (and the URL-safe form the program derives from base64).
        kept = {v for o in capture.outputs if o["type"].startswith("random:")
                for k, v in o["state"].items() if k in ("hex", "base64", "result")}
        kept |= {base64url(v) for v in kept}
        counts[first_values] = (len(randoms), len(in_state), sum(c in state for c in capture.canaries))
        if first_values == "aws":
            assert flipped == [], "no pulumi-random resource for a rotated token or HS256 key"
            assert set(in_state) <= kept
            assert counts["aws"][2] == counts["program"][2], "supplied values as before"
    with capsys.disabled():
        print(f"\n{app} {stack}: pulumi-random resources {counts['program'][0]} -> {counts['aws'][0]}, generated "
              f"values in the state {counts['program'][1]} -> {counts['aws'][1]}, supplied {counts['aws'][2]}")


def _state_of(run: object, capture: object, state: Callable[..., str]) -> str:
    import types

    return state(types.SimpleNamespace(run=run), capture)


def test_the_setting_is_plain_config(make_project: Callable[..., Path]) -> None:
    secured = MINIMAL_STACK + "  secrets-platform:firstValues:\n    secure: v1:" + "A" * 44 + "\n"
    line = expect_error(make_project(GOOD, secured), "field 'secrets-platform:firstValues'", "is set with --secret")
    assert "AAAA" not in line
