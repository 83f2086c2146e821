"""`make mutate`: mutation testing (mutmut) of the security- and correctness-critical modules.

Each module runs on its own, with only the tests that exercise it, in a scratch copy under
`build/mutate/<module>/` (mutmut works in a `mutants/` folder of its working directory), one module
after the other. Scores go to `bench/results/mutation.json` (merged: a run of some modules keeps the
others' last figures). A surviving mutant is either killed by a test or listed, with the reason it
cannot change behaviour, in `scripts/mutation-equivalents.toml`; the score counts listed ones apart.

    python scripts/mutate.py                        # every module (slow: about an hour on 2 cores)
    python scripts/mutate.py components/values.py   # one module
    python scripts/mutate.py --list                 # the modules and their tests

mutmut runs a module's tests once per mutant, each time only the tests that reached the mutated
function; mutants of code outside functions (module constants) are not made by mutmut 3. What a
fixture shared by several tests runs counts for the first of them only, so the tests selected here
run the program per test.
The policy pack's modules are mutated as the package `guardrails` (the name the pack and its tests
import them by), so that a mutant is live in the pack's own process too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build" / "mutate"
RESULTS = REPO / "bench" / "results" / "mutation.json"
EQUIVALENTS = REPO / "scripts" / "mutation-equivalents.toml"
DOC = REPO / "docs" / "mutation-testing.md"
TABLE_START, TABLE_END = "<!-- mutation-table: python scripts/mutate.py --write-table -->", "<!-- /mutation-table -->"
GOAL = 90.0
"""Per module: at least this share of the non-equivalent mutants killed."""

SKIP = {".git", ".venv", "build", "mutants", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis", "pyproject.toml"}
"""Top-level entries not copied into the scratch project (pyproject.toml is written with mutmut's config)."""

PACK = "policies"
PACK_PACKAGE = "guardrails"


@dataclass(frozen=True)
class Module:
    """One module to mutate and the tests that exercise it."""

    path: str
    """Path in the repository."""
    tests: tuple[str, ...]
    """Test files (or node ids) run against its mutants."""
    shared_postgres: bool = False
    """Start one PostgreSQL server for the whole run and lend it to every mutant's test session (instead of
    a cluster per session: about a second per mutant; tests/servers.py, SHARED_SERVERS)."""

    @property
    def in_pack(self) -> bool:
        return self.path.startswith(f"{PACK}/{PACK_PACKAGE}/")

    @property
    def source(self) -> str:
        """The path mutmut mutates, relative to the scratch project (sets the module name of the mutants)."""
        return self.path.removeprefix(f"{PACK}/") if self.in_pack else self.path

    @property
    def slug(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


MODULES: tuple[Module, ...] = (
    Module("components/values.py", ("tests/test_supplied_values.py", "tests/test_errors.py",
                                    "tests/test_catalog_requirements.py")),
    Module("components/iam.py", ("tests/test_iam_documents.py", "tests/test_grants_documents.py",
                                 "tests/test_key_policy.py")),
    Module("components/grants.py", ("tests/test_grants_documents.py", "tests/test_secret_component.py")),
    Module("components/kms.py", ("tests/test_key_policy.py", "tests/test_program.py")),
    # The environment holds a credential while its master has no version (`version is None`); adopted secrets
    # and published public keys are CatalogSecrets too.
    Module("components/secret.py", ("tests/test_secret_component.py", "tests/test_first_install.py",
                                    "tests/test_adopt.py", "tests/test_public_key_and_due.py")),
    # Every strategy's tests drive the dispatcher (setSecret and testSecret without DescribeSecret, AWSPREVIOUS
    # read for single user): the whole folder, as for the strategies.
    Module("rotation/protocol.py", ("tests/rotation",), shared_postgres=True),
    # The strategies' tests share fixtures (moto, servers): the whole folder, so new test files count. mutmut
    # runs, for each mutant, only the tests that reached the mutated function (fastest first, stopping at the
    # first failure), so a narrower list would not run fewer tests per mutant; what a mutant's session costs
    # beyond its tests is starting the servers, hence the shared PostgreSQL.
    Module("rotation/strategies/token.py", ("tests/rotation",)),
    Module("rotation/strategies/jwt.py", ("tests/rotation",)),
    Module("rotation/strategies/postgres.py", ("tests/rotation",), shared_postgres=True),
    Module("rotation/strategies/redis_acl.py", ("tests/rotation",), shared_postgres=True),
    # The rule-by-rule evaluator, and the matrix's cached fast path checked against it cell by cell.
    Module("preview/access_matrix.py", ("tests/test_access_evaluator.py", "tests/test_access_index.py")),
    Module("policies/guardrails/iam.py", ("tests/policies/test_rules_in_process.py",)),
    Module("policies/guardrails/secrets.py", ("tests/policies/test_rules_in_process.py",)),
)


def _test_files(root: Path, tests: tuple[str, ...]) -> list[Path]:
    """The files a module's tests are made of: each listed file (a node id counts as its file), every `.py`
    file under a listed folder, and the `conftest.py` files and helpers pytest loads with them."""
    found: set[Path] = set()
    for entry in tests:
        path = root / entry.split("::")[0]
        if path.is_dir():
            found.update(q for q in path.rglob("*.py") if "node_modules" not in q.parts)
        elif path.exists():
            found.add(path)
            found.update(q for q in path.parent.glob("*.py") if not q.name.startswith("test_"))
        # Fixtures and helpers of the enclosing folders up to tests/ (conftest.py, servers.py, ...).
        for parent in path.parents:
            if parent == root or not parent.is_relative_to(root / "tests"):
                break
            found.update(q for q in parent.glob("*.py") if not q.name.startswith("test_"))
    return sorted(found)


def _sha256(root: Path, paths: list[Path]) -> str:
    """One digest of several files: each file's path (relative to `root`) and its bytes, in path order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(module: Module, root: Path = REPO) -> dict[str, str]:
    """What a score was measured against: the SHA-256 of the module's source and of its tests' files."""
    return {"module_sha256": hashlib.sha256((root / module.path).read_bytes()).hexdigest(),
            "tests_sha256": _sha256(root, _test_files(root, module.tests))}


def freshness(module: Module, row: dict[str, object], root: Path = REPO) -> str:
    """Whether a stored row still describes the code: `current`, `stale` (the module changed since: the
    score says nothing about today's code), `tests changed` (the module is the same, its tests are not:
    rerun to learn what they kill now) or `unknown` (a row stored without fingerprints)."""
    if "module_sha256" not in row:
        return "unknown"
    now = fingerprint(module, root)
    if now["module_sha256"] != row["module_sha256"]:
        return "stale"
    if now["tests_sha256"] != row.get("tests_sha256"):
        return "tests changed"
    return "current"


def _equivalents() -> dict[str, str]:
    """Mutant name -> why it cannot change behaviour."""
    if not EQUIVALENTS.exists():
        return {}
    data = tomllib.loads(EQUIVALENTS.read_text())
    return {name: str(entry["reason"]) for name, entry in data.get("mutant", {}).items()}


def _prepare(module: Module) -> Path:
    """A scratch project for one module: the repository's files, mutmut's config, the pack laid out."""
    work = WORK / module.slug
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    entries = sorted(p.name for p in REPO.iterdir() if p.name not in SKIP)
    for name in entries:
        (work / name).symlink_to(REPO / name)
    (work / ".venv").symlink_to(REPO / ".venv")
    also_copy = [n for n in entries if not (module.in_pack and n == PACK)]
    if module.in_pack:
        # The mutants of `guardrails` must be what the tests and the pack process import: the pack
        # directory in mutants/ gets its files, and `guardrails` points at the mutated package.
        (work / PACK_PACKAGE).symlink_to(REPO / PACK / PACK_PACKAGE)
        also_copy.append(PACK_PACKAGE)
        pack = work / "mutants" / PACK
        shutil.copytree(REPO / PACK, pack, ignore=shutil.ignore_patterns(PACK_PACKAGE, "__pycache__"))
        (pack / PACK_PACKAGE).symlink_to(Path("..") / PACK_PACKAGE)
    config = {
        "source_paths": [module.source],
        "also_copy": also_copy,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-n0"] if _has_xdist() else ["-p", "no:cacheprovider"],
        "pytest_add_cli_args_test_selection": list(module.tests),
        # The tests use gRPC (the pack) and servers: fork workers from a process that has not run them,
        # but has imported and collected them (each mutant's run then starts in well under a second).
        "process_isolation": "forkserver",
        "forkserver_warmup": "collect",
        "use_git_change_detection": False,
    }
    text = (REPO / "pyproject.toml").read_text() + "\n[tool.mutmut]\n" + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in config.items()
    )
    (work / "pyproject.toml").write_text(text)
    return work


def _has_xdist() -> bool:
    try:
        import xdist  # noqa: F401
    except ImportError:
        return False
    return True


STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          37: "killed", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}


DEAD = ("killed", "timeout", "skipped")


def _survivors(work: Path, module: Module) -> list[str]:
    """The mutants a previous run of this module left alive (or reached by no test)."""
    meta = work / "mutants" / (module.source + ".meta")
    if not meta.exists():
        return []
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    alive = {n for n, c in codes.items() if c is None or STATUS.get(c, "suspicious") not in DEAD}
    return sorted(alive)


def _refresh_tests(work: Path) -> None:
    """Bring the scratch copy's tests up to date (the module's source must be unchanged since its run)."""
    shutil.copytree(REPO / "tests", work / "mutants" / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__"))


def _run(module: Module, max_children: int, again: bool = False) -> dict[str, object]:
    """Mutate one module (or, with `again`, retest only the previous run's survivors with today's tests)."""
    work = WORK / module.slug
    names = _survivors(work, module) if again else []
    stored = json.loads(RESULTS.read_text()).get("modules", {}).get(module.path) if RESULTS.exists() else None
    if again and names and stored is not None and freshness(module, stored) == "stale":
        # Survivors of another version of the module: their names no longer match its mutants.
        raise SystemExit(f"{module.path} changed since its last run: run it in full, without --again")
    if again and names:
        _refresh_tests(work)
    else:
        work = _prepare(module)
    started = time.monotonic()
    mutmut = str(Path(sys.executable).parent / "mutmut")
    log = work / ("mutmut-again.log" if names else "mutmut.log")
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if module.shared_postgres:
            sys.path.insert(0, str(REPO / "tests"))
            import servers

            pg = stack.enter_context(servers.postgres_server())
            described = work / "shared-postgres.json"
            servers.share_postgres(pg, described)
            stack.callback(described.unlink, missing_ok=True)
            env[servers.SHARED_SERVERS] = str(described)
        with log.open("w") as out:
            done = subprocess.run([mutmut, "run", "--max-children", str(max_children), *names], cwd=work,
                                  stdout=out, stderr=subprocess.STDOUT, check=False, env=env)
        if module.shared_postgres and not pg.can_login(pg.superuser, pg.password):
            # Every session after the mutant that did this would have failed: the kills are not the tests'.
            raise SystemExit(f"a mutant of {module.path} changed the shared PostgreSQL superuser: results invalid")
    seconds = round(time.monotonic() - started)
    meta = work / "mutants" / (module.source + ".meta")
    if done.returncode != 0 or not meta.exists():
        raise SystemExit(f"mutmut failed for {module.path} (exit {done.returncode}); see {log}")
    return _result(work, module, seconds, retested=bool(names))


def _result(work: Path, module: Module, seconds: int, *, retested: bool = False,
            partial: bool = False) -> dict[str, object]:
    """The scores of a module's mutants as its meta file records them (`partial`: only those checked so
    far, read while a run is still going)."""
    meta = work / "mutants" / (module.source + ".meta")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    total = len(codes)
    if partial:
        codes = {n: c for n, c in codes.items() if c is not None}
    equivalents = _equivalents()
    statuses = {name: STATUS.get(code, "suspicious") if code is not None else "not checked"
                for name, code in codes.items()}
    killed = sum(s in ("killed", "timeout") for s in statuses.values())
    left = sorted(n for n, s in statuses.items() if s not in ("killed", "timeout", "skipped"))
    explained = {n: equivalents[n] for n in left if n in equivalents}
    unexplained = [n for n in left if n not in equivalents]
    counted = len(statuses) - len(explained) - sum(s == "skipped" for s in statuses.values())
    score = round(100.0 * killed / counted, 1) if counted else 100.0
    diffs = {name: {"status": statuses[name], "diff": diff}
             for name, diff in _diffs(work, module, unexplained).items()}
    return {
        "module": module.path,
        "tests": list(module.tests),
        # The scratch copy links to the repository: what it mutated is the module as it is on disk now.
        **fingerprint(module),
        "mutants": len(statuses),
        "killed": killed,
        "equivalent": len(explained),
        "skipped": sum(s == "skipped" for s in statuses.values()),
        "survived": len(unexplained),
        "score": score,
        "raw_score": round(100.0 * killed / len(statuses), 1) if statuses else 100.0,
        "goal_met": score >= GOAL,
        "seconds": seconds,
        "retested_survivors_only": retested,
        "partial": {"checked": len(codes), "of": total} if partial else None,
        "survivors": diffs,
        "equivalents": explained,
    }


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], json.loads(sys.stdin.read())
print(json.dumps({n: get_diff_for_mutant(n, path=path) for n in names}))
"""


def _diffs(work: Path, module: Module, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against the original function (one process, not one `mutmut show` per mutant)."""
    if not names:
        return {}
    done = subprocess.run([sys.executable, "-c", _DIFFS, module.source], cwd=work, input=json.dumps(names),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {n: f"(no diff: {done.stderr.strip().splitlines()[-1:]})" for n in names}
    found: dict[str, str] = json.loads(done.stdout)
    return found


def _rescore(result: dict[str, object], equivalents: dict[str, str]) -> dict[str, object]:
    """A stored result with the equivalents list applied again (after a reason was added or removed)."""
    survivors: dict[str, dict[str, str]] = dict(result["survivors"])  # type: ignore[call-overload]
    explained: dict[str, str] = dict(result["equivalents"])  # type: ignore[call-overload]
    for name in list(survivors):
        if name in equivalents:
            explained[name] = equivalents[name]
            del survivors[name]
    for name in list(explained):
        if name not in equivalents:
            survivors[name] = {"status": "survived", "diff": ""}
            del explained[name]
    mutants, killed = int(result["mutants"]), int(result["killed"])  # type: ignore[call-overload]
    counted = mutants - len(explained) - int(result.get("skipped", 0))  # type: ignore[call-overload]
    score = round(100.0 * killed / counted, 1) if counted else 100.0
    return {**result, "survivors": survivors, "equivalents": explained, "equivalent": len(explained),
            "survived": len(survivors), "score": score, "goal_met": score >= GOAL}


def _table(results: dict[str, object]) -> str:
    """The table of docs/mutation-testing.md: one row per listed module, `not measured` for those without a run,
    and whether the row still describes the code (`freshness`)."""
    measured: dict[str, dict[str, object]] = results.get("modules", {})  # type: ignore[assignment]
    rows = ["| module | mutants | killed | equivalent | surviving | score | seconds of the last run | row |",
            "|---|---|---|---|---|---|---|---|"]
    for m in MODULES:
        r = measured.get(m.path)
        if r is None:
            rows.append(f"| `{m.path}` | not measured | | | | | | |")
            continue
        run = f"{r['seconds']} (survivors retested)" if r.get("retested_survivors_only") else f"{r['seconds']}"
        partial = r.get("partial")
        if isinstance(partial, dict):
            run = f"partial: {partial['checked']} of {partial['of']} mutants checked"
        rows.append(f"| `{m.path}` | {r['mutants']} | {r['killed']} | {r['equivalent']} | {r['survived']} | "
                    f"{r['score']}% | {run} | {freshness(m, r)} |")
    return "\n".join(rows)


def documented_table(doc: Path = DOC) -> str:
    """The table as docs/mutation-testing.md shows it (between its markers)."""
    text = doc.read_text()
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip("\n")


def write_table(table: str, doc: Path = DOC) -> None:
    """Put `table` between the markers of docs/mutation-testing.md."""
    text = doc.read_text()
    head, rest = text.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    doc.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="repository paths of modules (default: every listed module)")
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--table", action="store_true", help="print the last scores as a Markdown table")
    parser.add_argument("--write-table", action="store_true",
                        help="put that table (with each row's freshness) into docs/mutation-testing.md")
    parser.add_argument("--again", action="store_true",
                        help="retest only the survivors of each module's last run in build/mutate/ with today's tests")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"scores file (default {RESULTS})")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="FILE",
                        help="copy the modules of other scores files (runs made with --results) into --results")
    parser.add_argument("--snapshot", action="store_true",
                        help="record the mutants checked so far by runs still going (marked partial), without running")
    parser.add_argument("--rescore", action="store_true",
                        help="apply scripts/mutation-equivalents.toml to the stored results without running")
    args = parser.parse_args(argv)
    by_path = {m.path: m for m in MODULES}
    if args.list:
        for m in MODULES:
            print(f"{m.path}: {' '.join(m.tests)}")
        return 0
    if args.table or args.write_table:
        table = _table(json.loads(RESULTS.read_text()) if RESULTS.exists() else {})
        if args.write_table:
            write_table(table)
        print(table)
        return 0
    if args.merge:
        stored = json.loads(args.results.read_text()) if args.results.exists() else {}
        for other in args.merge:
            extra = json.loads(other.read_text())
            stored.setdefault("modules", {}).update(extra.get("modules", {}))
            stored.setdefault("tool", extra.get("tool"))
            stored.setdefault("goal_percent", GOAL)
        args.results.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        print(_table(stored))
        return 0
    if args.snapshot:
        stored = json.loads(args.results.read_text()) if args.results.exists() else {}
        for path in args.modules:
            module = by_path[path]
            stored.setdefault("modules", {})[path] = _result(WORK / module.slug, module, 0, partial=True)
        args.results.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        print(_table(stored))
        return 0
    if args.rescore:
        stored = json.loads(RESULTS.read_text())
        equivalents = _equivalents()
        stored["modules"] = {k: _rescore(v, equivalents) for k, v in stored["modules"].items()}
        RESULTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        write_table(_table(stored))
        print(_table(stored))
        return 0
    unknown = [p for p in args.modules if p not in by_path]
    if unknown:
        print(f"error: not a listed module: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    chosen = [by_path[p] for p in args.modules] or list(MODULES)
    tool = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "--version"], capture_output=True,
                          text=True, check=False).stdout.strip()
    results_file: Path = args.results
    below = []
    for module in chosen:
        print(f"mutating {module.path} against {' '.join(module.tests)}", file=sys.stderr, flush=True)
        result = _run(module, args.max_children, again=args.again)
        # Read again before writing: keep what another run stored meanwhile.
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
        results["tool"] = tool or "mutmut"
        results["goal_percent"] = GOAL
        results.setdefault("modules", {})[module.path] = result
        results_file.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        if results_file == RESULTS:
            write_table(_table(results))
        print(f"  {result['killed']}/{result['mutants']} killed, {result['equivalent']} equivalent, "
              f"{result['survived']} surviving: {result['score']}% in {result['seconds']} s", file=sys.stderr)
        for name in result["survivors"]:  # type: ignore[attr-defined]
            print(f"    surviving: {name}", file=sys.stderr)
        if not result["goal_met"]:
            below.append(module.path)
    if below:
        print(f"below {GOAL}%: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
