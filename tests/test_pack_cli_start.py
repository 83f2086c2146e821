"""The policy pack starts under the real Pulumi CLI, with the interpreter the CLI gives it.

The offline preview starts the pack with its own interpreter (`sys.executable`), so it never shows
which Python the CLI picks. The CLI picks it from `PulumiPolicy.yaml`'s `runtime.options`, in one of
two ways depending on its version; both are emulated here from their sources (pulumi/pulumi):

- CLI >= 3.221.0 (pulumi/actions' default `^3`): the Python language host's `RunPlugin`
  (`sdk/python/cmd/pulumi-language-python/main.go`: `RunPlugin`, `parseOptions`), the pip toolchain
  (`sdk/python/toolchain/toolchain.go` `ResolveToolchain`, `ActivateVirtualEnv`;
  `sdk/python/toolchain/pip.go` `newPip`, `resolveVirtualEnvironmentPath`, `Command`, `CommandPath`),
  started by `sdk/go/common/resource/plugin/plugin.go` `newPlugin` with the pack directory as both
  root and program directory.
- Older CLIs: the `pulumi-analyzer-policy-python` shim (`sdk/python/dist/pulumi-analyzer-policy-python`,
  removed in commit 0f0fbfe0fb, "Use RunPlugin instead of policy shim plugins"), given
  `<engine> . -<option>=<value>...` from the pack directory by
  `sdk/go/common/resource/plugin/analyzer_plugin.go` `NewPolicyAnalyzer`.

Either way: a relative `virtualenv` is resolved against the pack directory (not the CLI's working
directory), `<virtualenv>/bin/python -u -m pulumi.policy` runs from the pack directory, and without a
`virtualenv` the `python3` on PATH runs the pack. The tests start the pack with a PATH whose `python3`
lacks pulumi-policy (as on a CI runner after actions/setup-python) and ask it for its analyzer info
over gRPC, as the engine does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
PACK_DIR = REPO / "policies"
START_TIMEOUT_S = 60.0
ENGINE = "127.0.0.1:0"  # no engine: the pack serves its analyzer without calling back

if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))  # as the engine does (OFFLINE.md "Policy packs")

from guardrails.registry import ALL_POLICIES, PACK_NAME  # noqa: E402


class ShimRefused(Exception):
    """The shim printed how to create the virtualenv and exited 1: nothing started."""


@dataclass(frozen=True)
class Launch:
    """One process start: what the CLI would exec, from where, with which environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


def runtime_options(pack_dir: Path) -> tuple[str, dict[str, Any]]:
    """`runtime` of PulumiPolicy.yaml: a bare name or {name, options} (workspace.ProjectRuntimeInfo)."""
    runtime = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())["runtime"]
    if isinstance(runtime, str):
        return runtime, {}
    return str(runtime["name"]), dict(runtime.get("options") or {})


def _go_value(value: Any) -> str:
    """fmt.Sprintf("%v", v) for the scalars a YAML option can hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", ""))


def legacy_shim_launch(pack_dir: Path, env: Mapping[str, str]) -> Launch:
    """CLI < 3.221: NewPolicyAnalyzer's arguments, then the pulumi-analyzer-policy-python shim's choice."""
    _, options = runtime_options(pack_dir)
    args = [ENGINE, "."]  # NewPolicyAnalyzer: []string{host.ServerAddr(), "."}, pwd = the pack directory
    args += [f"-{k}={_go_value(v)}" for k, v in options.items() if _go_value(v) != ""]
    # The shim takes -virtualenv=... out of the arguments and passes the rest to pulumi.policy.
    virtualenv = ""
    passed = []
    for arg in args:
        if arg.startswith("-virtualenv="):
            virtualenv = arg.split("=", 1)[1]
        else:
            passed.append(arg)
    child = dict(env)
    if virtualenv:
        virtualenv = virtualenv[:-1] if virtualenv.endswith("/") else virtualenv  # ${virtualenv%/}: one slash
        venv = Path(virtualenv) if virtualenv.startswith("/") else pack_dir / virtualenv  # $PWD/<virtualenv>
        python = venv / "bin" / "python"
        if not python.is_file():
            raise ShimRefused(f"PulumiPolicy.yaml: virtualenv \"{venv}\" has no bin/python")
        child["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
        child.pop("PYTHONHOME", None)
        return Launch([str(python), "-u", "-m", "pulumi.policy", *passed], pack_dir, child)
    interpreter = _which(env.get("PULUMI_PYTHON_CMD") or "python3", env) or "python3"
    return Launch([interpreter, "-u", "-m", "pulumi.policy", *passed], pack_dir, child)


def _search_up(start: Path, name: str) -> bool:
    return any((d / name).exists() for d in (start, *start.parents))


def run_plugin_launch(pack_dir: Path, env: Mapping[str, str]) -> Launch:
    """CLI >= 3.221: newPlugin -> the Python language host's RunPlugin for kind=analyzer."""
    root = pack_dir.resolve()  # newPlugin: NewProgramInfo(abs(pluginDir), abs(pluginDir), ".", options)
    _, options = runtime_options(pack_dir)
    virtualenv = options.get("virtualenv", "")
    if not isinstance(virtualenv, str):
        raise ValueError("virtualenv option must be a string")  # parseOptions
    toolchain = options.get("toolchain", "auto")
    # parseOptions(isPlugin=false for analyzers): no `venv` default, the ambient Python is allowed.
    if toolchain == "auto" and (_search_up(root, "uv.lock") or _search_up(root, "poetry.lock")):
        raise NotImplementedError("uv/poetry toolchain: not emulated (the pack uses pip)")
    if toolchain not in ("auto", "pip"):
        raise NotImplementedError(f"toolchain {toolchain}: not emulated")
    # newPip -> resolveVirtualEnvironmentPath: a relative path is joined to the root (the pack directory).
    venv = "" if not virtualenv else os.path.normpath(root / virtualenv)  # filepath.Join cleans the path
    if venv:
        python = str(Path(venv) / "bin" / "python")
        # pip.Command: cmd.Env = ActivateVirtualEnv(os.Environ(), venv); RunPlugin then appends req.Env
        # (the CLI's environment), and exec keeps the last value of a duplicated key.
        activated = {k: v for k, v in env.items() if k.upper() not in ("PYTHONHOME", "VIRTUAL_ENV")}
        activated["PATH"] = f"{Path(venv) / 'bin'}:{env.get('PATH', '')}"
        activated["VIRTUAL_ENV"] = venv
        child = {**activated, **env}
    else:
        # CommandPath: PULUMI_PYTHON_CMD, else python3, else python, looked up on PATH.
        names = [env["PULUMI_PYTHON_CMD"]] if env.get("PULUMI_PYTHON_CMD") else ["python3", "python"]
        found = [p for p in (_which(n, env) for n in names) if p]
        if not found:
            raise FileNotFoundError(f"failed to locate any of {names} on your PATH")
        python, child = found[0], dict(env)
    # A pack with __main__.py: `python -u -m pulumi.policy <req.Args> <program directory>`, cmd.Dir = the pack.
    return Launch([python, "-u", "-m", "pulumi.policy", ENGINE, str(root)], root, child)


LAUNCHERS = {"run-plugin": run_plugin_launch, "legacy-shim": legacy_shim_launch}


def base_interpreter() -> str:
    """The interpreter the virtualenv was made from, without the virtualenv's site-packages."""
    return str(getattr(sys, "_base_executable", "") or sys.executable)


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH whose only directory holds `python3` (the base interpreter), without pulumi-policy."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(base_interpreter())
    probe = subprocess.run([str(bin_dir / "python3"), "-c", "import pulumi.policy"],
                           env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode != 0 and "No module named 'pulumi" in probe.stderr, (
        f"{base_interpreter()} imports pulumi.policy: it cannot stand for a CI runner's python3")
    return str(bin_dir)


def ambient_env(path: str) -> dict[str, str]:
    """The CLI's environment: this process's, minus anything that points at the virtualenv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PULUMI_PYTHON_CMD")}
    env["PATH"] = path
    return env


@contextlib.contextmanager
def started(launch: Launch) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start the pack as launched and connect to the port it prints, as the engine does."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(launch.argv, cwd=launch.cwd, env=launch.env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        channel = None
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                ready = sel.select(timeout=START_TIMEOUT_S)
            line = proc.stdout.readline().decode().strip() if ready else ""
            if not line.isdigit():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                err.seek(0)
                why = err.read().decode(errors="replace").strip().splitlines()[-3:]
                pytest.fail(f"the pack did not start ({' '.join(launch.argv[:4])} ...): {line!r} {why}")
            channel = grpc.insecure_channel(f"127.0.0.1:{line}")
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            if channel is not None:
                channel.close()
            proc.kill()
            proc.wait()
            proc.stdout.close()


def interpreter_versions(launch: Launch, names: list[str]) -> dict[str, str | None]:
    """The version of each distribution as the launched interpreter sees it (None: not installed)."""
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n"
            "    try:\n        return m.version(n)\n"
            "    except m.PackageNotFoundError:\n        return None\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    done = subprocess.run([launch.argv[0], "-c", code, *names], cwd=launch.cwd, env=launch.env,
                          capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, str | None] = json.loads(done.stdout)
    return result


def pinned_requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_the_cli_starts_the_pack_with_a_python_that_holds_its_packages(launcher: str, bare_path: str) -> None:
    launch = LAUNCHERS[launcher](PACK_DIR, ambient_env(bare_path))

    with started(launch) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())

    assert info.name == PACK_NAME
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in ALL_POLICIES)
    # parliament is imported lazily, on the first IAM document: a pack that starts may still lack it.
    pins = pinned_requirements(PACK_DIR / "requirements.txt")
    assert interpreter_versions(launch, sorted(pins)) == pins


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_a_relative_virtualenv_resolves_against_the_pack_directory_to_the_programs_own(launcher: str) -> None:
    """Pulumi.yaml's virtualenv is relative to the project; the pack's to the pack: both name one .venv."""
    launch = LAUNCHERS[launcher](PACK_DIR, ambient_env("/nonexistent"))
    program = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["runtime"]["options"]
    program_venv = REPO / program["virtualenv"]
    assert launch.cwd.resolve() == PACK_DIR.resolve()
    assert os.path.normpath(launch.argv[0]) == os.path.normpath(program_venv.absolute() / "bin" / "python")


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_without_a_virtualenv_option_the_pack_gets_the_python3_on_path_and_cannot_start(
    launcher: str, bare_path: str, tmp_path: Path
) -> None:
    """The pack as it was (`runtime: python`): the CLI's python3 has no pulumi-policy, nothing starts."""
    pack = tmp_path / "policies"
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("__pycache__"))
    (pack / "PulumiPolicy.yaml").write_text(
        re.sub(r"(?ms)^runtime:.*?(?=^\S)", "runtime: python\n", (PACK_DIR / "PulumiPolicy.yaml").read_text()))
    launch = LAUNCHERS[launcher](pack, ambient_env(bare_path))
    assert launch.argv[0] == str(Path(bare_path) / "python3")

    with pytest.raises(pytest.fail.Exception, match="No module named 'pulumi"):
        with started(launch):
            pass


def test_a_virtualenv_that_does_not_exist_starts_nothing(bare_path: str, tmp_path: Path) -> None:
    pack = tmp_path / "elsewhere" / "policies"
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("__pycache__"))  # ../.venv is not there
    missing = tmp_path / "elsewhere" / ".venv"
    env = ambient_env(bare_path)

    with pytest.raises(ShimRefused, match=re.escape(f"{pack}/../.venv")):  # the shim does not clean the path
        legacy_shim_launch(pack, env)

    launch = run_plugin_launch(pack, env)
    assert launch.argv[0] == str(missing / "bin" / "python")
    with pytest.raises(FileNotFoundError), started(launch):
        pass
