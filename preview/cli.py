"""`python -m preview <stack>`: what `pulumi up` would create, without the Pulumi CLI or AWS.

Exit status: 0 when the program runs and no mandatory policy is violated, 1 on a mandatory policy
violation, 2 on a user mistake (bad catalog, bad or missing stack config), reported in one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from components.errors import ConfigurationError
from components.values import offline_stand_ins
from preview import policy_check
from preview.access_matrix import Decision, matrix
from preview.access_matrix import render as render_access
from preview.cost import estimate, summary_lines
from preview.model import CollectedResource, redacted
from preview.policy_check import Violation
from preview.runtime import ProgramRun, run_program
from preview.stackconfig import StackConfig, load_stack_config

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / "policies"


def _peak_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


class Phases:
    """Wall time per phase of one preview (`--timings`; bench/ reads it)."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        """Peak resident memory of this process at the end of each phase (Linux; 0 elsewhere)."""
        self._mark = self.started

    def lap(self, name: str) -> None:
        """Charge the time since the last mark to `name`; note the process's peak memory so far."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now
        self.peak_mb[name] = _peak_mb()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._mark = time.perf_counter()
        try:
            yield
        finally:
            self.lap(name)


@dataclass
class Report:
    """The outcome of an offline preview."""

    run: ProgramRun
    violations: list[Violation] = field(default_factory=list)
    policy_config: Path | None = None
    """The policy config file the pack ran with (`policies/config/<stack>.json`), if any."""
    pending: policy_check.PackSession | None = None
    """The pack still checking the stack (`preview(wait=False)`); `wait()` collects its findings."""

    def wait(self) -> None:
        """Collect the policy pack's findings, if it is still running."""
        if self.pending is not None:
            session, self.pending = self.pending, None
            self.violations = session.violations()

    @property
    def mandatory(self) -> list[Violation]:
        """Violations that fail the preview (and `pulumi up`)."""
        return [v for v in self.violations if v.blocking]


def preview(stack: str, project_dir: Path = REPO, config_file: Path | None = None,
            policies: bool = True, policy_config: Path | None = None, *, wait: bool = True,
            phases: Phases | None = None, collect: bool = True) -> Report:
    """Run the program for a stack and evaluate the policy pack against what it declares.

    The pack starts beside the program and analyzes each resource as it is registered, as the
    engine does (preview.policy_check.PackSession). With `wait=False` the pack may still be checking
    the stack when this returns: call `report.wait()` before reading `report.violations`.
    `collect=False` (a process that exits after the preview) skips the final garbage collection.
    """
    phases = phases or Phases()
    config = load_stack_config(project_dir, stack, config_file)
    # A project directory without its own program (a test's, an example's) runs this repository's.
    program = project_dir / "__main__.py"
    session: policy_check.PackSession | None = None
    chosen: Path | None = None
    problem: ConfigurationError | None = None
    if policies:
        # The same per-stack file `pulumi preview --policy-pack-config` takes. A problem with it is
        # reported after the program's own checks, as it always was; the pack then does not start.
        chosen = policy_config or PACK / "config" / f"{stack}.json"
        try:
            if policy_config is not None and not policy_config.is_file():
                raise ConfigurationError(str(policy_config), "no such policy config file")
            settings = _policy_settings(chosen) if chosen.is_file() else None
        except ConfigurationError as exc:
            problem = exc
        else:
            session = policy_check.PackSession(
                project=config.project, stack=config.stack, pack_dir=PACK, policy_config=settings,
                stack_config=config.values,
            )
    phases.lap("load")
    try:
        # Missing values are listed as action required instead of failing the preview, and the secure
        # values are stand-ins; the stack's own allowMissingValues is left as its file says (the pack sees it).
        with offline_stand_ins(config.secret_keys):
            run = run_program(config, project_dir, str(program if program.is_file() else REPO / "__main__.py"),
                              on_resource=session.submit if session else None, collect=collect)
        phases.lap("program")
        report = Report(run=run)
        if problem is not None:
            raise problem
        if session is not None:
            assert chosen is not None
            report.policy_config = chosen if chosen.is_file() else None
            session.finish(run.resources)
            phases.lap("pack")
            report.pending = session
    except BaseException:
        if session is not None:
            session.close()
        raise
    if wait:
        report.wait()
        phases.lap("pack")
    warning = state_secrets_warning(config)
    if warning:
        run.warnings.append(warning)
    return report


def state_secrets_warning(config: StackConfig) -> str | None:
    """Production state whose secrets only a passphrase protects: whoever holds the passphrase and a copy of
    the state holds every value in it, and no KMS key policy or CloudTrail record stands in between."""
    environment = config.values.get(f"{config.project}:environment") or config.stack
    if environment != "production" or config.secrets_provider != "passphrase":
        return None
    return (f"{config.config_file.name}: stack '{config.stack}' encrypts the secrets in its state with a passphrase; "
            "use the organisation's KMS key: `python -m ops bootstrap-state --stack "
            f"{config.stack}`, then `pulumi stack change-secrets-provider 'awskms://alias/<app>/{environment}/"
            "pulumi-state?region=<region>'`")


def state_secrets_line(config: StackConfig) -> str:
    """What encrypts the secrets in this stack's state, in words."""
    provider = config.secrets_provider
    if provider.startswith("awskms://"):
        return f"{provider} (a KMS key of the organisation)"
    if provider == "passphrase":
        return "a passphrase (PULUMI_CONFIG_PASSPHRASE)"
    if provider == "default":
        return ("the backend's default (Pulumi Cloud: its per-stack key; a self-managed backend: a passphrase); "
                "the stack file names no secrets provider")
    return provider


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


def _cost(run: ProgramRun) -> dict[str, Any]:
    return estimate(run.resources, region=run.stack.values.get("aws:region", ""))


def _document(report: Report, access: list[Decision] | None = None,
              cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document without the policy findings (which may still be coming)."""
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
        "secretsProvider": run.stack.secrets_provider,
        "firstInstalls": outputs.get("firstInstalls", []),
        "cost": _cost(run) if cost is None else cost,
        "access": [
            {"principal": d.principal, "secret": d.secret, "operation": d.operation, "decision": d.decision}
            for d in (_access(run) if access is None else access)
        ],
        "violations": [],
        "summary": {
            "resources": len(run.resources),
            "byType": dict(sorted(Counter(r.type for r in run.resources).items())),
            "mandatoryViolations": 0,
        },
    }


_ACCESS_SLOT = "\x00access\x00"
"""Stands in for the access list in the document json.dumps renders; no decision renders like it."""


def _write_json(document: dict[str, Any], access: list[Decision], out: TextIO) -> None:
    """`json.dump(document, out, indent=2)` with `document["access"]` made of `access`, byte for byte,
    but with the access list (principals x secrets x 4 cells: most of the document) written by a
    template instead of the pure-Python indenting encoder, and everything streamed (peak memory)."""
    slot = json.dumps(_ACCESS_SLOT)
    enc = json.encoder.encode_basestring_ascii  # what json.dump uses for a str with ensure_ascii
    for chunk in json.JSONEncoder(indent=2).iterencode({**document, "access": _ACCESS_SLOT}):
        if chunk != slot:
            out.write(chunk)
            continue
        if not access:
            out.write("[]")
            continue
        separator = "[\n"
        for d in access:
            out.write(f'{separator}    {{\n      "principal": {enc(d.principal)},\n      "secret": {enc(d.secret)},\n'
                      f'      "operation": {enc(d.operation)},\n      "decision": {enc(d.decision)}\n    }}')
            separator = ",\n"
        out.write("\n  ]")


def _add_violations(document: dict[str, Any], report: Report) -> dict[str, Any]:
    document["violations"] = [
        {"policy": v.policy, "enforcement": v.enforcement, "urn": v.urn, "message": v.message,
         **({"suppressed": True, "reason": v.reason} if v.suppressed else {}),
         **({"undecided": True} if v.undecided else {})}
        for v in report.violations
    ]
    document["summary"]["mandatoryViolations"] = len(report.mandatory)
    return document


def to_json(report: Report, access: list[Decision] | None = None,
            cost: dict[str, Any] | None = None) -> dict[str, Any]:
    report.wait()
    return _add_violations(_document(report, access, cost), report)


def _describe(resource: CollectedResource) -> str:
    inputs = redacted(resource.inputs)
    notes = []
    if resource.type == "aws:secretsmanager/secret:Secret":
        notes.append(f"name={inputs.get('name')}")
        notes.append(f"class={inputs.get('tags', {}).get('class')}")
        notes.append(f"rotation={inputs.get('tags', {}).get('rotation')}")
        if inputs.get("tags", {}).get("first-value") == "rotation":
            notes.append("value=made by the rotation function at deploy, never in state")
        elif inputs.get("tags", {}).get("first-value") == "function":
            notes.append("value=made once by the first-value function at deploy, never in state")
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


def render_text(report: Report, out: TextIO, access: list[Decision] | None = None,
                cost: dict[str, Any] | None = None) -> None:
    report.wait()
    run = report.run
    values = run.stack.values
    out.write(
        f"Offline preview of stack '{run.stack.stack}' (project {run.stack.project}, region "
        f"{values.get('aws:region')}, account {values.get(run.stack.project + ':accountId')})\n"
        f"State secrets: {state_secrets_line(run.stack)}\n"
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
    out.write(render_access(_access(run) if access is None else access))
    out.write("\n")
    for line in summary_lines(_cost(run) if cost is None else cost):
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


def _write_timings(path: Path, phases: Phases, report: Report, policies: bool) -> None:
    timing = policy_check.LAST_TIMING
    path.write_text(json.dumps({
        "phases": {name: round(s, 4) for name, s in phases.seconds.items()},
        "peak_mb_after": {name: round(mb, 1) for name, mb in phases.peak_mb.items()},
        "total_s": round(time.perf_counter() - phases.started, 4),
        "resources": len(report.run.resources),
        "pack": {"start_s": round(timing.start, 4), "analyze_s": round(timing.analyze, 4),
                 "analyze_stack_s": round(timing.analyze_stack, 4), "resources": timing.resources,
                 "peak_mb": round(timing.pack_peak_mb, 1), "cpu_s": round(timing.pack_cpu_s, 3)}
        if policies else None,
    }, indent=2) + "\n")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
         started: float | None = None, exiting: bool = False) -> int:
    """The command; `exiting=True` (`python -m preview`) when the process ends with it, so that the
    program's garbage is left to the exit rather than collected (`run_program(collect=False)`)."""
    parser = argparse.ArgumentParser(prog="python -m preview", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--project-dir", type=Path, default=REPO)
    parser.add_argument("--config-file", type=Path, default=None,
                        help="a stack config file other than Pulumi.<stack>.yaml (e.g. an example's)")
    parser.add_argument("--no-policies", action="store_true", help="skip the policy pack")
    parser.add_argument("--policy-config", type=Path, default=None,
                        help="policy pack config (default: policies/config/<stack>.json when it exists)")
    parser.add_argument("--timings", type=Path, default=None, metavar="FILE",
                        help="write the wall time of each phase (load, program, pack, matrix, cost, render) "
                        "to FILE as JSON")
    args = parser.parse_args(argv)
    phases = Phases(started)
    try:
        report = preview(args.stack, args.project_dir.resolve(), args.config_file, not args.no_policies,
                         args.policy_config, wait=False, phases=phases, collect=not exiting)
    except ConfigurationError as exc:
        if args.config_file is not None and exc.file == f"Pulumi.{args.stack}.yaml":
            # The program knows only its stack's name; the file it read is the one given here.
            exc = ConfigurationError(str(args.config_file), exc.reason, secret=exc.secret, field=exc.field)
        err.write(f"error: {exc}\n")
        return 2
    # What does not depend on the policy pack is computed while the pack checks the stack.
    with phases("matrix"):
        access = _access(report.run)
    with phases("cost"):
        cost = _cost(report.run)
    if args.format == "json":
        with phases("render"):
            document = _document(report, [], cost)
        with phases("pack"):
            report.wait()
        with phases("render"):
            _write_json(_add_violations(document, report), access, out)
            out.write("\n")
    else:
        with phases("pack"):
            report.wait()
        with phases("render"):
            render_text(report, out, access, cost)
    if args.timings is not None:
        _write_timings(args.timings, phases, report, not args.no_policies)
    if report.mandatory:
        err.write(f"error: {len(report.mandatory)} mandatory policy violation(s)\n")
        return 1
    return 0
