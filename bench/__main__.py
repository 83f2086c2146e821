"""`python -m bench` (what `make bench` runs): how the offline preview, the policy pack and the
rotation function scale. Nothing here passes or fails on time.

0. The command users run, end to end (bench/e2e.py): `python -m preview <stack> --format json` as a
   fresh process, for the CDK-shaped catalog (bench/generate.py `cdk_catalog`) and the
   mixed one below: process wall time, CPU time, peak RSS, and the phases the command reports
   (load, program, pack, matrix, cost, render); the lower of two runs.
1. Offline preview of generated catalogs (bench/generate.py) of 10, 100, 1,000 and 3,000 secrets,
   one fresh process per measurement (bench/worker.py): wall time, peak RSS, resources declared,
   time per resource; beside it the same resources declared by a plain program without components
   (bench/plain_program.py) under the same mock runtime, checked to be the same resources; and the
   ratio ours / plain.
2. The policy pack over the same resources, through preview.policy_check.evaluate.
3. cProfile of the 1,000-secret preview (all threads): where the time goes.
4. One full rotation per strategy against moto, PostgreSQL and Redis: wall time and Secrets
   Manager calls beside the protocol's minimum (bench/rotation_bench.py).

Results go to bench/results/<name>.json (default `full`, or `quick` with --quick); tables to stdout.
Exit status 1 only when the comparison is invalid (the plain program declared other resources) or
a rotation failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import e2e as bench_e2e
from bench import generate

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
FULL_SIZES = (10, 100, 1000, 3000)
QUICK_SIZES = (10, 100)
E2E_FULL = {"cdk": (100, 1000, 3000), "mixed": (1000,)}
E2E_QUICK = {"cdk": (10, 100), "mixed": (100,)}
PROFILE_SIZE = 1000
TARGET_RATIO = 1.2


def _repeats(size: int) -> int:
    """Small runs are noisy: repeat them and keep the median."""
    return 3 if size <= 100 else 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _worker(program: str, project: Path, *flags: str, gc_off: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.worker", program, str(project), "--stack", generate.STACK, *flags]
    env = {**os.environ, "BENCH_GC": "off" if gc_off else "on"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, timeout=900, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _fit(points: list[tuple[int, float]]) -> dict[str, float]:
    """Least squares wall = fixed + per_resource * resources, and r^2."""
    if len(points) < 2:
        return {}
    xs, ys = [float(p[0]) for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    fixed = my - slope * mx
    ss_res = sum((y - fixed - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return {"fixed_s": round(fixed, 3), "ms_per_resource": round(1000 * slope, 4),
            "r2": round(1 - ss_res / ss_tot, 5) if ss_tot else 1.0}


def measure_size(size: int, workdir: Path, policy: bool) -> dict[str, Any]:
    project = generate.make_project(workdir / f"catalog-{size}", size)
    ours: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    for i in range(_repeats(size)):
        # Alternate the two programs so that drift of the machine hits both alike.
        ours.append(_worker("ours", project, *(["--policy"] if policy and i == 0 else [])))
        plain.append(_worker("plain", project))
    ours_s = statistics.median(r["wall_s"] for r in ours)
    plain_s = statistics.median(r["wall_s"] for r in plain)
    ours_cpu = statistics.median(r["cpu_s"] for r in ours)
    plain_cpu = statistics.median(r["cpu_s"] for r in plain)
    first = ours[0]
    same = all(r["fingerprint"] == first["fingerprint"] for r in ours + plain)
    record: dict[str, Any] = {
        "secrets": size,
        "resources": first["resources"],
        "components": first["components"],
        "ours_s": round(ours_s, 4),
        "plain_s": round(plain_s, 4),
        "ratio": round(ours_s / plain_s, 3),
        "ours_cpu_s": round(ours_cpu, 4),
        "plain_cpu_s": round(plain_cpu, 4),
        "cpu_ratio": round(ours_cpu / plain_cpu, 3),
        "per_resource_ms": round(1000 * ours_s / first["resources"], 4),
        "plain_per_resource_ms": round(1000 * plain_s / first["resources"], 4),
        "peak_mb": max(r["peak_mb"] for r in ours),
        "plain_peak_mb": max(r["peak_mb"] for r in plain),
        "baseline_mb": first["baseline_mb"],
        "same_resources": same,
        "by_type": first["by_type"],
        "runs": {"ours": [r["wall_s"] for r in ours], "plain": [r["wall_s"] for r in plain]},
    }
    if policy:
        record["policy"] = first["policy"]
    return record


def profile(size: int, workdir: Path, ours_s: float | None, plain_s: float | None) -> dict[str, Any]:
    project = generate.make_project(workdir / f"catalog-{size}", size)
    result = _worker("ours", project, "--profile")
    summary: dict[str, Any] = result["profile"]
    summary["secrets"] = size
    summary["resources"] = result["resources"]
    # The cyclic garbage collector is invisible to cProfile (charged to whatever allocates): measure
    # the same run with it off.
    gc_off = _worker("ours", project, gc_off=True)
    summary["gc_off_wall_s"] = gc_off["wall_s"]
    summary["gc_off_peak_mb"] = gc_off["peak_mb"]
    busy = summary["own_time_by_category"]
    project_share = sum(v["share"] for k, v in busy.items() if k.startswith(("project", "offline", "pydantic")))
    runtime_share = sum(v["share"] for k, v in busy.items()
                        if k.startswith(("Pulumi SDK", "pulumi_aws", "protobuf", "asyncio", "threads")))
    summary["project_share"] = round(project_share, 3)
    summary["sdk_and_runtime_share"] = round(runtime_share, 3)
    if ours_s and plain_s:
        summary["plain_over_ours"] = round(plain_s / ours_s, 3)
        summary["conclusion"] = (
            f"At {size} secrets the plain program with no components takes {plain_s / ours_s:.0%} of ours' time: "
            f"the mock runtime's own cost (Pulumi SDK registration, serialization, asyncio, the mocks) "
            f"{'dominates' if plain_s / ours_s >= 0.75 else 'does not dominate'}. In the profile of ours, the "
            f"project's own code (components/, __main__.py, preview/ with its mocks and recording monitor, pydantic) "
            f"holds {project_share:.0%} of busy CPU time and the Pulumi SDK, pulumi_aws, protobuf, asyncio and "
            f"threads {runtime_share:.0%} (idle waits excluded; built-ins charged to their callers). "
            f"With Python's cyclic garbage collector off, the same run takes {gc_off['wall_s']:.1f} s instead of "
            f"{ours_s:.1f} s: collections over the growing heap of Outputs, futures and tasks are "
            f"{1 - gc_off['wall_s'] / ours_s:.0%} of the time and why the time per resource grows with size."
        )
    return summary


def _versions() -> dict[str, str]:
    names = ("pulumi", "pulumi_aws", "pulumi_random", "pulumi_policy", "moto", "boto3", "grpcio", "pydantic")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=False, timeout=10)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def print_tables(doc: dict[str, Any]) -> None:
    rows = doc["preview"]
    print(f"\nOffline preview, stack {generate.STACK} ({doc['machine']['cores']} cores, Python "
          f"{doc['machine']['python']}); ours = __main__.py with components, plain = no components, same resources")
    print(f"{'size':>6} {'resources':>9} {'ours s':>8} {'plain s':>8} {'ratio':>6} {'cpu ratio':>9} {'ms/res':>7} "
          f"{'plain ms/res':>12} {'peak MB':>8} {'plain MB':>8} {'policy ms/res':>13} {'same':>5}")
    for r in rows:
        pol = r.get("policy", {}).get("per_resource_ms")
        print(f"{r['secrets']:>6} {r['resources']:>9} {r['ours_s']:>8.2f} {r['plain_s']:>8.2f} {r['ratio']:>6.2f} "
              f"{r['cpu_ratio']:>9.2f} "
              f"{r['per_resource_ms']:>7.2f} {r['plain_per_resource_ms']:>12.2f} {r['peak_mb']:>8.0f} "
              f"{r['plain_peak_mb']:>8.0f} {'-' if pol is None else format(pol, '.2f'):>13} "
              f"{'yes' if r['same_resources'] else 'NO':>5}")
    fit = doc.get("linear_fit", {})
    for who in ("ours", "plain"):
        if fit.get(who):
            f = fit[who]
            print(f"linear fit {who:>5}: {f['fixed_s']:.2f} s + {f['ms_per_resource']:.3f} ms/resource (r2 {f['r2']})")
    if any("policy" in r for r in rows):
        print("\nPolicy pack (preview.policy_check.evaluate: start, Analyze per resource, AnalyzeStack)")
        print(f"{'size':>6} {'resources':>9} {'total s':>8} {'start s':>8} {'analyze s':>9} {'stack s':>8} "
              f"{'ms/res':>7} {'violations':>10}")
        for r in rows:
            p = r.get("policy")
            if p:
                print(f"{r['secrets']:>6} {p['resources']:>9} {p['total_s']:>8.2f} {p['start_s']:>8.2f} "
                      f"{p['analyze_s']:>9.2f} {p['analyze_stack_s']:>8.2f} {p['per_resource_ms']:>7.2f} "
                      f"{p['violations']:>10}")
    prof = doc.get("profile")
    if prof:
        print(f"\nProfile of ours at {prof['secrets']} secrets (cProfile, all threads, idle waits excluded, C "
              f"built-ins and stdlib charged to their callers; profiled wall {prof['profiled_wall_s']} s)")
        for name, v in prof["own_time_by_category"].items():
            print(f"  {v['share']:>6.1%}  {v['s']:>7.2f} s  {name}")
        print("  top own time:")
        for e in prof["top_own_time"][:10]:
            print(f"    {e['own_s']:>6.2f} s {e['calls']:>8} calls  {e['function']}")
        if prof.get("conclusion"):
            print(f"  {prof['conclusion']}")
    e2e = doc.get("end_to_end")
    if e2e:
        print("\nEnd to end: `python -m preview <stack> --format json`, whole process (lower of "
              f"{bench_e2e.RUNS} runs); phases in seconds as the command reports them (--timings)")
        print(f"{'shape':>5} {'size':>5} {'resources':>9} {'wall s':>7} {'cpu s':>6} {'peak MB':>7} {'pack MB':>7} "
              f"{'load':>5} {'program':>7} {'pack':>5} {'matrix':>6} {'cost':>5} {'render':>6} {'pack cpu ms/res':>15}")
        for r in e2e:
            ph = r.get("phases", {})
            pack = r.get("pack") or {}
            busy = pack.get("cpu_s", 0)
            print(f"{r['shape']:>5} {r['secrets']:>5} {r['resources']:>9} {r['wall_s']:>7.2f} {r['cpu_s']:>6.1f} "
                  f"{r['peak_mb']:>7.0f} {pack.get('peak_mb', 0):>7.0f} "
                  + " ".join(f"{ph.get(k, 0):>{w}.2f}" for k, w in (("load", 5), ("program", 7), ("pack", 5),
                                                                     ("matrix", 6), ("cost", 5), ("render", 6)))
                  + f" {1000 * busy / r['resources'] if r['resources'] else 0:>15.2f}")
    rot = doc.get("rotation")
    if rot:
        print("\nRotation: one full four-step rotation (RotateSecret -> 4 routed Lambda invokes), median of "
              f"{next((v['rotations'] for v in rot.values() if isinstance(v, dict) and 'rotations' in v), '?')}")
        print(f"{'strategy':<28} {'wall s':>7} {'calls':>6} {'minimum':>8}  per step (create/set/test/finish) "
              "measured vs minimum")
        for strategy, v in rot.items():
            if not isinstance(v, dict) or strategy.startswith("_"):
                continue
            if "skipped" in v:
                print(f"{strategy:<28} skipped: {v['skipped']}")
                continue
            steps = "/".join(str(v["calls_by_step"][s]) for s in ("createSecret", "setSecret", "testSecret",
                                                                   "finishSecret"))
            mins = "/".join(str(v["minimum_by_step"][s]) for s in ("createSecret", "setSecret", "testSecret",
                                                                    "finishSecret"))
            flag = f"  FAILED {v['failed']}" if v["failed"] else ""
            print(f"{strategy:<28} {v['wall_s_median']:>7.3f} {v['calls']:>6} {v['minimum_calls']:>8}  "
                  f"{steps} vs {mins}{flag}")
        cold = rot.get("_cold_start")
        if cold:
            print("Cold start (fresh interpreter, lowest of runs): import of the handler to its strategy loaded; "
                  "then the boto3 client")
            for strategy, v in cold.items():
                print(f"  {strategy:<28} {v['ready_ms']:>6.1f} ms   + client {v['client_ms']:>6.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 10 and 100 only, one rotation per strategy")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                        help="comma-separated catalog sizes (default 10,100,1000,3000)")
    parser.add_argument("--name", default=None, help="results file bench/results/<name>.json")
    parser.add_argument("--no-policy", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-rotation", action="store_true")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end command measurement")
    parser.add_argument("--only-e2e", action="store_true", help="only the end-to-end command measurement")
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    name = args.name or ("quick" if args.quick else "full")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    started = time.perf_counter()
    doc: dict[str, Any] = {
        "name": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "commit": _commit(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "versions": _versions(),
        "catalog": {"generator": "bench/generate.py", "stack": generate.STACK,
                    "mix": "1/3 critical rotated (token, every_days 30; rotation functions of 25 secrets); "
                           "1/3 critical on-compromise with rotation_reason; 1/3 configuration; single and JSON "
                           "values alternate; one consumer per secret, services of at most "
                           f"{generate.SECRETS_PER_SERVICE} secrets, each with a role"},
        "preview": [],
    }
    if args.only_e2e:
        sizes = ()
        args.no_profile = args.no_rotation = True
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_e2e:
            doc["end_to_end"] = []
            for shape, shape_sizes in (E2E_QUICK if args.quick else E2E_FULL).items():
                for size in shape_sizes:
                    _log(f"bench: end to end, {shape} catalog of {size} secrets ({bench_e2e.RUNS} runs)")
                    # In a process of its own, so that this one stays small: a child inherits its
                    # parent's peak RSS in ru_maxrss, which the workers below report.
                    done = subprocess.run([sys.executable, "-m", "bench.e2e", "--shape", shape, "--sizes", str(size)],
                                          cwd=REPO, capture_output=True, text=True, check=True, timeout=3600)
                    doc["end_to_end"] += json.loads(done.stdout)
            cdk = [r for r in doc["end_to_end"] if r["shape"] == "cdk"]
            doc["end_to_end_fit"] = _fit([(r["resources"], r["wall_s"]) for r in cdk])
        for size in sizes:
            _log(f"bench: preview of {size} secrets ({_repeats(size)} run(s) each of ours and plain)")
            try:
                doc["preview"].append(measure_size(size, workdir, policy=not args.no_policy))
            except RuntimeError as exc:  # the program refused the catalog, or crashed
                lines = [x for x in str(exc).splitlines() if x.strip()]
                doc.setdefault("failed_sizes", []).append({"secrets": size, "error": lines[-1] if lines else str(exc)})
                _log(f"bench: {size} secrets failed: {lines[-1] if lines else exc}")
        failed = doc.get("failed_sizes", [])
        if failed:
            # What is left to profile and fit is only the sizes that ran.
            sizes = tuple(r["secrets"] for r in doc["preview"])
        points = [(r["resources"], r["ours_s"]) for r in doc["preview"]]
        doc["linear_fit"] = {"ours": _fit(points),
                             "plain": _fit([(r["resources"], r["plain_s"]) for r in doc["preview"]])}
        if not args.no_profile and any(s <= PROFILE_SIZE for s in sizes):
            size = PROFILE_SIZE if PROFILE_SIZE in sizes else max(s for s in sizes if s <= PROFILE_SIZE)
            row = next((r for r in doc["preview"] if r["secrets"] == size), None)
            _log(f"bench: cProfile of ours at {size} secrets")
            doc["profile"] = profile(size, workdir, row and row["ours_s"], row and row["plain_s"])
    if not args.no_rotation:
        _log("bench: rotation per strategy (moto, PostgreSQL, Redis)")
        from bench import rotation_bench

        doc["rotation"] = rotation_bench.run(rotations=1 if args.quick else 3)
    doc["targets"] = {
        "ratio_at_most": TARGET_RATIO,
        "ratio_met": {str(r["secrets"]): r["ratio"] <= TARGET_RATIO for r in doc["preview"]},
        "per_resource_ms": {str(r["secrets"]): r["per_resource_ms"] for r in doc["preview"]},
    }
    doc["elapsed_s"] = round(time.perf_counter() - started, 1)
    # Other work on the machine slows both programs; the ratio is measured alternately and suffers less.
    doc["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(doc, indent=2) + "\n")
    tmp_out.replace(out)
    print_tables(doc)
    print(f"\nresults: {out.relative_to(REPO)} ({doc['elapsed_s']} s)")

    problems = [f"{f['secrets']} secrets: {f['error']}" for f in doc.get("failed_sizes", [])]
    problems += [f"end to end, {r['shape']} {r['secrets']}: the two runs printed different documents"
                 for r in doc.get("end_to_end", []) if not r["same_output"]]
    problems += [f"{r['secrets']} secrets: the plain program declared other resources than ours "
                "(bench/plain_program.py is out of step with the components)"
                for r in doc["preview"] if not r["same_resources"]]
    problems += [f"rotation {s} failed: {v['runs'][0]['error']}"
                 for s, v in (doc.get("rotation") or {}).items() if isinstance(v, dict) and v.get("failed")]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
