"""Shared fixtures: run the real program offline for a stack, or for a project made by the test."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from preview.cli import Report, preview

REPO = Path(__file__).resolve().parent.parent


def run_stack(stack: str, project_dir: Path = REPO, config_file: Path | None = None) -> Report:
    """The offline preview of a stack without the policy pack (policy tests evaluate it themselves)."""
    return preview(stack, project_dir, config_file, policies=False)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """A project directory with this repository's Pulumi.yaml, a catalog and a stack config."""

    def make(catalog: str, stack_config: str, stack: str = "staging") -> Path:
        shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
        (tmp_path / "catalog.yaml").write_text(textwrap.dedent(catalog))
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(textwrap.dedent(stack_config))
        return tmp_path

    return make


MINIMAL_STACK = """\
config:
  aws:region: eu-west-1
  secrets-platform:accountId: "210987654321"
  secrets-platform:recoveryWindowDays: 7
"""


RENEWED_SECRET = """\
  refresh-token:
    description: OAuth refresh token the worker renews
    class: critical
    rotation: application
    consumers: [worker]
    writers: [worker]
    value: {env: REFRESH_TOKEN, external: {}}
"""
"""A catalog entry (under `secrets:`) whose value the application renews and writes back."""


def current_build(project: Path) -> None:
    """A rotation package build in `project` whose recorded digest matches this checkout's sources, so
    that the program runs as under `pulumi up` after `make lambda` (the package's files are not needed
    by the mock runtime)."""
    from components import lambda_package

    build = project / lambda_package.BUILD_DIR
    build.mkdir(parents=True, exist_ok=True)
    (build / lambda_package.STAMP).write_text(lambda_package.source_digest() + "\n")
