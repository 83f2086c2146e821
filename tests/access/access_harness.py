"""The access tests' harness: both stacks with principals, the rules, and the independent simulator.

The simulator is `@cloud-copilot/iam-simulate` (npm, AGPL-3.0, test-only), pinned in
`tests/access/package.json` and `package-lock.json`, installed with `npm ci --prefix tests/access`
and driven through `tests/access/simulate.js`: one node process per test module, JSON batches on
stdin, one line of decisions per batch on stdout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from preview.access_matrix import AccessModel, Request, SecretInfo, collect
from preview.model import CollectedResource

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DRIVER = HERE / "simulate.js"
SIMULATOR_PACKAGE = HERE / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json"
INSTALL = "npm ci --prefix tests/access"

STACKS = ("staging", "production")
PROJECT = "secrets-platform"


def stack_values(stack: str) -> dict[str, Any]:
    """The real stack config file's `config:` mapping."""
    return dict(yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"])


ACCOUNT = str(stack_values("production")[f"{PROJECT}:accountId"])
REGION = str(stack_values("production")["aws:region"])
APP = str(yaml.safe_load((REPO / "catalog.yaml").read_text())["app"])


def principals_config(stack: str) -> dict[str, Any]:
    """The `secrets-platform:principals` the tests give each stack (the value proposed for the real
    files): one runtime role, one CI role and one role per consumer, named `<app>-<env>-<what>`."""
    role = f"arn:aws:iam::{ACCOUNT}:role/{APP}-{stack}"
    return {
        "runtime": [f"{role}-app"],
        "ci": [f"{role}-deploy"],
        "services": {consumer: [f"{role}-{consumer}"] for consumer in sorted(catalog_consumers())},
    }


def catalog() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "catalog.yaml").read_text())["secrets"])


def catalog_consumers() -> set[str]:
    return {c for entry in catalog().values() for c in entry.get("consumers", [])}


def rotation_strategies() -> dict[str, list[str]]:
    """Strategy -> the catalog secrets it rotates."""
    found: dict[str, list[str]] = {}
    for name, entry in catalog().items():
        rotation = entry.get("rotation")
        if isinstance(rotation, dict):
            found.setdefault(rotation["strategy"], []).append(name)
    return found


def rotation_masters(strategy: str) -> set[str]:
    return {entry["rotation"]["master"] for entry in catalog().values()
            if isinstance(entry.get("rotation"), dict) and entry["rotation"]["strategy"] == strategy
            and entry["rotation"].get("master")}


def all_rotation_masters() -> set[str]:
    return {m for strategy in rotation_strategies() for m in rotation_masters(strategy)}


def write_stack_config(stack: str, directory: Path, **overrides: Any) -> Path:
    """A copy of `Pulumi.<stack>.yaml` with the tests' principals (and any other overrides)."""
    values = stack_values(stack)
    values[f"{PROJECT}:principals"] = principals_config(stack)
    values.update({k if ":" in k else f"{PROJECT}:{k}": v for k, v in overrides.items()})
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": values}, sort_keys=False))
    return path


# The principals and the rules -------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A principal of the matrix as the rules see it."""

    environment: str
    kind: str
    """`runtime`, `ci`, `service`, `rotation`."""
    detail: str = ""
    """The consumer (service) or the strategy (rotation)."""

    @property
    def name(self) -> str:
        if self.kind == "runtime":
            return f"{APP}-{self.environment}-app"
        if self.kind == "ci":
            return f"{APP}-{self.environment}-deploy"
        if self.kind == "service":
            return f"{APP}-{self.environment}-{self.detail}"
        return f"{APP}-{self.environment}-rotate-{self.detail}"[:64]  # components.rotation.role_name

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.name}"

    def __str__(self) -> str:
        return f"{self.environment}:{self.kind}{':' + self.detail if self.detail else ''}"


def roles() -> list[Role]:
    """Every principal both stacks should give rights to, from the catalog and the tests' config."""
    found: list[Role] = []
    for env in STACKS:
        found += [Role(env, "runtime"), Role(env, "ci")]
        found += [Role(env, "service", c) for c in sorted(catalog_consumers())]
        found += [Role(env, "rotation", s) for s in sorted(rotation_strategies())]
    return found


def expected(role: Role, secret: SecretInfo, operation: str, *, ci_reads_values: bool) -> str:
    """What least privilege says, from the catalog and the access rules (never from the output)."""
    name = secret.name.split("/", 2)[2]
    own = secret.environment == role.environment and secret.name.startswith(f"{APP}/{role.environment}/")
    if role.kind == "runtime":
        # Reads every secret of its own environment but the admin credentials only a rotation uses;
        # never writes; never sees another environment.
        admin_only = name in all_rotation_masters() and not catalog()[name].get("consumers")
        if operation == "read":
            return "Allowed" if own and not admin_only else "ExplicitlyDenied"
        return "ExplicitlyDenied"
    if role.kind == "service":
        # Reads exactly the secrets whose `consumers` list it; never writes; never sees another
        # environment or an admin credential; other secrets of its environment are simply not granted.
        if not own or operation != "read":
            return "ExplicitlyDenied"
        if role.detail in catalog()[name].get("consumers", []):
            return "Allowed"
        admin_only = name in all_rotation_masters() and not catalog()[name].get("consumers")
        return "ExplicitlyDenied" if admin_only else "ImplicitlyDenied"
    if role.kind == "ci":
        if not own:
            return "ExplicitlyDenied"  # a pipeline manages its own environment only
        if operation == "read":
            return "Allowed" if ci_reads_values else "ImplicitlyDenied"
        if operation == "delete" and role.environment == "production":
            return "ExplicitlyDenied"  # nobody's pipeline deletes production's secrets
        return "Allowed"
    # A rotation function: the protocol's read and write on the secrets of its strategy, a read of
    # their admin secret, nothing else; Secrets Manager (not the function) calls RotateSecret.
    rotated = set(rotation_strategies()[role.detail])
    if not own:
        return "ExplicitlyDenied"
    if name in rotated:
        return "Allowed" if operation in ("read", "write") else "ImplicitlyDenied"
    if name in rotation_masters(role.detail):
        return "Allowed" if operation == "read" else "ImplicitlyDenied"
    return "ImplicitlyDenied"


# Both stacks ------------------------------------------------------------------------------------


@dataclass
class Stacks:
    """Both stacks' preview runs with the tests' principals, and the access model they declare."""

    resources: list[CollectedResource]
    model: AccessModel
    config_files: dict[str, Path]


def run_both(directory: Path, **overrides: Any) -> Stacks:
    from tests.conftest import run_stack

    files = {stack: write_stack_config(stack, directory, **overrides) for stack in STACKS}
    resources: list[CollectedResource] = []
    for stack in STACKS:
        resources += run_stack(stack, config_file=files[stack]).run.resources
    return Stacks(resources, collect(resources, account_id=ACCOUNT, region=REGION), files)


# The simulator ----------------------------------------------------------------------------------


class SimulatorError(RuntimeError):
    pass


class Simulator:
    """One node process running `simulate.js`; `decide()` sends one batch and reads one line back."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed: the access tests need Node.js >= 18 for the IAM simulator")
        if not SIMULATOR_PACKAGE.is_file():
            pytest.fail(f"the IAM simulator is not installed: run `{INSTALL}` (needs npm)", pytrace=False)
        self.process = subprocess.Popen(
            [node, str(DRIVER)], cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self.calls = 0

    def decide(self, requests: Sequence[Request]) -> list[str]:
        """The simulator's decision for each request, in order; any validation error fails the test."""
        return self.raw([r.to_simulation() for r in requests], [f"{r.principal} {r.action} {r.resource}"
                                                                 for r in requests])

    def raw(self, simulations: Sequence[dict[str, Any]], labels: Sequence[str] | None = None) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.calls += 1
        self.process.stdin.write(json.dumps(list(simulations)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise SimulatorError(f"the simulator exited: {stderr.strip()[:2000]}")
        answers = json.loads(line)
        if isinstance(answers, dict):
            raise SimulatorError(str(answers))
        errors = [f"{(labels or [''] * len(answers))[i]}: {a['error']}" for i, a in enumerate(answers) if "error" in a]
        if errors:
            raise SimulatorError(f"{len(errors)} request(s) rejected by the simulator, e.g. {errors[0][:1500]}")
        return [a["result"] for a in answers]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
