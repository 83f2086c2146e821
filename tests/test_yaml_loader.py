"""The catalog and stack config loader: libyaml's parser where PyYAML has it, the same rules either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.catalog import loading as catalog
from components.errors import ConfigurationError

DUPLICATE = "secrets:\n  a: {description: x}\n  a: {description: y}\n"
ANCHORED = "base: &b {class: critical}\nsecrets:\n  a: *b\n"


def test_the_c_parser_is_used_when_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(catalog._UniqueKeyLoader, yaml.CSafeLoader)


class _PurePythonLoader(yaml.SafeLoader):
    """What components.catalog builds when PyYAML has no CSafeLoader: the same mapping constructor on
    the pure-Python SafeLoader."""


_PurePythonLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, catalog._construct_mapping)


@pytest.fixture(params=["c", "python"])
def loader_module(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """components.catalog with libyaml's parser, and with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(catalog, "_UniqueKeyLoader", _PurePythonLoader)
    yield catalog


def test_both_loaders_refuse_a_duplicate_key(loader_module: object, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(DUPLICATE)
    with pytest.raises(ConfigurationError, match="duplicate key 'a' \\(first at line 2\\)"):
        loader_module.load_yaml(path)  # type: ignore[attr-defined]


def test_both_loaders_read_the_same_document(loader_module: object, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(ANCHORED)
    assert loader_module.load_yaml(path) == {  # type: ignore[attr-defined]
        "base": {"class": "critical"}, "secrets": {"a": {"class": "critical"}}}


def test_both_loaders_name_the_line_of_a_syntax_error(loader_module: object, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("secrets:\n  a: {description: x\n")
    with pytest.raises(ConfigurationError, match="invalid YAML at line 3"):
        loader_module.load_yaml(path)  # type: ignore[attr-defined]
