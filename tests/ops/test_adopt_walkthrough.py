"""docs/adopt.md, "Adopt an existing application", run end to end against a moto account seeded like filot's tree.

Seed 000 lists what exists under `filot/production/` (everything but JWT_SECRET and the BULI2 values):
the walkthrough drafts from that account and the catalog's `.env.example`, reviews, previews, sets the
values that are not adopted, checks what `pulumi up` would import, takes the follow-up step, and checks
that consumers still read the same ARNs. No step may print or write a value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from draft_harness import SECRET, declared, describe, drop, example_preview, seed_example
from ops_harness import Moto, Result

from components.catalog import load_catalog
from preview.cli import Report, preview, render_text

NEW = ("jwt-secret", "buli2", "redis-admin")
"""Not in filot's existing tree (seed 000: JWT_SECRET and the BULI2 values are missing)."""
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
FAKE_CIPHERTEXT = "v1:" + "A" * 44


def _state(moto: Moto, region: str, arns: dict[str, str]) -> dict[str, Any]:
    sm = moto.client("secretsmanager", region)
    return {n: (sm.describe_secret(SecretId=a)["VersionIdsToStages"],
                sm.get_secret_value(SecretId=a, VersionStage="AWSCURRENT")["SecretString"]) for n, a in arns.items()}


def _text(report: Report) -> str:
    out = io.StringIO()
    render_text(report, out)
    return out.getvalue()


def _consumers_read_the_same_arns(report: Report, arns: dict[str, str]) -> int:
    checked = 0
    for entry in report.run.outputs["ecsSecrets"]:
        arn = entry["valueFrom"].split(":", 7)
        full = ":".join(arn[:7])
        name = report.run.outputs["envVars"][entry["name"]].split(":")[0].rsplit("/", 1)[-1]
        if name in arns:
            assert full == arns[name], entry["name"]
            checked += 1
    return checked


def test_adopt_an_existing_application(moto: Moto, ops: Callable[..., Result], tmp_path: Path) -> None:
    stack = "production"
    existing = seed_example(moto, "filot", stack, skip=NEW, with_key=False)
    try:
        before = _state(moto, existing.region, existing.arns)
        env_file = tmp_path / ".env.example"
        env_file.write_text(example_preview("filot", stack).run.outputs["envExample"])
        project = tmp_path / "adopt"

        # 1. Draft.
        drafted = ops("draft", "--stack", stack, "--app", "filot", "--owner", "platform", "--from-aws",
                      existing.prefix, "--region", existing.region, "--read-keys", "--env-file", str(env_file),
                      "--out", str(project))
        assert drafted.code == 0, drafted.err
        assert f"({len(existing.arns)} adopted)" in drafted.out
        catalog_file, stack_file = project / "catalog.yaml", project / f"Pulumi.{stack}.yaml"
        moto.outputs += [catalog_file.read_text(), stack_file.read_text()]

        # 2. Review: every guess is marked; the reviewer answers them (here: who reads the new secrets).
        text = catalog_file.read_text()
        assert text.count("# review:") >= len(existing.arns)
        catalog_file.write_text(text.replace(
            "  buli2:\n", "  buli2:\n    consumers: [worker]\n").replace(
            "    # review: which services read it (consumers: [...]) to get a read policy each\n", ""))
        catalog = load_catalog(catalog_file)
        assert set(catalog.secrets) == set(existing.arns) | {"jwt-secret", "buli2"}

        # 3. Preview: the existing secrets are imported, not created; the pack runs and does not block.
        first = preview(stack, project)
        moto.outputs.append(_text(first))
        imported = {r.import_id: r for r in first.run.resources if r.type == SECRET and r.import_id}
        assert set(imported) == set(existing.arns.values())
        for arn, resource in imported.items():
            assert declared(resource.inputs) == describe(moto, existing.region, arn), resource.urn
        assert not first.mandatory, [v.message for v in first.mandatory]
        assert "to import (existing, unchanged)" in _text(first)
        follow_ups = [v for v in first.violations if v.suppressed and "adopted existing secret" in v.reason]
        assert any(v.policy == "secret-required-tags" for v in follow_ups)

        # 4. Set the external values that are not adopted (the preview lists exactly those).
        gaps = first.run.outputs["actionRequired"]
        assert {g["secret"] for g in gaps} == {"jwt-secret", "buli2"}
        config = yaml.safe_load(stack_file.read_text())
        config["config"].update({f"secrets-platform:{g['configKey']}": {"secure": FAKE_CIPHERTEXT} for g in gaps})
        stack_file.write_text(yaml.safe_dump(config, sort_keys=False))

        # 5. `pulumi up` with imports: the adopted secrets get no version and no resource policy; the new ones
        #    get their values. Nothing so far changed anything in the account.
        up = preview(stack, project)
        assert up.run.outputs["actionRequired"] == []
        adopted_parents = {r.parent for r in up.run.resources if r.type == SECRET and r.import_id}
        assert not [r for r in up.run.resources if r.parent in adopted_parents and r.type in (VERSION, POLICY)]
        new_parents = {r.parent for r in up.run.resources if r.type == SECRET and not r.import_id}
        assert len([r for r in up.run.resources if r.parent in new_parents and r.type == VERSION]) == 2
        assert not up.mandatory
        assert _state(moto, existing.region, existing.arns) == before
        assert _consumers_read_the_same_arns(up, existing.arns) == 20  # seed 000: the 20 "existing secrets (verified)"

        # 6. The follow-up step: the environment's key, the platform's tags, a resource policy, and rotation
        #    for the session secret (its value is what the token function makes).
        config = yaml.safe_load(stack_file.read_text())
        for entry in config["config"]["secrets-platform:adopt"].values():
            entry["imported"] = True
        stack_file.write_text(yaml.safe_dump(config, sort_keys=False))
        text = catalog_file.read_text()
        session = text.index("  session-secret:\n")
        following = re.search(r"\n  \S", text[session + 1:])
        block = text[session:session + 1 + following.start()] if following else text[session:]
        changed = block.replace("    rotation: manual\n", "    rotation: {strategy: token, every_days: 365, "
                                "kind: signing-key}\n").replace(
            "external: {}", "generate: {kind: bytes, bytes: 32, encoding: hex}")
        changed = "\n".join(line for line in changed.split("\n") if not line.startswith("    rotation_reason:"))
        catalog_file.write_text(text.replace(block, changed))
        follow = preview(stack, project)
        moto.outputs.append(_text(follow))
        assert not follow.mandatory, [v.message for v in follow.mandatory]
        secrets = {r.inputs["name"]: r for r in follow.run.resources if r.type == SECRET}
        key = next(r for r in follow.run.resources if r.type == "aws:kms/key:Key")
        for name in existing.arns:
            resource = secrets[f"filot/{stack}/{name}"]
            assert resource.import_id == ""
            assert resource.inputs["tags"]["environment"] == stack
            assert key.urn in resource.property_dependencies.get("kmsKeyId", ())
            children = {r.type for r in follow.run.resources if r.parent == resource.parent and r.custom}
            assert POLICY in children and VERSION not in children, name
        rotations = [r for r in follow.run.resources if r.type == ROTATION]
        assert len(rotations) == 1 and rotations[0].inputs["rotateImmediately"] is False
        assert not [v for v in follow.violations if "adopted existing secret" in v.reason]

        # 7. Consumers read the same ARNs: the import's ecsSecrets name the existing ARNs (step 5), and the
        #    follow-up keeps every name, the one input whose change replaces a secret (terraform-provider-aws
        #    secret.go: name and name_prefix are ForceNew), so the ARNs stay. (The offline preview stands in for
        #    the state with the ARNs the adopt entries record.)
        for name, arn in existing.arns.items():
            resource = secrets[f"filot/{stack}/{name}"]
            assert resource.inputs["name"] == describe(moto, existing.region, arn)["name"]
            assert "namePrefix" not in resource.inputs
        assert _consumers_read_the_same_arns(follow, existing.arns) == 20
        assert follow.run.outputs["ecsSecrets"] == up.run.outputs["ecsSecrets"]
        assert _state(moto, existing.region, existing.arns) == before
    finally:
        drop(moto, existing)
