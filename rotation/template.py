"""Catalog templates (`postgresql://{username}:{password}@{host}:{port}/{dbname}`): the one parser and renderer.

The program renders a template into a secret's first version (components/secret.py) and the rotation function
renders it again with the new password (rotation/strategies): both call `render` here, so a value built at
deploy and one built at rotation follow the same rules. This module is part of the Lambda package: standard
library only.

Syntax:
- `{key}`: the value of another key of the secret, percent-encoded whole (`urllib.parse.quote`, nothing safe),
  so that no value can break the URL around it; `true`/`false` for a boolean.
- `[...]`: an optional part, written only when every `{key}` inside it has a value
  (`redis://[:{password}@]{host}:{port}`): a server with a password in one environment and none in another.
  It holds at least one `{key}`, and no other `[...]`.
- `[[` and `]]`: a literal `[` and `]`, inside an optional part or outside (`redis://[[::1]]:{port}` is
  `redis://[::1]:6379`). A single `[` or `]` always opens or closes an optional part.
Anything else is literal text (a `{` not followed by a key name and `}` included).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
"""`{key}`: a key name as the catalog allows it."""


class TemplateError(ValueError):
    """A template that cannot be parsed, or rendered without a value it requires. The message quotes the
    template's syntax or a key's name, never a value."""


@dataclass(frozen=True)
class OptionalPart:
    """An optional part: its pieces, written only when each of its keys has a value."""

    pieces: tuple[str | Ref, ...]


@dataclass(frozen=True)
class Ref:
    """A `{key}` placeholder."""

    key: str


Piece = str | Ref | OptionalPart


@dataclass(frozen=True)
class Template:
    """A parsed template."""

    pieces: tuple[Piece, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """Keys outside every optional part: the template has no value without them."""
        return tuple(p.key for p in self.pieces if isinstance(p, Ref))

    @property
    def optional(self) -> tuple[tuple[str, ...], ...]:
        """The keys of each optional part, in order."""
        return tuple(tuple(q.key for q in p.pieces if isinstance(q, Ref)) for p in self.pieces
                     if isinstance(p, OptionalPart))

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key the template names, once each, in order."""
        seen = dict.fromkeys([*self.required, *(k for part in self.optional for k in part)])
        return tuple(seen)


@functools.lru_cache(maxsize=1024)
def parse(template: str) -> Template:
    """Parse `template`; TemplateError (one line, the reason and where) for nested, unclosed or stray brackets
    and for an optional part without a `{key}`."""
    pieces: list[Piece] = []
    inner: list[str | Ref] | None = None  # the optional part being read
    opened = 0
    text: list[str] = []
    i = 0

    def flush() -> None:
        if text:
            (pieces if inner is None else inner).append("".join(text))
            text.clear()

    while i < len(template):
        char = template[i]
        if char in "[]" and template[i + 1:i + 2] == char:  # `[[` / `]]`: a literal bracket
            text.append(char)
            i += 2
            continue
        if char == "[":
            if inner is not None:
                raise TemplateError(f"an optional part opened at character {opened + 1} holds another '[' at "
                                    f"character {i + 1}: optional parts do not nest (a literal bracket is '[[')")
            flush()
            inner, opened = [], i
        elif char == "]":
            if inner is None:
                raise TemplateError(f"the ']' at character {i + 1} closes no optional part (a literal bracket is "
                                    "']]')")
            flush()
            if not any(isinstance(p, Ref) for p in inner):
                raise TemplateError(f"the optional part at character {opened + 1} holds no {{key}}, so nothing "
                                    "decides whether it is written (literal brackets are '[[' and ']]')")
            pieces.append(OptionalPart(tuple(inner)))
            inner = None
        elif char == "{" and (match := PLACEHOLDER.match(template, i)):
            flush()
            (pieces if inner is None else inner).append(Ref(match.group(1)))
            i = match.end()
            continue
        else:
            text.append(char)
        i += 1
    if inner is not None:
        raise TemplateError(f"the optional part opened at character {opened + 1} is never closed with ']' (a "
                            "literal bracket is '[[')")
    flush()
    return Template(tuple(pieces))


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _encoded(value: object) -> str:
    return urllib.parse.quote(_text(value), safe="")


def _has(values: Mapping[str, object], key: str) -> bool:
    return values.get(key) is not None


def renders(template: str, values: Mapping[str, object]) -> bool:
    """Whether `template` has a value with these values: every key outside its optional parts has one."""
    return all(_has(values, key) for key in parse(template).required)


def render(template: str, values: Mapping[str, object]) -> str:
    """`template` with each `{key}` replaced by its percent-encoded value; an optional part is written only
    when every key inside it has a value (not missing, not null). A required key without a value is a
    TemplateError naming the key."""
    out: list[str] = []
    for piece in parse(template).pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, Ref):
            if not _has(values, piece.key):
                raise TemplateError(f"the template needs '{piece.key}', which has no value")
            out.append(_encoded(values[piece.key]))
        elif all(_has(values, q.key) for q in piece.pieces if isinstance(q, Ref)):
            out.extend(q if isinstance(q, str) else _encoded(values[q.key]) for q in piece.pieces)
    return "".join(out)


def rebuilt(data: Mapping[str, object], templates: Mapping[str, str]) -> dict[str, object]:
    """`data` with each templated key rendered again from the other keys (after a rotation changed one): a key
    whose template has no value here (a required key unset) is left out, as the program leaves it out."""
    new = {k: v for k, v in data.items() if k not in templates}
    for key, template in templates.items():
        if renders(template, new):
            new[key] = render(template, new)
    return new


def parameter(value: object) -> dict[str, str] | None:
    """A rotation target's `templates` parameter (key -> catalog template, as the program sends it), each
    parsed; TemplateError for anything else."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TemplateError("'templates' must map key names to template strings")
    for key, template in value.items():
        try:
            parse(template)
        except TemplateError as exc:
            raise TemplateError(f"'templates.{key}': {exc}") from None
    return dict(value)
