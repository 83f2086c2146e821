"""The rotation Lambda package that `make lambda` builds, and whether it is there and current.

The engine hashes a `FileArchive` when the program registers it: a missing directory fails a real
`pulumi preview` with an engine error, and a build older than the sources deploys old handler code
without a word. `make lambda` records a digest of the sources it packaged; the program compares it
with the sources before anything is registered.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from components.errors import ConfigurationError
from components.settings import StackSettings

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
    if settings.allow_missing_values:
        return [PendingStep(what=f"the rotation Lambda package {BUILD_DIR}: {reason}", command="make lambda")]
    raise ConfigurationError(str(BUILD_DIR), f"the rotation Lambda package: {reason}; run `make lambda` before "
                             "`pulumi up`")


def write_stamp(build: Path = BUILD_DIR) -> None:
    """Record the sources' digest in a build (scripts/build-lambda.sh calls this last)."""
    (build / STAMP).write_text(source_digest() + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_stamp(Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD_DIR)
