"""What Pulumi state would hold, proved with canaries: every example, both stacks, every value set.

Each `secure:` value is a canary made at run time (`pulumi config set --secret` gives the program exactly that
value). The test collects what the engine would store: every registered resource's inputs and what the
provider (here the mocks) returns as its outputs, the components' and the stack's outputs. It then counts in
them the canaries and the generated values, and looks for both in the preview's text and JSON.

- A value made inside AWS (a server credential's password with a `master`, a `first_value: rotation` value,
  a published public key, a generated secret no function rotates, made once by the first-value function) has
  no pulumi-random resource and no key in any version: 0 in the state.
- A value pulumi-random still makes (a rotated token or HS256 key whose first value the program writes, a
  generated key beside a supplied one in a secret no function rotates) is in the state, encrypted: counted
  and printed.
- A supplied value (`pulumi config set --secret`) is in the state, encrypted by the stack's secrets provider:
  counted and printed per example.
- Neither the preview's text nor its JSON holds any of them.
"""

from __future__ import annotations

import io
import json
import secrets
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import load_catalog
from components.first_value import made_once
from preview import mocks as preview_mocks
from preview import stackconfig
from preview.cli import Report, preview, render_text, to_json
from tests.conftest import REPO

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/catalog.yaml"))
STACKS = ("staging", "production")
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SERVER_STRATEGIES = ("postgres-single-user", "postgres-alternating-users", "redis-acl")
INVOCATION = "aws:lambda/invocation:Invocation"


class Capture:
    """The canaries handed out as `secure:` values, and what the mocks returned for every resource."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.canaries: list[str] = []
        self.outputs: list[dict[str, Any]] = []
        monkeypatch.setattr(stackconfig, "secrets", types.SimpleNamespace(token_urlsafe=self._canary))
        original = preview_mocks.AwsMocks.new_resource

        def new_resource(mocks: Any, args: Any) -> Any:
            resource_id, state = original(mocks, args)
            self.outputs.append({"type": args.typ, "name": args.name, "id": resource_id, "state": state})
            return resource_id, state

        monkeypatch.setattr(preview_mocks.AwsMocks, "new_resource", new_resource)

    def _canary(self, _: int) -> str:
        value = "cnry" + secrets.token_hex(20)
        self.canaries.append(value)
        return value


def _complete(app: str, stack: str, directory: Path) -> Path:
    """The example's committed stack file with every value it leaves to set, set (secret ones `secure:`)."""
    committed = REPO / "examples" / app / f"Pulumi.{stack}.yaml"
    gaps = preview(stack, REPO, committed, policies=False).run.outputs["actionRequired"]
    document = yaml.safe_load(committed.read_text())
    for gap in gaps:
        plain = "--secret" not in gap["command"]
        document["config"][f"secrets-platform:{gap['configKey']}"] = (
            "stand-in.example.internal" if plain else {"secure": "v1:" + "A" * 44})
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _state(report: Report, capture: Capture) -> str:
    """Everything the engine would store for the stack, as one text to search."""
    run = report.run
    return json.dumps({
        "resources": [{"urn": r.urn, "inputs": r.inputs} for r in run.resources],
        "outputs": capture.outputs, "componentOutputs": run.component_outputs, "stackOutputs": run.outputs,
    }, default=repr)


def made_in_aws(report: Report) -> dict[str, str]:
    """Catalog secret component -> why its value is made inside AWS (never by the program)."""
    found = {}
    for secret in (r for r in report.run.resources if r.type == SECRET):
        tags = secret.inputs["tags"]
        component = secret.name.removesuffix("-secret")
        if tags.get("first-value") == "rotation":
            found[component] = "the rotation function makes the first value"
        elif tags.get("first-value") == "function":
            found[component] = "the first-value function makes it once at deploy"
        elif tags.get("rotation-strategy") in SERVER_STRATEGIES:
            found[component] = "the first rotation makes and installs the password"
    return found


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("app", EXAMPLES)
def test_canaries_and_generated_values_in_the_state_and_the_preview(
    app: str, stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    config = _complete(app, stack, tmp_path)
    capture = Capture(monkeypatch)
    report = preview(stack, REPO, config, policies=False)
    run = report.run
    assert run.outputs["actionRequired"] == [], "every value is set"
    canaries = list(capture.canaries)
    assert canaries and set(run.stack.values[k] for k in run.stack.secret_keys) == set(canaries)
    state = _state(report, capture)
    text, document = io.StringIO(), json.dumps(to_json(report))
    render_text(report, text)

    # Supplied values: in the state (encrypted there), never in the preview.
    in_state = sum(1 for c in canaries if c in state)
    assert in_state == len(canaries), "every supplied value reaches a version"
    assert [c for c in canaries if c in text.getvalue() or c in document] == []

    # Values made inside AWS: no generator in the state, no key in a version, and so none of their values.
    inside = made_in_aws(report)
    randoms = [r for r in run.resources if r.type.startswith("random:")]
    by_urn = {r.urn: r for r in run.resources}
    assert [r.name for r in randoms if r.parent and by_urn[r.parent].name in inside] == []
    for version in (r for r in run.resources if r.type == VERSION):
        component = by_urn[version.parent].name if version.parent else ""
        if component in inside:
            value = json.loads(version.inputs["secretString"]["value"])
            assert "password" not in value and "url" not in value, f"{version.urn}: {inside[component]}"

    # Every generated value no function rotates, where the function can make the whole secret, is made in AWS:
    # 0 in the state (components/first_value.py); its Invocation's input names the secret only.
    catalog = load_catalog(REPO / "examples" / app / "catalog.yaml")
    once = {f"{app}-{stack}-{n}" for n, e in catalog.for_environment(stack).items() if made_once(e)}
    assert once <= {c for c, why in inside.items() if "first-value function" in why}
    invocations = [r for r in run.resources if r.type == INVOCATION]
    assert sorted(json.loads(r.inputs["input"])["FirstValue"].rsplit("/", 1)[-1] for r in invocations) == sorted(
        c.removeprefix(f"{app}-{stack}-") for c in once)
    assert [r.name for r in randoms if r.parent and by_urn[r.parent].name in once] == []

    # Values pulumi-random still makes: in the state, counted; never in the preview.
    generated = [g for g in run.generated if g in state]
    assert [g for g in run.generated if g in text.getvalue() or g in document] == []
    with capsys.disabled():
        print(f"\n{app} {stack}: {len(canaries)} supplied values in the state (encrypted), "
              f"{len(randoms)} generated by pulumi-random in the state (encrypted), "
              f"{len(inside)} secrets made inside AWS ({len(once)} of them once, with no schedule), 0 of their "
              "values in the state")
    assert len(randoms) == len({r.name for r in randoms}) and (not randoms or generated)
