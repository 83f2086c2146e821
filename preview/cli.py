"""`python -m preview <stack>`: what `pulumi up` would create, without the Pulumi CLI or AWS.

Exit status: 0 when the program runs and no mandatory policy is violated, 1 on a mandatory policy
violation, 2 on a user mistake (bad catalog, bad or missing stack config), reported in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from components.errors import ConfigurationError
from preview import policy_check
from preview.access_matrix import Decision, matrix
from preview.access_matrix import render as render_access
from preview.cost import estimate, summary_lines
from preview.model import CollectedResource, redacted
from preview.policy_check import Violation
from preview.runtime import ProgramRun, run_program
from preview.stackconfig import load_stack_config

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / "policies"


@dataclass
class Report:
    """The outcome of an offline preview."""

    run: ProgramRun
    violations: list[Violation] = field(default_factory=list)
    policy_config: Path | None = None
    """The policy config file the pack ran with (`policies/config/<stack>.json`), if any."""

    @property
    def mandatory(self) -> list[Violation]:
        """Violations that fail the preview (and `pulumi up`)."""
        return [v for v in self.violations if v.blocking]


def preview(stack: str, project_dir: Path = REPO, config_file: Path | None = None,
            policies: bool = True, policy_config: Path | None = None) -> Report:
    """Run the program for a stack and evaluate the policy pack against what it declares."""
    config = load_stack_config(project_dir, stack, config_file)
    # Missing external values are listed as action required instead of failing the preview.
    config.values[f"{config.project}:allowMissingValues"] = "true"
    # A project directory without its own program (a test's, an example's) runs this repository's.
    program = project_dir / "__main__.py"
    run = run_program(config, project_dir, str(program if program.is_file() else REPO / "__main__.py"))
    report = Report(run=run)
    if policies:
        # The same per-stack file `pulumi preview --policy-pack-config` takes.
        chosen = policy_config or PACK / "config" / f"{stack}.json"
        if policy_config is not None and not policy_config.is_file():
            raise ConfigurationError(str(policy_config), "no such policy config file")
        report.policy_config = chosen if chosen.is_file() else None
        settings = _policy_settings(chosen) if report.policy_config else None
        report.violations = policy_check.evaluate(
            run.resources, project=run.stack.project, stack=run.stack.stack, pack_dir=PACK,
            policy_config=settings, stack_config=run.stack.values,
        )
    return report


def _policy_settings(path: Path) -> dict[str, Any]:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(str(path), f"is not a readable JSON policy config ({exc.__class__.__name__})") \
            from None
    if not isinstance(settings, dict):
        raise ConfigurationError(str(path), "must be a JSON object: rule id -> level or settings")
    return settings


def _access(run: ProgramRun) -> list[Decision]:
    values = run.stack.values
    return matrix(run.resources, account_id=values.get(f"{run.stack.project}:accountId", ""),
                  region=values.get("aws:region", ""))


def _resource_json(resource: CollectedResource) -> dict[str, Any]:
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent,
        "protect": resource.protect,
        "retainOnDelete": resource.retain_on_delete,
        "ignoreChanges": list(resource.ignore_changes),
        "inputs": redacted(resource.inputs),
        **({"import": resource.import_id} if resource.import_id else {}),
    }


def to_json(report: Report) -> dict[str, Any]:
    run = report.run
    outputs = redacted(run.outputs)
    return {
        "project": run.stack.project,
        "stack": run.stack.stack,
        "resources": [_resource_json(r) for r in run.resources],
        "outputs": outputs,
        "actionRequired": outputs.get("actionRequired", []),
        "pendingSteps": outputs.get("pendingSteps", []),
        "deployChecks": outputs.get("deployChecks", []),
        "warnings": run.warnings,
        "firstInstalls": outputs.get("firstInstalls", []),
        "cost": estimate(run.resources, region=run.stack.values.get("aws:region", "")),
        "access": [
            {"principal": d.principal, "secret": d.secret, "operation": d.operation, "decision": d.decision}
            for d in _access(run)
        ],
        "violations": [
            {"policy": v.policy, "enforcement": v.enforcement, "urn": v.urn, "message": v.message,
             **({"suppressed": True, "reason": v.reason} if v.suppressed else {}),
             **({"undecided": True} if v.undecided else {})}
            for v in report.violations
        ],
        "summary": {
            "resources": len(run.resources),
            "byType": dict(sorted(Counter(r.type for r in run.resources).items())),
            "mandatoryViolations": len(report.mandatory),
        },
    }


def _describe(resource: CollectedResource) -> str:
    inputs = redacted(resource.inputs)
    notes = []
    if resource.type == "aws:secretsmanager/secret:Secret":
        notes.append(f"name={inputs.get('name')}")
        notes.append(f"class={inputs.get('tags', {}).get('class')}")
        notes.append(f"rotation={inputs.get('tags', {}).get('rotation')}")
        if inputs.get("tags", {}).get("first-value") == "rotation":
            notes.append("value=made by the rotation function at deploy, never in state")
    elif resource.type == "aws:secretsmanager/secretVersion:SecretVersion":
        notes.append(f"value={inputs.get('secretString', '-')}")
    elif resource.type == "aws:secretsmanager/secretRotation:SecretRotation":
        waits = inputs.get("rotateImmediately") is False
        notes.append("first rotation on schedule" if waits else "rotates at deploy")
    elif resource.type == "aws:kms/alias:Alias":
        notes.append(f"name={inputs.get('name')}")
    elif resource.type == "aws:kms/key:Key":
        notes.append(f"rotation={'on' if inputs.get('enableKeyRotation') else 'OFF'}")
        if inputs.get("region"):
            notes.append(f"region={inputs['region']}")
    if resource.import_id:
        notes.append(f"import {resource.import_id}")
    if resource.protect:
        notes.append("protected")
    if resource.ignore_changes:
        notes.append(f"ignores changes to {','.join(resource.ignore_changes)}")
    return "  ".join(notes)


def render_text(report: Report, out: TextIO) -> None:
    run = report.run
    values = run.stack.values
    out.write(
        f"Offline preview of stack '{run.stack.stack}' (project {run.stack.project}, region "
        f"{values.get('aws:region')}, account {values.get(run.stack.project + ':accountId')})\n"
        "Run under Pulumi's mock runtime: no Pulumi CLI, no AWS; ARNs are mock values, "
        "generated and secret values print as [secret].\n\n"
    )
    children: dict[str | None, list[CollectedResource]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)

    def walk(parent: str | None, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            details = _describe(resource)
            op = "=" if resource.import_id else "+"  # the engine's marker of an import
            out.write(f"{'  ' * depth}{op} {resource.type}  {resource.name}{'  ' + details if details else ''}\n")
            walk(resource.urn, depth + 1)

    out.write(f"+ pulumi:pulumi:Stack  {run.stack.project}-{run.stack.stack}\n")
    walk(run.stack_urn, 1)
    counts = Counter(r.type for r in run.resources)
    imports = sum(1 for r in run.resources if r.import_id)
    also = f", {imports} to import (existing, unchanged)" if imports else ""
    out.write(f"\nResources: {len(run.resources) - imports} to create{also}\n")
    for token, count in sorted(counts.items()):
        out.write(f"  {count:5d}  {token}\n")

    outputs = redacted(run.outputs)
    out.write("\nOutputs:\n")
    for name in sorted(outputs):
        if name in ("actionRequired", "envExample", "pendingSteps", "deployChecks", "firstInstalls"):
            continue
        value = outputs[name]
        size = f"{len(value)} entries" if isinstance(value, dict | list) else str(value)
        out.write(f"  {name}: {size}\n")

    out.write("\n")
    out.write(render_access(_access(run)))
    out.write("\n")
    for line in summary_lines(estimate(run.resources, region=values.get("aws:region", ""))):
        out.write(f"{line}\n")

    gaps = outputs.get("actionRequired") or []
    steps = outputs.get("pendingSteps") or []
    more = f", {len(steps)} step{'s' if len(steps) != 1 else ''}" if steps else ""
    out.write(f"\nAction required ({len(gaps)} value{'s' if len(gaps) != 1 else ''} not set{more}):\n")
    for gap in gaps:
        where = gap["secret"] + (f" key {gap['key']}" if gap["key"] else "")
        kind = "required" if gap["required"] else "optional"
        out.write(f"  - {where} ({kind}): {gap['command']}\n")
    for step in steps:
        out.write(f"  - {step['what']}: {step['command']}\n")
    if not gaps and not steps:
        out.write("  none\n")
    installs = outputs.get("firstInstalls") or []
    outstanding = [i for i in installs if i["status"] != "at-deploy"]
    if outstanding:
        out.write(f"\nAction required ({len(outstanding)} generated server credential"
                  f"{'s' if len(outstanding) != 1 else ''} nothing installs yet):\n")
        for item in outstanding:
            out.write(f"  - {item['secret']} ({item['strategy']}): {item['action']}\n")
    for item in installs:
        if item["status"] == "at-deploy":
            out.write(f"First install: {item['secret']} is installed on its server by the first rotation, with "
                      f"{item['master']}'s admin credential\n")

    checks = outputs.get("deployChecks") or []
    if checks:
        out.write(f"\nChecked at `pulumi up` only ({len(checks)}; the preview's stand-ins for secure values "
                  "cannot be):\n")
        for check in checks:
            out.write(f"  - {check}\n")

    if run.warnings:
        out.write(f"\nWarnings ({len(run.warnings)}):\n")
        for warning in run.warnings:
            out.write(f"  {warning}\n")

    out.write(f"\nPolicy violations ({len(report.violations)}):\n")
    for v in report.violations:
        flag = f" (suppressed: {v.reason})" if v.suppressed else ""
        out.write(f"  [{v.enforcement}] {v.policy}: {v.message}{flag}\n    at {v.urn}\n")
    if not report.violations:
        out.write("  none\n")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--project-dir", type=Path, default=REPO)
    parser.add_argument("--config-file", type=Path, default=None,
                        help="a stack config file other than Pulumi.<stack>.yaml (e.g. an example's)")
    parser.add_argument("--no-policies", action="store_true", help="skip the policy pack")
    parser.add_argument("--policy-config", type=Path, default=None,
                        help="policy pack config (default: policies/config/<stack>.json when it exists)")
    args = parser.parse_args(argv)
    try:
        report = preview(args.stack, args.project_dir.resolve(), args.config_file, not args.no_policies,
                         args.policy_config)
    except ConfigurationError as exc:
        if args.config_file is not None and exc.file == f"Pulumi.{args.stack}.yaml":
            # The program knows only its stack's name; the file it read is the one given here.
            exc = ConfigurationError(str(args.config_file), exc.reason, secret=exc.secret, field=exc.field)
        err.write(f"error: {exc}\n")
        return 2
    if args.format == "json":
        json.dump(to_json(report), out, indent=2, sort_keys=False)
        out.write("\n")
    else:
        render_text(report, out)
    if report.mandatory:
        err.write(f"error: {len(report.mandatory)} mandatory policy violation(s)\n")
        return 1
    return 0
