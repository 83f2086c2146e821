"""The catalog's JSON Schema: generated from the typed model, committed as `catalog.schema.json`, named by
every catalog's first line so that editors validate and complete it as it is typed, and kept in step with
what the program itself accepts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components import catalog_schema
from components.catalog import load_catalog
from components.errors import ConfigurationError

REPO = Path(__file__).resolve().parent.parent
CATALOGS = sorted([REPO / "catalog.yaml", *(REPO / "examples").glob("*/catalog.yaml")])
MODELINE = "# yaml-language-server: $schema="


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "catalog.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_the_committed_schema_and_reference_are_what_the_model_generates() -> None:
    assert (REPO / "catalog.schema.json").read_text() == catalog_schema.schema_text(), (
        "catalog.schema.json is out of date: run `python -m components.catalog_schema`")
    assert (REPO / "docs" / "catalog-reference.md").read_text() == catalog_schema.reference(), (
        "docs/catalog-reference.md is out of date: run `python -m components.catalog_schema`")


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((f"{where}.{name}", prop))
        for key, value in node.items():
            if key != "properties":
                found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_properties(value, f"{where}[{i}]"))
    return found


def test_every_field_says_what_it_is() -> None:
    missing = [where for where, prop in _properties(catalog_schema.schema()) if not prop.get("description")]
    assert missing == []


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_catalog_names_the_schema_and_meets_it(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE), f"{path}: the first line must be `{MODELINE}<path>`"
    # The editor resolves the path from the catalog's own folder.
    assert (path.parent / first.removeprefix(MODELINE)).resolve() == REPO / "catalog.schema.json"
    errors = sorted(_validator().iter_errors(yaml.safe_load(path.read_text())), key=str)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def _filot() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "catalog.yaml").read_text())
    return loaded


def _plant(change: str) -> dict[str, Any]:
    doc = copy.deepcopy(_filot())
    secret = doc["secrets"]["redis"]
    if change == "unknown field":
        secret["rotaton"] = secret.pop("rotation")
    elif change == "wrong class":
        secret["class"] = "secret"
    elif change == "days above AWS's limit":
        secret["rotation"]["every_days"] = 1001
    elif change == "short password":
        secret["keys"]["password"]["generate"]["length"] = 8
    elif change == "bad app name":
        doc["app"] = "Filot App"
    elif change == "unknown generator":
        secret["keys"]["password"]["generate"]["kind"] = "dice"
    return doc


@pytest.mark.parametrize("change", ["unknown field", "wrong class", "days above AWS's limit", "short password",
                                    "bad app name", "unknown generator"])
def test_what_the_schema_refuses_the_program_refuses_too(change: str, tmp_path: Path) -> None:
    """The editor's red line and the program's one-line error agree on single-field mistakes."""
    doc = _plant(change)
    assert list(_validator().iter_errors(doc)), f"the schema accepts a catalog with {change}"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigurationError):
        load_catalog(path)


def test_the_unchanged_catalog_loads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(_filot()))
    load_catalog(path)
    assert list(_validator().iter_errors(_filot())) == []
