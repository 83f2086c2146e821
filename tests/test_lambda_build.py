"""`make lambda` (scripts/build-lambda.sh): which wheels pip may take, and that everything is pinned.

The script is run for real, in a scratch copy of its tree, with `PIP` pointing at a recorder that
keeps the arguments and stops the build (nothing is downloaded).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components import lambda_package

REPO = Path(__file__).resolve().parent.parent

# The Lambda runtime the package is built for (components/lambda_package.py RUNTIME, x86_64): pip's
# --platform names the wheels it may take; the python3.12 runtime runs on Amazon Linux 2023
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html), whose glibc 2.34 runs
# manylinux2014 (glibc 2.17) and manylinux_2_28 wheels alike (PEP 600).
PLATFORMS = {"manylinux2014_x86_64", "manylinux_2_28_x86_64"}


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned"
            found[canonicalize_name(req.name)] = spec.version
    return found


def recorded_pip_arguments(tmp_path: Path) -> tuple[Path, list[str]]:
    """Run scripts/build-lambda.sh in a scratch tree; return the tree (pip's cwd) and pip's arguments."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "scripts" / "build-lambda.sh").write_text((REPO / "scripts" / "build-lambda.sh").read_text())
    for name in ("components", "rotation", "constraints.txt"):
        (tree / name).symlink_to(REPO / name)
    record = tmp_path / "pip-args"
    recorder = tmp_path / "pip"
    recorder.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$RECORD"\nexit 3\n')
    recorder.chmod(0o755)
    env = {**os.environ, "PIP": str(recorder), "PYTHON_BIN": sys.executable, "RECORD": str(record)}
    done = subprocess.run(["bash", str(tree / "scripts" / "build-lambda.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr  # stopped by the recorder, after pip was called
    return tree, record.read_text().split("\0")[:-1]


def option_values(args: list[str], option: str) -> list[str]:
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == option]
    values += [a.split("=", 1)[1] for a in args if a.startswith(option + "=")]
    return values


def test_the_build_pins_transitive_packages_and_takes_manylinux_2_28_wheels_too(tmp_path: Path) -> None:
    tree, args = recorded_pip_arguments(tmp_path)

    assert args[0] == "install"
    # Relative paths are pip's cwd's: the script cds to its tree.
    assert [(tree / p).resolve() for p in option_values(args, "-c")] == [REPO / "constraints.txt"]
    assert [(tree / p).resolve() for p in option_values(args, "-r")] == [REPO / "rotation" / "requirements.txt"]
    assert set(option_values(args, "--platform")) == PLATFORMS
    assert option_values(args, "--only-binary") == [":all:"]
    assert option_values(args, "--implementation") == ["cp"]
    assert option_values(args, "--python-version") == [lambda_package.runtime_version()]
    assert len(option_values(args, "--target")) == 1


def lambda_environment(extra: str = "") -> dict[str, str]:
    """Marker values of the Lambda runtime (CPython 3.12 on Linux x86_64), not of this machine."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    version = lambda_package.runtime_version()
    env.update(python_version=version, python_full_version=f"{version}.0", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython", extra=extra)
    return env


def test_constraints_pin_everything_the_rotation_package_pulls_in_at_the_versions_installed_here() -> None:
    """Every distribution the rotation requirements need on the runtime is pinned in constraints.txt,
    at the version they pin in rotation/requirements.txt; walked through the installed metadata."""
    constraints = pins(REPO / "constraints.txt")
    requirements = pins(REPO / "rotation" / "requirements.txt")
    for name, version in requirements.items():
        assert constraints.get(name) == version, f"rotation/requirements.txt {name}=={version}: constraints differ"
    queue = [Requirement(line.split("#", 1)[0]) for line in (REPO / "rotation" / "requirements.txt").read_text()
             .splitlines() if line.split("#", 1)[0].strip()]
    seen: set[str] = set()
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        for extra in req.extras or {""}:
            key = f"{name}[{extra}]"
            if key in seen:
                continue
            seen.add(key)
            assert name in constraints, f"{req.name} (needed by the rotation package) is not in constraints.txt"
            assert importlib.metadata.version(name) == constraints[name], f"{name}: installed != pinned"
            for dependency in importlib.metadata.requires(name) or []:
                dep = Requirement(dependency)
                if dep.marker is None or dep.marker.evaluate(lambda_environment(extra)):
                    queue.append(dep)
    walked = {key.split("[")[0] for key in seen}
    assert {"psycopg-binary", "cffi", "typing-extensions"} <= walked  # the walk reaches transitive ones
