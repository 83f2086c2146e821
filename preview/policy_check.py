"""Evaluate the CrossGuard policy pack offline, exactly as the Pulumi engine does.

The pack is started the way the engine starts it (`python -m pulumi.policy <address> <pack dir>`,
with PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN / PULUMI_CONFIG in its environment), then driven
over gRPC: GetAnalyzerInfo, Configure (every policy with an explicit enforcement level: a level left
out would mean ADVISORY), Analyze once per resource, AnalyzeStack once. Policy config is reconciled
as the engine does (schema defaults, then "all", then per-policy entries).

`PackSession` does the same while the program runs: the pack starts beside the program and each
resource is analyzed as soon as it is registered (the engine, too, analyzes each resource as its
step is generated); AnalyzeStack follows once the program is done. The findings come out in the
same order as `evaluate`'s (by resource in the order given, then the stack's).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
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
    pack_peak_mb: float = 0.0
    """The pack process's peak resident memory (VmHWM), read before it is stopped."""
    pack_cpu_s: float = 0.0
    """The pack process's CPU time (user + system), read before it is stopped."""

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


def _stack_resource(
    r: CollectedResource, properties: struct_pb2.Struct | None = None
) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        type=r.type,
        properties=_struct(r.inputs) if properties is None else properties,
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
            with contextlib.suppress(subprocess.TimeoutExpired):  # let it finish writing why
                self.proc.wait(timeout=5)
            detail = self.stderr() or repr(line)
            self.close()
            raise PolicyPackError(f"policy pack at {pack_dir} did not start: {detail}")
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{line}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT_S)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def peak_mb(self) -> float:
        """The pack process's peak resident set (Linux VmHWM); 0 where /proc does not say."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
        """The pack process's CPU time so far (Linux /proc; 0 where it does not say)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
    legacy_config: bool = False,
) -> list[Violation]:
    """Run the policy pack over `resources` and return its violations, suppressions and undecided rules.

    `policy_config` has the format of `pulumi preview --policy-pack-config <file>`.
    `stack_config` is the stack's config as the engine passes it to the pack (ConfigureStack's config, or
    PULUMI_CONFIG with `legacy_config`: `{"<project>:<key>": "<string or JSON>"}`, secrets decrypted); the
    secret-value-source rule accepts secret values equal to a config value.
    """
    env = _pack_env(project, stack, stack_config, organization, legacy=legacy_config)
    t0 = time.perf_counter()
    pack = _Pack(pack_dir, env)
    request = None if legacy_config else stack_request(project, stack, stack_config, organization)
    try:
        found = drive(pack.stub, resources, policy_config, started=t0, stack=request)
        LAST_TIMING.pack_peak_mb = pack.peak_mb()
        LAST_TIMING.pack_cpu_s = pack.cpu_s()
        return found
    except grpc.RpcError as exc:
        raise PolicyPackError(f"policy pack call failed: {exc}\n{pack.stderr()}") from exc
    finally:
        pack.close()


def _configure(stub: Any, policy_config: Mapping[str, Any] | None,
               stack: analyzer_pb2.AnalyzerStackConfigureRequest | None = None) -> dict[str, str]:
    """GetAnalyzerInfo, ConfigureStack (when given) and Configure, as the engine does; returns each policy's
    enforcement level."""
    if stack is not None:
        stub.ConfigureStack(stack)
    info = stub.GetAnalyzerInfo(empty_pb2.Empty())
    policies = _policy_infos(info)
    config = reconcile_config(policies, policy_config)
    stub.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(props))
                for name, (level, props) in config.items()
            }
        )
    )
    return {name: level for name, (level, _) in config.items()}


def _stack_request(
    resources: list[CollectedResource], sent: Mapping[int, analyzer_pb2.AnalyzeRequest]
) -> analyzer_pb2.AnalyzeStackRequest:
    """AnalyzeStack's request; the properties already built for a resource's Analyze are reused."""
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        _stack_resource(r, sent[id(r)].properties if id(r) in sent else None) for r in resources
    ])


def drive(
    stub: Any,
    resources: list[CollectedResource],
    policy_config: Mapping[str, Any] | None = None,
    *,
    started: float | None = None,
    stack: analyzer_pb2.AnalyzerStackConfigureRequest | None = None,
) -> list[Violation]:
    """The engine's conversation with an analyzer `stub` (an AnalyzerStub, or anything shaped like one)."""
    t0 = time.perf_counter() if started is None else started
    violations: list[Violation] = []
    levels = _configure(stub, policy_config, stack)
    LAST_TIMING.start = time.perf_counter() - t0

    t1 = time.perf_counter()
    sent: dict[int, analyzer_pb2.AnalyzeRequest] = {}
    pending: deque[tuple[str, Any]] = deque()
    for r in resources:
        request = sent[id(r)] = _analyze_request(r)
        pending.append((r.urn, stub.Analyze.future(request)))
        if len(pending) >= IN_FLIGHT:
            urn, fut = pending.popleft()
            _collect(fut.result(), urn, levels, violations)
    while pending:
        urn, fut = pending.popleft()
        _collect(fut.result(), urn, levels, violations)
    LAST_TIMING.analyze = time.perf_counter() - t1
    LAST_TIMING.resources = len(resources)

    t2 = time.perf_counter()
    stack_response = stub.AnalyzeStack(_stack_request(resources, sent))
    _collect(stack_response, "", levels, violations)
    LAST_TIMING.analyze_stack = time.perf_counter() - t2
    return violations


def _pack_env(project: str, stack: str, stack_config: Mapping[str, str] | None, organization: str, *,
              legacy: bool = False) -> dict[str, str]:
    """The pack's environment. Newer CLIs (a Python pack started through the language host's RunPlugin) leave
    PULUMI_CONFIG unset and send the config in ConfigureStack (pulumi/pulumi's analyzer test language host fails
    if it is set); `legacy` is the old shim's way, the config in PULUMI_CONFIG."""
    env = {
        "PULUMI_PROJECT": project,
        "PULUMI_STACK": stack,
        "PULUMI_ORGANIZATION": organization,
        "PULUMI_DRY_RUN": "true",
    }
    if legacy:
        env["PULUMI_CONFIG"] = json.dumps(dict(stack_config or {}))
    return env


def stack_request(project: str, stack: str, stack_config: Mapping[str, str] | None,
                  organization: str) -> analyzer_pb2.AnalyzerStackConfigureRequest:
    """ConfigureStack's request as the engine sends it: the stack config as strings (JSON text for structured
    values), secrets decrypted and listed by key."""
    config = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (stack_config or {}).items()}
    return analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=project, organization=organization,
                                                      dry_run=True, config=config)


class PackSession:
    """The policy pack running beside the program: `submit` each resource as it is registered (from
    any thread), then `finish` with the final resource list, then `violations()`; `close()` on any
    failure.

    A thread of its own starts the pack, configures it and sends the Analyze calls, so that the
    program never waits for the pack, whose process works on the other core meanwhile. `finish`
    sends AnalyzeStack and returns at once, so that the caller can compute what does not depend on
    the pack (access matrix, cost) while the pack checks the stack.
    """

    def __init__(
        self,
        *,
        project: str,
        stack: str,
        policy_config: Mapping[str, Any] | None = None,
        pack_dir: Path = DEFAULT_PACK_DIR,
        stack_config: Mapping[str, str] | None = None,
        organization: str = "organization",
    ) -> None:
        self._t0 = time.perf_counter()
        self._env = _pack_env(project, stack, stack_config, organization)
        self._stack = stack_request(project, stack, stack_config, organization)
        self._pack_dir = pack_dir
        self._policy_config = policy_config
        self._queue: queue.SimpleQueue[CollectedResource | None] = queue.SimpleQueue()
        self._responses: dict[int, analyzer_pb2.AnalyzeResponse] = {}
        self._levels: dict[str, str] = {}
        self._pack: _Pack | None = None
        self._error: BaseException | None = None
        self._stack_future: Any = None
        self._stack_started = 0.0
        self._resources: list[CollectedResource] = []
        self._first_submit: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="policy-pack", daemon=True)
        self._thread.start()

    def submit(self, resource: CollectedResource) -> None:
        """Queue one resource for Analyze (thread-safe, never blocks)."""
        if self._first_submit is None:
            self._first_submit = time.perf_counter()
        self._queue.put(resource)

    def _work(self) -> None:
        try:
            self._pack = _Pack(self._pack_dir, self._env)
            stub = self._pack.stub
            self._levels = _configure(stub, self._policy_config, self._stack)
            LAST_TIMING.start = time.perf_counter() - self._t0
            pending: deque[tuple[int, Any]] = deque()
            while (r := self._queue.get()) is not None:
                pending.append((id(r), stub.Analyze.future(_analyze_request(r))))
                while pending and (len(pending) >= IN_FLIGHT or pending[0][1].done()):
                    key, fut = pending.popleft()
                    self._responses[key] = fut.result()
            while pending:
                key, fut = pending.popleft()
                self._responses[key] = fut.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish() in the caller's thread
            self._error = exc

    def finish(self, resources: list[CollectedResource]) -> None:
        """Every resource has been submitted: wait for the Analyze answers, send AnalyzeStack."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            detail = self.close()
            if isinstance(error, grpc.RpcError):
                raise PolicyPackError(f"policy pack call failed: {error}\n{detail}") from error
            raise error
        assert self._pack is not None
        LAST_TIMING.analyze = time.perf_counter() - (self._first_submit or self._t0)
        LAST_TIMING.resources = len(resources)
        for r in resources:
            if id(r) not in self._responses:  # not submitted while the program ran
                self._responses[id(r)] = self._pack.stub.Analyze(_analyze_request(r))
        self._resources = resources
        self._stack_started = time.perf_counter()
        # The properties are built again rather than kept from Analyze: keeping every request until
        # now would add its size to the preview's peak memory.
        self._stack_future = self._pack.stub.AnalyzeStack.future(_stack_request(resources, {}))

    def violations(self) -> list[Violation]:
        """The findings, in `evaluate`'s order; stops the pack."""
        assert self._stack_future is not None, "finish() first"
        try:
            stack_response = self._stack_future.result()
        except grpc.RpcError as exc:
            raise PolicyPackError(f"policy pack call failed: {exc}\n{self.close()}") from exc
        LAST_TIMING.analyze_stack = time.perf_counter() - self._stack_started
        LAST_TIMING.pack_peak_mb = self._pack.peak_mb() if self._pack is not None else 0.0
        LAST_TIMING.pack_cpu_s = self._pack.cpu_s() if self._pack is not None else 0.0
        found: list[Violation] = []
        for r in self._resources:
            _collect(self._responses[id(r)], r.urn, self._levels, found)
        _collect(stack_response, "", self._levels, found)
        self.close()
        return found

    def close(self) -> str:
        """Stop the pack (idempotent); returns what it wrote to stderr."""
        if self._closed:
            return ""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=START_TIMEOUT_S)
        if self._pack is None:
            return ""
        detail = self._pack.stderr()
        self._pack.close()
        return detail


def blocking(violations: Iterable[Violation]) -> list[Violation]:
    """The violations that would stop `pulumi up`."""
    return [v for v in violations if v.blocking]
