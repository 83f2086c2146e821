"""Evaluate the CrossGuard policy pack offline, exactly as the Pulumi engine does.

The pack is started the way the engine starts it (`python -m pulumi.policy <address> <pack dir>`,
with PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN / PULUMI_CONFIG in its environment), then driven
over gRPC: GetAnalyzerInfo, Configure (every policy with an explicit enforcement level: a level left
out would mean ADVISORY), Analyze once per resource, AnalyzeStack once. Policy config is reconciled
as the engine does (schema defaults, then "all", then per-policy entries).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from preview.model import CollectedResource

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PACK_DIR = REPO / "policies"

LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}

SUPPRESSED_PREFIX = "suppressed by policy config; reason: "
WOULD_REPORT = "; would report: "
FINDING_SEPARATOR = " || "
UNDECIDED_MARK = "during preview"

IN_FLIGHT = 64
"""Analyze calls kept in flight: pipelining hides the per-call round trip."""
START_TIMEOUT_S = 30.0


class PolicyPackError(RuntimeError):
    """The pack did not start or rejected a call."""


@dataclass(frozen=True)
class Violation:
    """One result of the pack: a violation, a suppressed finding, or an undecided rule."""

    policy: str
    enforcement: str
    """"advisory" or "mandatory" (suppressed findings carry the level the rule is configured at)."""
    urn: str
    message: str
    """What is wrong and how to fix it (the rule description the engine prepends is removed)."""
    suppressed: bool = False
    reason: str = ""
    """The written reason of the suppression, for suppressed findings."""
    undecided: bool = False
    """True when the rule could not decide because a value is unknown during preview."""

    @property
    def blocking(self) -> bool:
        return self.enforcement == "mandatory" and not self.suppressed and not self.undecided


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    enforcement: str
    stack: bool
    defaults: Mapping[str, Any]


@dataclass
class Timing:
    """What the last evaluate() call spent (seconds)."""

    start: float = 0.0
    analyze: float = 0.0
    analyze_stack: float = 0.0
    resources: int = 0

    @property
    def per_resource_ms(self) -> float:
        return 1000 * self.analyze / self.resources if self.resources else 0.0


LAST_TIMING = Timing()


def _value(v: Any) -> Any:
    """Inputs in a Struct-friendly shape (tuples to lists, keys to str)."""
    if isinstance(v, Mapping):
        return {str(k): _value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    return v


def _struct(d: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(_value(d))
    return s


def _options(r: CollectedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=r.protect,
        ignoreChanges=list(r.ignore_changes),
        additionalSecretOutputs=list(r.additional_secret_outputs),
        parent=r.parent or "",
    )


def _analyze_request(r: CollectedResource) -> analyzer_pb2.AnalyzeRequest:
    # Secrets stay wrapped, as the engine sends them; the SDK unwraps them for the policies.
    return analyzer_pb2.AnalyzeRequest(
        type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name, options=_options(r)
    )


def _stack_resource(r: CollectedResource) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        type=r.type,
        properties=_struct(r.inputs),
        urn=r.urn,
        name=r.name,
        options=_options(r),
        parent=r.parent or "",
        dependencies=list(r.dependencies),
        propertyDependencies={
            k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
            for k, v in r.property_dependencies.items()
        },
    )


class _Pack:
    """A running policy pack process and its gRPC channel."""

    def __init__(self, pack_dir: Path, env: Mapping[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, **env},
            cwd=str(pack_dir),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.close()
            raise PolicyPackError(f"policy pack at {pack_dir} did not start: {self.stderr() or line!r}")
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{line}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT_S)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def close(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def _policy_infos(info: analyzer_pb2.AnalyzerInfo) -> dict[str, PolicyInfo]:
    result = {}
    for p in info.policies:
        props = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
        defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
        result[p.name] = PolicyInfo(
            name=p.name,
            description=p.description,
            enforcement=LEVEL_NAMES[p.enforcementLevel],
            stack=p.policy_type == analyzer_pb2.POLICY_TYPE_STACK,
            defaults=defaults,
        )
    return result


def reconcile_config(
    policies: Mapping[str, PolicyInfo], given: Mapping[str, Any] | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Engine semantics (ReconcilePolicyPackConfig): defaults, then "all", then per-policy config.

    `given` is the `--policy-pack-config` JSON: `{"all": "advisory", "<policy>": "disabled" |
    {"enforcementLevel": ..., "<property>": ...}}`. Unknown policy names are an error here (the
    engine ignores them silently, which hides typos).
    """
    result = {name: (p.enforcement, dict(p.defaults)) for name, p in policies.items()}
    given = dict(given or {})
    unknown = sorted(set(given) - set(policies) - {"all"})
    if unknown:
        raise ValueError(f"policy config names unknown policies: {', '.join(unknown)}")
    if "all" in given:
        level = given["all"] if isinstance(given["all"], str) else given["all"].get("enforcementLevel")
        if level:
            result = {n: (str(level), props) for n, (_, props) in result.items()}
    for name, value in given.items():
        if name == "all":
            continue
        level, props = result[name]
        if isinstance(value, str):
            level = value
        else:
            value = dict(value)
            level = str(value.pop("enforcementLevel", level))
            props.update(value)
        result[name] = (level, props)
    for name, (level, _) in result.items():
        if level not in LEVELS:
            raise ValueError(f"policy {name}: enforcement level {level!r} is not one of {', '.join(LEVELS)}")
    return result


def _message(diag: analyzer_pb2.AnalyzeDiagnostic) -> str:
    prefix = diag.description + "\n"
    return diag.message[len(prefix) :] if diag.message.startswith(prefix) else diag.message


def _collect(
    response: analyzer_pb2.AnalyzeResponse,
    urn: str,
    levels: Mapping[str, str],
    out: list[Violation],
) -> None:
    for d in response.diagnostics:
        undecided = UNDECIDED_MARK in d.message and d.message.startswith("can't run policy")
        out.append(
            Violation(
                policy=d.policyName,
                enforcement=LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                urn=d.urn or urn,
                message=_message(d),
                undecided=undecided,
            )
        )
    for na in response.not_applicable:
        if not na.reason.startswith(SUPPRESSED_PREFIX):
            continue
        reason, _, findings = na.reason[len(SUPPRESSED_PREFIX) :].partition(WOULD_REPORT)
        for finding in findings.split(FINDING_SEPARATOR):
            out.append(
                Violation(
                    policy=na.policy_name,
                    enforcement=levels.get(na.policy_name, "advisory"),
                    urn=urn,
                    message=finding,
                    suppressed=True,
                    reason=reason,
                )
            )


def evaluate(
    resources: list[CollectedResource],
    *,
    project: str,
    stack: str,
    policy_config: dict[str, Any] | None = None,
    pack_dir: Path = DEFAULT_PACK_DIR,
    stack_config: Mapping[str, str] | None = None,
    organization: str = "organization",
) -> list[Violation]:
    """Run the policy pack over `resources` and return its violations, suppressions and undecided rules.

    `policy_config` has the format of `pulumi preview --policy-pack-config <file>`.
    `stack_config` is the stack's config as the engine passes it to the pack (PULUMI_CONFIG:
    `{"<project>:<key>": "<string or JSON>"}`, secrets decrypted); the secret-value-source rule
    accepts secret values equal to a config value.
    """
    env = {
        "PULUMI_PROJECT": project,
        "PULUMI_STACK": stack,
        "PULUMI_ORGANIZATION": organization,
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps(dict(stack_config or {})),
    }
    t0 = time.perf_counter()
    pack = _Pack(pack_dir, env)
    try:
        return drive(pack.stub, resources, policy_config, started=t0)
    except grpc.RpcError as exc:
        raise PolicyPackError(f"policy pack call failed: {exc}\n{pack.stderr()}") from exc
    finally:
        pack.close()


def drive(
    stub: Any,
    resources: list[CollectedResource],
    policy_config: Mapping[str, Any] | None = None,
    *,
    started: float | None = None,
) -> list[Violation]:
    """The engine's conversation with an analyzer `stub` (an AnalyzerStub, or anything shaped like one)."""
    t0 = time.perf_counter() if started is None else started
    violations: list[Violation] = []
    info = stub.GetAnalyzerInfo(empty_pb2.Empty())
    policies = _policy_infos(info)
    config = reconcile_config(policies, policy_config)
    levels = {name: level for name, (level, _) in config.items()}
    stub.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(props))
                for name, (level, props) in config.items()
            }
        )
    )
    LAST_TIMING.start = time.perf_counter() - t0

    t1 = time.perf_counter()
    pending: deque[tuple[str, Any]] = deque()
    for r in resources:
        pending.append((r.urn, stub.Analyze.future(_analyze_request(r))))
        if len(pending) >= IN_FLIGHT:
            urn, fut = pending.popleft()
            _collect(fut.result(), urn, levels, violations)
    while pending:
        urn, fut = pending.popleft()
        _collect(fut.result(), urn, levels, violations)
    LAST_TIMING.analyze = time.perf_counter() - t1
    LAST_TIMING.resources = len(resources)

    t2 = time.perf_counter()
    stack_response = stub.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=[_stack_resource(r) for r in resources])
    )
    _collect(stack_response, "", levels, violations)
    LAST_TIMING.analyze_stack = time.perf_counter() - t2
    return violations


def blocking(violations: Iterable[Violation]) -> list[Violation]:
    """The violations that would stop `pulumi up`."""
    return [v for v in violations if v.blocking]
