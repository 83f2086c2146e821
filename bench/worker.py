"""One measurement in a fresh process: `python -m bench.worker <mode> <project dir> [options]`.

Modes: `ours` (the repository's `__main__.py`, what `python -m preview` runs), `plain`
(bench/plain_program.py). Both run through `preview.runtime.run_program` with the stack config
`preview.cli.preview` builds. The libraries both programs import are imported before the clock
starts, so the time is the program's run under the mock runtime. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib
import json
import os
import pstats
import re
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = {"ours": REPO / "__main__.py", "plain": REPO / "bench" / "plain_program.py"}
PRELOAD = (
    "pulumi", "pulumi_random", "pulumi_aws", "pulumi_aws.secretsmanager", "pulumi_aws.kms", "pulumi_aws.iam",
    "pulumi_aws.lambda_", "pulumi_aws.cloudwatch", "pulumi_aws.sns", "yaml", "pydantic",
    "components.environment", "components.catalog", "components.settings", "preview.runtime", "preview.cli",
    "preview.policy_check",
)


def _cpu_s() -> float:
    """User + system CPU time of this process, all threads (less sensitive than wall time to other
    work on the machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _maxrss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would include the parent's peak at fork, which Linux
    carries across exec); ru_maxrss where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _walk(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, pattern) for v in value]
    if isinstance(value, str) and pattern is not None and len(value) >= 16:
        return pattern.sub("<generated>", value)
    return value


def fingerprint(run: Any) -> str:
    """A hash of every custom resource's type, name, options and inputs, with generated values and
    the preview's stand-ins for `secure:` config masked, so that two runs can be compared. The
    resources it depends on (`depends_on` and the inputs' sources, per property) are named by type
    and logical name, not URN: the plain program's resources have no component parents, so their
    URNs differ by design."""
    from preview.model import plain

    randoms = set(run.generated) | {run.stack.values[k] for k in run.stack.secret_keys}
    pattern = re.compile("|".join(re.escape(g) for g in sorted(randoms, key=len, reverse=True))) if randoms else None
    names = {r.urn: f"{r.type}::{r.name}" for r in run.resources}

    def named(urns: Any) -> list[str]:
        return sorted({names.get(u, u) for u in urns})

    digest = hashlib.sha256()
    for r in sorted((r for r in run.resources if r.custom), key=lambda r: (r.type, r.name)):
        entry = [r.type, r.name, r.protect, r.retain_on_delete, list(r.ignore_changes),
                 sorted(r.additional_secret_outputs), _walk(plain(r.inputs), pattern), named(r.dependencies),
                 {k: named(v) for k, v in sorted(r.property_dependencies.items())}]
        digest.update(json.dumps(entry, sort_keys=True).encode())
    return digest.hexdigest()


class ThreadProfiles:
    """cProfile for the main thread and for every worker thread of the preview's executor (the SDK
    registers resources there): Python 3.11's profiler sees only the thread that enabled it."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        from preview import runtime

        original = runtime._LoopOwningExecutor._make_loop

        def make_loop(executor: Any) -> None:
            original(executor)
            profile = cProfile.Profile()
            with self._lock:
                self.profiles.append(profile)
            profile.enable()

        runtime._LoopOwningExecutor._make_loop = make_loop  # type: ignore[method-assign,assignment]

    def stats(self, main: cProfile.Profile) -> pstats.Stats:
        stats = pstats.Stats(main)
        for profile in self.profiles:
            stats.add(profile)
        return stats


IDLE = ("SimpleQueue' objects>", "epoll' objects>", "lock' objects>", "time.sleep", "Condition", "_thread.lock")
"""Built-ins where a thread waits (an idle executor thread, the event loop's poll): not work."""

CATEGORIES = (
    ("project components (components/, __main__.py)", (f"{REPO}/components/", f"{REPO}/__main__.py")),
    ("offline preview (preview/)", f"{REPO}/preview/"),
    ("Pulumi SDK (pulumi/)", "/site-packages/pulumi/"),
    ("pulumi_aws / pulumi_random", "/site-packages/pulumi_"),
    ("protobuf / grpc", "/site-packages/google/"),
    ("pydantic", "/site-packages/pydantic"),
    ("asyncio", "/asyncio/"),
    ("threads / futures / queues", ("/threading.py", "/concurrent/", "/queue.py")),
    ("other Python", "/"),
    ("built-ins (C)", ""),
)


CLIMB = ("other Python", "built-ins (C)")
"""Categories whose own time is charged to their callers (a C built-in or a stdlib helper is spent
on behalf of whoever called it), up to the first caller in another category."""


def _category(filename: str) -> str:
    for name, needle in CATEGORIES:
        needles = needle if isinstance(needle, tuple) else (needle,)
        if name == "built-ins (C)" or any(n in filename for n in needles):
            return name
    return "built-ins (C)"


def summarize(stats: pstats.Stats, wall: float, top: int = 15) -> dict[str, Any]:
    """Top functions by own time, and own time by category (whole process, all threads); the own
    time of C built-ins and stdlib helpers is charged to the category of their nearest caller
    outside those two (`own_time_by_category`; `own_time_by_file_category` does not charge it)."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    idle = {k for k in raw if k[0] == "~" and any(i in k[2] for i in IDLE)}
    idle_s = sum(raw[k][2] for k in idle)
    total = sum(v[2] for k, v in raw.items() if k not in idle)
    by_file: dict[str, float] = {}
    charged: dict[str, float] = {}

    def charge(key: Any, amount: float, depth: int) -> None:
        category = _category(key[0])
        callers = raw[key][4] if key in raw else {}
        if category not in CLIMB or depth >= 12 or not callers:
            name = category if category not in CLIMB else "stdlib / C (caller unknown)"
            charged[name] = charged.get(name, 0.0) + amount
            return
        weights = {c: max(v[3], 1e-9) for c, v in callers.items()}
        whole = sum(weights.values())
        for caller, weight in weights.items():
            charge(caller, amount * weight / whole, depth + 1)

    for key, (_cc, _nc, tt, _ct, _callers) in raw.items():
        if key in idle:
            continue
        by_file[_category(key[0])] = by_file.get(_category(key[0]), 0.0) + tt
        charge(key, tt, 0)

    def where(key: tuple[str, int, str]) -> str:
        filename, line, fn = key
        short = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", filename.replace(str(REPO) + "/", ""))
        return f"{short}:{line}({fn})" if line else fn

    def shares(seconds: dict[str, float]) -> dict[str, dict[str, float]]:
        ordered = sorted(seconds.items(), key=lambda kv: kv[1], reverse=True)
        return {k: {"s": round(v, 3), "share": round(v / total, 3)} for k, v in ordered}

    entries = sorted(((k, v) for k, v in raw.items() if k not in idle), key=lambda kv: kv[1][2], reverse=True)[:top]
    cumulative = sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)
    return {
        "profiled_wall_s": round(wall, 3),
        "busy_own_time_s": round(total, 3),
        "idle_wait_s": round(idle_s, 3),
        "own_time_by_category": shares(charged),
        "own_time_by_file_category": shares(by_file),
        "top_own_time": [
            {"function": where(k), "calls": v[1], "own_s": round(v[2], 3), "cumulative_s": round(v[3], 3)}
            for k, v in entries
        ],
        "top_cumulative_project": [
            {"function": where(k), "calls": v[1], "cumulative_s": round(v[3], 3)}
            for k, v in cumulative
            if str(REPO) in k[0] and "/.venv/" not in k[0] and "site-packages" not in k[0]
        ][:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("program", choices=sorted(PROGRAMS))
    parser.add_argument("project_dir", type=Path)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--policy", action="store_true", help="then evaluate the policy pack over the resources")
    parser.add_argument("--profile", action="store_true", help="run under cProfile (all threads); summarize")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    for module in PRELOAD:
        importlib.import_module(module)
    import_s = time.perf_counter() - t0
    from components.values import offline_stand_ins
    from preview import policy_check
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    baseline_mb = _maxrss_mb()
    profiles = ThreadProfiles()
    main_profile = cProfile.Profile()
    if args.profile:
        profiles.install()
        main_profile.enable()
    if os.environ.get("BENCH_GC") == "off":
        gc.disable()
    cpu0 = _cpu_s()
    t1 = time.perf_counter()
    # What preview.cli.preview does before running the program.
    config = load_stack_config(args.project_dir, args.stack)
    with offline_stand_ins(config.secret_keys):
        run = run_program(config, args.project_dir, str(PROGRAMS[args.program]))
    wall = time.perf_counter() - t1
    cpu = _cpu_s() - cpu0
    if args.profile:
        main_profile.disable()
    peak_mb = _maxrss_mb()

    custom = [r for r in run.resources if r.custom]
    result: dict[str, Any] = {
        "program": args.program,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "import_s": round(import_s, 3),
        "resources": len(custom),
        "components": len(run.resources) - len(custom),
        "by_type": dict(sorted(Counter(r.type for r in custom).items())),
        "baseline_mb": round(baseline_mb, 1),
        "peak_mb": round(peak_mb, 1),
        "per_resource_ms": round(1000 * wall / len(custom), 4) if custom else None,
        "fingerprint": fingerprint(run),
    }
    if args.profile:
        result["profile"] = summarize(profiles.stats(main_profile), wall)
    if args.policy:
        pack_settings = policy_check.DEFAULT_PACK_DIR / "config" / f"{args.stack}.json"
        t2 = time.perf_counter()
        violations = policy_check.evaluate(
            run.resources, project=config.project, stack=config.stack, pack_dir=policy_check.DEFAULT_PACK_DIR,
            policy_config=json.loads(pack_settings.read_text()) if pack_settings.is_file() else None,
            stack_config=config.values,
        )
        total = time.perf_counter() - t2
        timing = policy_check.LAST_TIMING
        result["policy"] = {
            "resources": timing.resources,
            "total_s": round(total, 4),
            "start_s": round(timing.start, 4),
            "analyze_s": round(timing.analyze, 4),
            "analyze_stack_s": round(timing.analyze_stack, 4),
            "per_resource_ms": round(1000 * total / timing.resources, 4) if timing.resources else None,
            "analyze_per_resource_ms": round(timing.per_resource_ms, 4),
            "pack_cpu_s": round(timing.pack_cpu_s, 4),
            "pack_cpu_per_resource_ms": round(1000 * timing.pack_cpu_s / timing.resources, 4)
            if timing.resources else None,
            "violations": len(violations),
            "blocking": sum(v.blocking for v in violations),
        }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
