"""The offline preview's runtime (preview/runtime.py): registrations proceed while the program runs."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from preview.runtime import run_program
from preview.stackconfig import StackConfig

PROGRAM = """\
import pulumi
import pulumi_random as random
import probe

for i in range(probe.COUNT):
    random.RandomString(f"s{i}", length=8 + i % 5, special=False)
# How many registrations the monitor had seen when the program finished declaring.
probe.seen_at_end = len(probe.seen)
# A resource declared inside an apply, while the event loop runs.
pulumi.Output.from_input("x").apply(lambda _: random.RandomString("inner", length=6))
"""


@pytest.fixture
def probe() -> Iterator[types.ModuleType]:
    module = types.ModuleType("probe")
    module.COUNT = 300  # type: ignore[attr-defined]
    module.seen = []  # type: ignore[attr-defined]
    sys.modules["probe"] = module
    yield module
    del sys.modules["probe"]


def test_registrations_proceed_while_the_program_declares(tmp_path: Path, probe: types.ModuleType) -> None:
    """Without the pump every registration waits until the program returns (the peak memory of a
    large preview); with it, most are done before the program ends, and each is registered once with
    its own inputs."""
    (tmp_path / "main.py").write_text(PROGRAM)
    stack = StackConfig(project="probe", stack="dev", values={}, secret_keys=[], config_file=tmp_path / "x.yaml")
    run = run_program(stack, tmp_path, "main.py", on_resource=lambda r: probe.seen.append(r.name))
    assert probe.seen_at_end >= probe.COUNT // 2
    by_name = {r.name: r for r in run.resources if r.custom}
    assert len(by_name) == probe.COUNT + 1 == len([r for r in run.resources if r.custom])
    assert all(by_name[f"s{i}"].inputs["length"] == 8 + i % 5 for i in range(probe.COUNT))
    assert "inner" in by_name


NESTED = """\
import pulumi
import pulumi_random as random


class Inner(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Inner", name, None, opts)
        random.RandomString(f"{name}-s", length=8, opts=pulumi.ResourceOptions(parent=self))


class Outer(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Outer", name, None, opts)
        Inner(f"{name}-inner", pulumi.ResourceOptions(parent=self))


Outer("o")
random.RandomString("top", length=8)
"""


def test_urns_are_the_engines(tmp_path: Path) -> None:
    """The engine's URN type is the parent's whole qualified type chain plus the resource's type, and a
    top-level resource's is its own type (pulumi resource.NewURN with the parent's QualifiedType, the
    root stack left out); `pulumi up --replace <urn>` needs exactly that string."""
    (tmp_path / "main.py").write_text(NESTED)
    stack = StackConfig(project="probe", stack="dev", values={}, secret_keys=[], config_file=tmp_path / "x.yaml")
    urns = {r.name: r.urn for r in run_program(stack, tmp_path, "main.py").resources}
    prefix = "urn:pulumi:dev::probe::"
    assert urns["o"] == prefix + "test:index:Outer::o"
    assert urns["o-inner"] == prefix + "test:index:Outer$test:index:Inner::o-inner"
    assert urns["o-inner-s"] == (prefix + "test:index:Outer$test:index:Inner$random:index/randomString:RandomString"
                                 "::o-inner-s")
    assert urns["top"] == prefix + "random:index/randomString:RandomString::top"
