"""The command users run, end to end: `python -m preview <stack> --format json`, one fresh process per run.

Wall time, peak RSS of the preview process and of the policy pack it starts (the VmHWM each reports
through `--timings`; os.wait4's ru_maxrss is no use here: Linux carries the parent's peak into a child
across fork and exec), CPU time (both processes, os.wait4), and the phases it reports with `--timings`
(load, program, pack, matrix, cost, render; "pack" is the time the preview waits for the pack after
the program, which analyzes each resource while the program runs). Each size runs RUNS times and the
run with the lowest wall time is kept: the machine is shared, and the lowest is the least disturbed.

`python -m bench.e2e --shape cdk --sizes 100,1000 [--repo DIR]` prints the records as JSON; `--repo`
measures another checkout of this repository (one without `--timings` then reports no phases).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import generate

REPO = Path(__file__).resolve().parent.parent
RUNS = 2


def _run_once(repo: Path, project: Path, stack: str, work: Path, timings: bool) -> dict[str, Any]:
    out_path, timing_path = work / "out.json", work / "timings.json"
    timing_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "preview", stack, "--format", "json", "--project-dir", str(project)]
    if timings:
        command += ["--timings", str(timing_path)]
    with out_path.open("wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=repo, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode not in (0, 1):  # 1: mandatory findings, still a complete preview
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {stderr[-2000:]}")
    record: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "exit": proc.returncode,
        "output_sha256": hashlib.sha256(out_path.read_bytes()).hexdigest(),
    }
    if timing_path.is_file():
        reported = json.loads(timing_path.read_text())
        record["resources"] = reported["resources"]
        record["peak_mb"] = max(reported["peak_mb_after"].values())
        record["phases"] = reported["phases"]
        record["peak_mb_after"] = reported["peak_mb_after"]
        record["pack"] = reported.get("pack")
    else:  # a checkout without --timings: count from the document; peak from ru_maxrss (an upper bound)
        record["resources"] = len(json.loads(out_path.read_bytes())["resources"])
        record["peak_mb"] = round(usage.ru_maxrss / 1024, 1)
        record["peak_mb_from"] = "ru_maxrss"
    return record


def measure(shape: str, size: int, workdir: Path, repo: Path = REPO, runs: int = RUNS) -> dict[str, Any]:
    project = generate.make_project(workdir / f"{shape}-{size}", size, shape)
    stack = generate.stack_of(shape)
    timings = (repo / "preview" / "cli.py").read_text().count("--timings") > 0
    results = [_run_once(repo, project, stack, workdir, timings) for _ in range(runs)]
    best = min(results, key=lambda r: r["wall_s"])
    return {
        "shape": shape,
        "secrets": size,
        "stack": stack,
        **best,
        "runs_wall_s": [r["wall_s"] for r in results],
        "runs_peak_mb": [r["peak_mb"] for r in results],
        "same_output": len({r["output_sha256"] for r in results}) == 1,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=generate.SHAPES, default="cdk")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        records = [measure(args.shape, n, Path(tmp), args.repo.resolve(), args.runs) for n in args.sizes]
    json.dump(records, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
