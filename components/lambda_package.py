"""The rotation Lambda package that `make lambda` builds, and whether it is there and current.

The engine hashes a `FileArchive` when the program registers it: a missing directory fails a real
`pulumi preview` with an engine error, and a build older than the sources deploys old handler code
without a word. `make lambda` records a digest of the sources it packaged; the program compares it
with the sources before anything is registered.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from components.errors import ConfigurationError
from components.settings import StackSettings
from components.values import offline_preview

RUNTIME = "python3.12"
"""The rotation functions' Lambda runtime: the package's wheels and bytecode are made for it."""
BUILD_DIR = Path("build/rotation-lambda")
"""Where `make lambda` puts the handler and its dependencies, relative to the project directory."""
STAMP = ".source-sha256"
"""The digest of the sources a build was made from, inside the build."""
SOURCES = Path(__file__).resolve().parent.parent / "rotation"
"""The rotation package's sources (what scripts/build-lambda.sh copies, plus its requirements)."""


@dataclass(frozen=True)
class PendingStep:
    """Something to do before `pulumi up` that is not a config value (the 'action required' list)."""

    what: str
    command: str


def source_digest(sources: Path = SOURCES) -> str:
    """SHA-256 over every packaged source file's path and bytes, in a fixed order (the code, its
    requirements and a CA bundle `make lambda` copies in)."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in sources.rglob("*")
        if p.is_file() and (p.suffix in (".py", ".pem") or p.name == "requirements.txt")
        and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(path.relative_to(sources).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def problem(build: Path = BUILD_DIR, sources: Path = SOURCES) -> str | None:
    """Why the build cannot be deployed as it is, or None when it is current."""
    stamp = build / STAMP
    if not build.is_dir():
        return "it does not exist"
    if not stamp.is_file():
        return "it records no source digest (built by an older `make lambda`)"
    if stamp.read_text(encoding="utf-8").strip() != source_digest(sources):
        return "it was built from other sources than rotation/ holds now"
    return None


def pending(settings: StackSettings) -> list[PendingStep]:
    """The build as a pending step (the offline preview, which lists what is missing), or a
    ConfigurationError (`pulumi up`, which must not deploy a missing or stale handler)."""
    reason = problem()
    if reason is None:
        return []
    # Only the offline preview lists it; a stack's allowMissingValues lets values be missing, nothing else.
    if offline_preview():
        return [PendingStep(what=f"the rotation Lambda package {BUILD_DIR}: {reason}", command="make lambda")]
    raise ConfigurationError(str(BUILD_DIR), f"the rotation Lambda package: {reason}; run `make lambda` before "
                             "`pulumi up`")


def write_stamp(build: Path = BUILD_DIR) -> None:
    """Record the sources' digest in a build (scripts/build-lambda.sh calls this last)."""
    (build / STAMP).write_text(source_digest() + "\n", encoding="utf-8")


def runtime_version(runtime: str = RUNTIME) -> str:
    """`python3.12` -> `3.12`."""
    return runtime.removeprefix("python")


def compile_bytecode(build: Path, python: str, runtime: str = RUNTIME) -> str | None:
    """Compile every module of the build with `python`, the runtime's own version, into `.pyc` files
    checked by source hash but never against the source (`unchecked-hash`). Lambda's `/var/task` is
    read-only, so a package without them compiles every module it imports at every cold start (the
    PostgreSQL and Redis functions: about 450 ms instead of 95, bench/rotation_bench.py); a timestamp
    `.pyc` would also depend on file times, which the build fixes and a zip rounds. Returns why
    nothing was compiled (another interpreter version: its bytecode would be ignored), or None."""
    if shutil.which(python) is None:
        return f"no {python} on PATH"
    try:
        found = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{python} does not run ({exc.__class__.__name__})"
    if found != runtime_version(runtime):
        return f"{python} is Python {found}, and the functions run {runtime}"
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(build)],
                   check=True, timeout=600)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.lambda_package",
                                     description="Steps of scripts/build-lambda.sh (make lambda).")
    parser.add_argument("build", type=Path, nargs="?", default=BUILD_DIR)
    parser.add_argument("--runtime-version", action="store_true", help="print the runtime's Python version")
    parser.add_argument("--compile-with", metavar="PYTHON",
                        help="compile the build's modules with this interpreter (the runtime's version)")
    args = parser.parse_args(argv)
    if args.runtime_version:
        print(runtime_version())
        return 0
    if args.compile_with:
        why = compile_bytecode(args.build, args.compile_with)
        if why is not None:
            print(f"warning: the package ships no bytecode: {why}; every cold start compiles the modules it "
                  f"imports (several hundred ms). Set LAMBDA_PYTHON to a Python {runtime_version()}.",
                  file=sys.stderr)
        return 0
    write_stamp(args.build)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
