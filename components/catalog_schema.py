"""The catalog's JSON Schema, generated from its typed model, and the reference table made from it.

`catalog.schema.json` is what editors validate a catalog against as it is typed (the
`# yaml-language-server: $schema=...` line at the top of each catalog, read by the YAML support of VS Code
and JetBrains IDEs); `docs/catalog-reference.md` is the same schema as a table. Both are generated here and
never edited by hand; a test fails when either differs from what the model gives.

    python -m components.catalog_schema           # write catalog.schema.json and docs/catalog-reference.md
    python -m components.catalog_schema --check   # exit 1 if either is out of date

The schema holds what a field accepts on its own (types, ranges, patterns, choices). The rules across
fields (a rotation's master exists, a template's variables are sibling keys, ...) are the program's:
they are checked when the catalog loads, with one line naming the file, the secret and the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.catalog import CatalogFile

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "catalog.schema.json"
REFERENCE_FILE = ROOT / "docs" / "catalog-reference.md"
SCHEMA_ID = "https://github.com/secrets-platform/secrets-platform/catalog.schema.json"


def _strip_titles(node: Any) -> Any:
    """pydantic titles every field with its capitalised name ("Every Days"): noise in an editor's hover."""
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items()
                if not (k == "title" and isinstance(v, str) and "properties" not in node)}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def schema() -> dict[str, Any]:
    """The catalog file's JSON Schema (draft 2020-12), from the model that loads it."""
    generated = _strip_titles(CatalogFile.model_json_schema(by_alias=True, mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "secrets-platform catalog",
        **generated,
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A field's accepted shape in a few words."""
    if "$ref" in prop:
        return f"object ({prop['$ref'].rsplit('/', 1)[-1]})"
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " or ".join(f"`{v}`" for v in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            parts = [_type(p, defs) for p in prop[key] if p.get("type") != "null"]
            return " or ".join(dict.fromkeys(parts))
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    if kind == "object" and "additionalProperties" in prop:
        return f"map of name to {_type(prop['additionalProperties'], defs)}"
    limits = []
    for word, key in (("≥", "minimum"), ("≤", "maximum"), ("length ≥", "minLength"), ("length ≤", "maxLength")):
        if key in prop:
            limits.append(f"{word} {prop[key]}")
    if "pattern" in prop:
        limits.append(f"`{prop['pattern']}`")
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def reference() -> str:
    """The schema as Markdown: one table per object, one row per field."""
    full = schema()
    defs: dict[str, Any] = full.get("$defs", {})
    lines = ["# Catalog reference", "",
             "Generated from the catalog's model by `python -m components.catalog_schema` (the same source as",
             "`catalog.schema.json`); do not edit by hand. The README's catalog section explains the fields in use;",
             "this lists every one.", ""]
    objects = [("The catalog file", full), *sorted(defs.items())]
    for name, node in objects:
        lines += [f"## {name}", ""]
        if node.get("description") and node is not full:
            lines += [_cell(node["description"]), ""]
        required = set(node.get("required", []))
        lines += ["| field | accepts | required | default | what it is |", "| --- | --- | --- | --- | --- |"]
        for field, prop in node.get("properties", {}).items():
            default = "" if "default" not in prop else f"`{json.dumps(prop['default'])}`"
            lines.append(f"| `{field}` | {_cell(_type(prop, defs))} | {'yes' if field in required else ''} | "
                         f"{default} | {_cell(prop.get('description', ''))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.catalog_schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    wanted = {SCHEMA_FILE: schema_text(), REFERENCE_FILE: reference()}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m components.catalog_schema", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
