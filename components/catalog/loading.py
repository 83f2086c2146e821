"""Reading a catalog (or stack) YAML file: libyaml where it is built in, duplicate keys refused, bounded size,
depth and node count, and the line of a mistake turned into the secret and field it belongs to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from components.errors import ConfigurationError

# libyaml's parser (in PyYAML's wheels) reads a 1,000-secret catalog about five times faster than the
# pure-Python one; the pure-Python loader remains the fallback where PyYAML was built without it.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A YAML loader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not a {type(key).__name__}", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

YAML_MAX_BYTES = 16 * 1024 * 1024
"""Largest YAML file read: a catalog of 3,000 secrets grouped as JSON with consumers is about 1.2 MB
(bench/generate.py's `cdk` shape), so 16 MiB leaves room for ten times that and still refuses a file
that is no catalog before it is parsed."""
YAML_MAX_DEPTH = 32
"""Deepest nesting accepted: a catalog needs about 8 levels."""
YAML_MAX_NODES = 2_000_000
"""Most values a file may hold once its aliases are expanded (an alias bomb holds billions)."""


def _shape_problem(root: yaml.Node, max_depth: int = YAML_MAX_DEPTH) -> str | None:
    """Why a composed document is too deep, too large once aliases are expanded, or cyclic.

    Walks the node graph once (aliases are shared nodes), without recursion, memoising each node's
    expanded size and depth, so a bomb is measured, never expanded.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > YAML_MAX_NODES:
                return f"the document holds more than {YAML_MAX_NODES:,} values once its aliases are expanded"
            if depth[key] > max_depth:
                return f"the document nests deeper than {YAML_MAX_DEPTH} levels"
            continue
        if key in size:
            continue
        if key in open_nodes:
            return "an alias refers to a value that contains it"
        if len(open_nodes) > max_depth:
            return f"the document nests deeper than {YAML_MAX_DEPTH} levels"
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return None


def _located_problem(node: yaml.Node, path: tuple[str, ...] = ()) -> tuple[str, str | None] | None:
    """The first shape problem and the key (up to two levels: `config` -> `secrets-platform:x`) under
    which it sits, so that the message can name the field."""
    if isinstance(node, yaml.MappingNode) and len(path) < 2:
        for key_node, value_node in node.value:
            label = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            found = _located_problem(value_node, (*path, label))
            if found:
                return found
    problem = _shape_problem(node, YAML_MAX_DEPTH - len(path))
    return (problem, ".".join(path) or None) if problem else None


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every read or syntax error into a ConfigurationError.

    Bounded: a regular file of at most YAML_MAX_BYTES, nested at most YAML_MAX_DEPTH levels, at most
    YAML_MAX_NODES values with aliases expanded; a larger or deeper input is refused, never expanded.
    """
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise ConfigurationError(str(path), what)
        with path.open("rb") as handle:
            raw = handle.read(YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot read the file ({exc.strerror})") from exc
    if len(raw) > YAML_MAX_BYTES:
        raise ConfigurationError(str(path), f"is larger than {YAML_MAX_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        found = _located_problem(node) if node is not None else None
        if found:
            raise ConfigurationError(str(path), f"invalid YAML: {found[0]}", field=found[1])
        return loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ConfigurationError(str(path), f"invalid YAML: the document nests deeper than {YAML_MAX_DEPTH} "
                                 "levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        secret = _secret_at_line(text, mark.line) if mark else None
        raise ConfigurationError(str(path), f"invalid YAML{where}: {problem}", secret=secret) from exc
    finally:
        loader.dispose()


def _secret_at_line(text: str, line: int) -> str | None:
    """The name of the catalog secret whose block contains a line (for error messages)."""
    current = None
    in_secrets = False
    for number, raw in enumerate(text.splitlines()):
        if number > line:
            break
        if re.match(r"^secrets\s*:", raw):
            in_secrets = True
            continue
        if in_secrets:
            match = re.match(r"^  ([A-Za-z0-9_-]+)\s*:", raw)
            if match:
                current = match.group(1)
            elif raw and not raw.startswith(" ") and not raw.startswith("#"):
                in_secrets = False
                current = None
    return current


def _best_error(errors: list[Any]) -> Any:
    """The first error, or, where a union field failed every branch, the branch of the input's own type
    (`required: []` is a too-short list, not an invalid boolean)."""
    first = errors[0]
    kind = {list: "list[", dict: "dict[", str: "str", bool: "bool", int: "int"}.get(type(first.get("input")))
    same_field = [e for e in errors if tuple(e["loc"][:-1]) == tuple(first["loc"][:-1])]
    return next((e for e in same_field if kind and str(e["loc"][-1]).startswith(kind)), first)


def _locate(loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """Split a pydantic error location into (secret, field), without pydantic's own labels."""
    parts: list[str] = []
    previous = ""
    for raw in (str(p) for p in loc):
        label = any(c in raw for c in "[](),'") or raw in ("Rotation", "function-after", "bool", "str", "int")
        # pydantic inserts the discriminator tag right after 'generate'; a later 'bytes' is the field.
        tag = previous == "generate" and raw in ("bytes", "password", "uuid")
        previous = raw
        if not (label or tag):
            parts.append(raw)
    if len(parts) >= 2 and parts[0] == "secrets":
        return parts[1], ".".join(parts[2:]) or None
    return None, ".".join(parts) or None


