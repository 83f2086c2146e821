"""Run the real `__main__.py` under Pulumi's mock runtime and collect what it registers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from components.account import stand_in as account_stand_in
from components.errors import ConfigurationError
from preview.mocks import AwsMocks, adopted_arns, configured_roles
from preview.model import CollectedResource
from preview.stackconfig import StackConfig

STACK_TYPE = "pulumi:pulumi:Stack"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, plus a record of every registration with its options (which MockResourceArgs lacks)."""

    def __init__(self, mocks: pulumi.runtime.Mocks,
                 on_resource: Callable[[CollectedResource], None] | None = None):
        super().__init__(mocks)
        self.records: list[CollectedResource] = []
        self._urns: set[str] = set()
        self._lock = threading.Lock()
        self._on_resource = on_resource
        """Called with each record as it is registered (on the SDK's worker threads)."""
        self.component_outputs: dict[str, dict[str, Any]] = {}
        """URN -> what a component (or the stack) passed to `register_outputs`, in wire form."""

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives: the parent's whole qualified type chain, without the root stack's
        type (pulumi's `resource.NewURN`, called with the parent URN's `QualifiedType()`). The mock
        monitor keeps only the parent's last type and prefixes `pulumi:pulumi:Stack$` to top-level
        resources, so its URNs are not the ones `pulumi up --replace` or `pulumi state` take."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        # The wire form, exactly what the engine hands a policy pack: secrets, assets and unknowns
        # stay as their signature objects, numbers are floats.
        inputs = json_format.MessageToDict(request.object)
        record = CollectedResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            protect=bool(request.protect),
            custom=bool(request.custom),
            inputs=inputs,
            dependencies=tuple(request.dependencies),
            property_dependencies={k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
            ignore_changes=tuple(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
            provider=request.provider,
            import_id=request.importId,
            delete_before_replace=bool(request.deleteBeforeReplace),
        )
        with self._lock:
            # The engine refuses a second resource with the same URN; the mock monitor would take it.
            if record.urn in self._urns:
                raise RuntimeError(f"duplicate resource URN {record.urn}: the Pulumi engine refuses it")
            self._urns.add(record.urn)
            self.records.append(record)
        if self._on_resource is not None:
            self._on_resource(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        with self._lock:
            self.component_outputs[request.urn] = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class ProgramRun:
    """Everything one mocked run of the program produced."""

    stack: StackConfig
    resources: list[CollectedResource]
    outputs: dict[str, Any]
    """Stack outputs; secret ones stay wrapped (see preview.model.redacted)."""
    stack_urn: str
    generated: list[str] = field(default_factory=list)
    """Values the mocks generated (for leak checks; never printed)."""
    warnings: list[str] = field(default_factory=list)
    """What the program logged as warnings (`pulumi.log.warn`), which the engine would show."""
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """URN -> the outputs a component registered (kept in the state; the stack's own are `outputs`)."""


class _Pump:
    """A stack transformation that changes no resource: every `every` resources the program constructs,
    it runs the event loop a few turns, so that the registrations already queued proceed while the
    program goes on. Without it the program declares every resource before the loop runs once, and
    every registration waits at the same time (bench/: peak RSS 396 -> 311 MB at 1,000 secrets, same
    time). Inside an `apply` (the loop is running) it does nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: int = 64, turns: int = 3) -> None:
        self.loop, self.every, self.turns, self.seen = loop, every, turns, 0

    def __call__(self, args: pulumi.ResourceTransformationArgs) -> None:
        self.seen += 1
        if self.seen % self.every or self.loop.is_running():
            return None
        for _ in range(self.turns):
            self.loop.run_until_complete(asyncio.sleep(0))
        return None


class _LoopOwningExecutor(ThreadPoolExecutor):
    """The SDK registers resources on the default executor and each worker thread needs an event
    loop (pulumi.runtime.sync_await._ensure_event_loop); this executor makes those loops itself so
    that it can close them when the run ends instead of leaking one per thread."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        super().__init__(thread_name_prefix="preview", initializer=self._make_loop)

    def _make_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loops.append(loop)

    def close_loops(self) -> None:
        for loop in self.loops:
            loop.close()


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    inserted = str(path) not in sys.path
    if inserted:
        sys.path.insert(0, str(path))
    try:
        yield
    finally:
        os.chdir(previous)
        if inserted:
            sys.path.remove(str(path))


_EMPTY_TRACE = source_pb2.StackTrace()


@contextlib.contextmanager
def _without_stack_traces() -> Iterator[None]:
    """The SDK captures the Python stack of every registration (traceback.extract_stack, reading
    source lines) to send the engine a source position; RecordingMonitor records neither the trace
    nor the position, so a preview skips the capture (bench/: about 0.1 ms per registration). If the
    SDK no longer has the hook, nothing changes."""
    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    sdk_resource._get_stack_trace = lambda: _EMPTY_TRACE
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = original


async def _resolve(output: Any) -> Any:
    """An Output's value, wrapped as an RPC secret if the Output is secret."""
    if isinstance(output, pulumi.Output):
        value = await output.future(with_unknowns=True)
        value = await _resolve(value)
        return rpc.wrap_rpc_secret(value) if await output.is_secret() else value
    if isinstance(output, dict):
        return {k: await _resolve(v) for k, v in output.items()}
    if isinstance(output, list):
        return [await _resolve(v) for v in output]
    return output


def run_program(stack: StackConfig, project_dir: Path, program: str = "__main__.py", *,
                on_resource: Callable[[CollectedResource], None] | None = None,
                collect: bool = True, preview: bool = True, mocks: AwsMocks | None = None) -> ProgramRun:
    """Run the program once with the stack's config; raises what the program raises.

    `on_resource` sees each record as it is registered (from the SDK's worker threads), so that the
    policy pack can analyze it while the program runs, as the engine does. `collect=False` skips the
    final garbage collection (about a second at 1,000 secrets) for a process that exits soon after:
    what the run left is frozen instead (`gc.freeze`), so later collections do not walk it again.
    `preview=False` runs the program as `pulumi up` would (`pulumi.runtime.is_dry_run()` is false);
    `mocks` replaces the default answers (a test's account state).
    """
    region = stack.values.get("aws:region", "us-east-1")
    account = stack.values.get(f"{stack.project}:accountId", "000000000000")
    loop = asyncio.new_event_loop()
    executor = _LoopOwningExecutor()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    # A second run in one process must not parent its resources to the previous run's stack, nor
    # wait on RPCs a failed previous run left behind on its (closed) loop: reset both, as
    # pulumi.runtime.test does.
    settings.ROOT.set(None)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(dict(stack.values), list(stack.secret_keys))
    mocks = mocks or AwsMocks(region, account, configured_roles(stack.values.get(f"{stack.project}:principals")),
                              adopted_arns(stack.values.get(f"{stack.project}:adopt")))
    monitor = RecordingMonitor(mocks, on_resource)
    warnings = _WarningLog()
    pulumi.runtime.set_mocks(
        monitor.mocks, project=stack.project, stack=stack.stack, preview=preview, monitor=monitor, logger=warnings
    )
    root = settings.get_root_resource()
    assert root is not None
    pulumi.runtime.register_stack_transformation(_Pump(loop))
    # The SDK makes many short-lived cyclic objects (futures, callbacks); the cyclic collector then
    # spends about half of a large run re-walking the same live graph (bench/: 15.6 s -> 8.3 s at
    # 1,000 secrets). Collect once at the end instead; reference counting still frees the rest.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with _in_directory(project_dir), _without_stack_traces(), account_stand_in(mocks):
            try:
                runpy.run_path(program, run_name="__main__")
            except ConfigurationError as exc:
                # How far the program got: a user mistake must stop it before any cloud resource is
                # registered (a component's own registration creates nothing in AWS).
                exc.registered = sum(1 for r in monitor.records if r.custom)
                raise
            loop.run_until_complete(wait_for_rpcs())
            outputs = loop.run_until_complete(_resolve(dict(getattr(root, "outputs", {}))))
            stack_urn = _sync_await(root.urn.future()) or ""
    finally:
        # A program that failed leaves the SDK's tasks pending; cancel them on this loop rather
        # than let them be destroyed with it.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
        executor.close_loops()
        loop.close()
        asyncio.set_event_loop(None)
        if collecting:
            if not collect:
                gc.freeze()
            gc.enable()
            if collect:
                gc.collect()
    resources = sorted(monitor.records, key=lambda r: r.urn)
    return ProgramRun(stack=stack, resources=resources, outputs=outputs, stack_urn=stack_urn,
                      generated=list(mocks.generated), warnings=list(warnings.messages),
                      component_outputs=dict(monitor.component_outputs))


class _WarningLog(logging.Logger):
    """Where the mock engine sends `pulumi.log` messages: the warnings are kept for the report."""

    def __init__(self) -> None:
        super().__init__("preview.program", logging.WARNING)
        self.messages: list[str] = []

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.messages.append(str(msg))
