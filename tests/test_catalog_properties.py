"""Property tests: every malformed catalog or stack config ends in one `ConfigurationError`.

Malformed inputs are made by mutating a valid catalog (`BASE`, which exercises every field) or a
valid stack config: drop a required field, add an unknown one, give a field the wrong type, bad
names, duplicate YAML keys, bad generators, templates, rotations and environment variable names,
random bytes and YAML-ish garbage. Each must end in a `ConfigurationError` whose message starts
with the file and, when the mutation is inside a secret, names that secret and the field. Never
another exception type, never a traceback.

The `@example`s pin the mutations that once escaped as raw exceptions, so that they are tried on
every run.
"""

from __future__ import annotations

import copy
import gc
import io
import re
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.catalog import SECRET_NAME, load_catalog, parse_catalog
from components.errors import ConfigurationError
from preview.cli import main
from tests.conftest import REPO

PATH = "examples/shop/catalog.yaml"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE: dict[str, Any] = {
    "app": "shop",
    "owner": "platform",
    "description": "A valid catalog that uses every field; each test breaks one thing",
    "secrets": {
        "session-secret": {
            "description": "Signs sessions",
            "class": "critical",
            "owner": "auth",
            "rotation": {"strategy": "token", "every_days": 90},
            "consumers": ["api"],
            "value": {"env": "SESSION_SECRET", "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}},
        },
        "payments": {
            "description": "Payment provider",
            "class": "critical",
            "rotation": "on-compromise",
            "rotation_reason": "issued by the payment provider in its dashboard",
            "environments": ["production", "staging"],
            "consumers": ["api", "worker"],
            "keys": {
                "apiKey": {"env": "PAYMENTS_API_KEY", "external": {}},
                "webhookKey": {"env": ["PAYMENTS_WEBHOOK_KEY"], "external": {"config": "paymentsWebhook"},
                               "required": False},
                "endpoint": {"env": "PAYMENTS_ENDPOINT", "config": {"default": "api.payments.example.net"}},
                "url": {"env": "PAYMENTS_URL", "template": "https://{endpoint}/v1"},
            },
        },
        "database": {
            "description": "Application database role",
            "class": "critical",
            "owner": "data",
            "rotation": {"strategy": "postgres-single-user", "schedule": "rate(30 days)", "window": "4h"},
            "keys": {
                "engine": {"config": {"default": "postgres"}},
                "host": {"env": "DB_HOST", "config": {}},
                "port": {"env": "DB_PORT", "config": {"default": "5432"}, "type": "integer"},
                "dbname": {"config": {"default": "shop"}},
                "username": {"config": {"config": "databaseUser", "default": "shop_app"}},
                "password": {"env": "DB_PASSWORD", "generate": {
                    "kind": "password", "length": 48, "alphabet": "custom",
                    "chars": string.ascii_letters + string.digits + "-_", "exclude": "-"}},
                "url": {"env": "DATABASE_URL", "template": "postgresql://{username}:{password}@{host}:{port}/{dbname}"},
            },
        },
        "request-salt": {
            "description": "Salts request ids in logs",
            "class": "configuration",
            "weak_reason": "not a credential; only makes ids unguessable",
            "value": {"env": "REQUEST_SALT", "generate": {"kind": "uuid"}},
        },
        "feature-flags": {
            "description": "Enabled feature flags",
            "class": "configuration",
            "value": {"env": "FEATURE_FLAGS", "config": {"default": "beta-search"}},
        },
    },
}

# The kind of every field, by name; `config` is a mapping on a value and a key name inside a source.
KINDS: dict[str, str] = {
    "app": "str", "owner": "str", "description": "str", "class": "literal", "environments": "list",
    "rotation": "rotation", "weak_reason": "str", "rotation_reason": "str", "consumers": "list",
    "value": "mapping", "keys": "mapping", "env": "env", "generate": "mapping", "external": "mapping",
    "config": "mapping", "template": "str", "required": "bool", "type": "literal", "kind": "literal",
    "bytes": "int", "encoding": "literal", "length": "int", "alphabet": "literal", "chars": "str",
    "exclude": "str", "strategy": "literal", "every_days": "int", "schedule": "str", "window": "str",
    "default": "str", "secrets": "mapping",
}
SOURCE_FIELDS = {"config": "str", "default": "str"}
"""Inside `external:` / `config:` a field `config` is the stack config key (a string)."""

PYDANTIC_LABEL = re.compile(r"^function-after\[.*\]$")
LABEL_WORDS = frozenset({"bytes", "password", "uuid"})
"""Words components.catalog._locate drops from every field path (pydantic's generator branch labels),
even where they are a real field or key name; checked on their own in test_field_paths_are_clean."""


def sites(node: Any = None, path: tuple[str, ...] = (), parent: str = "") -> Iterator[tuple[tuple[str, ...], str]]:
    """Every (path, kind) of a field in BASE (mapping entries of `secrets` and `keys` are not fields)."""
    node = BASE if node is None else node
    if not isinstance(node, dict):
        return
    for name, child in node.items():
        if parent in ("secrets", "keys"):
            yield from sites(child, (*path, name), "")  # a secret or a key: its fields below
            continue
        kind = SOURCE_FIELDS.get(name, "str") if parent in ("external", "config") else KINDS[name]
        yield (*path, name), kind
        if isinstance(child, dict):
            yield from sites(child, (*path, name), name)


SITES = list(sites())


def located(path: tuple[str, ...]) -> tuple[str | None, str]:
    """(secret, dotted field inside the secret) of a path in the catalog; secret None at top level."""
    if len(path) >= 2 and path[0] == "secrets":
        return path[1], ".".join(path[2:])
    return None, ".".join(path)


def get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutated(path: tuple[str, ...], change: Any) -> dict[str, Any]:
    """A deep copy of BASE with `change(parent_mapping, last_key)` applied at path."""
    data = copy.deepcopy(BASE)
    parent = get(data, path[:-1])
    change(parent, path[-1])
    return data


def normalized(field: str) -> str:
    """A field without pydantic's union-branch labels (checked on their own in test_field_paths_are_clean)."""
    return ".".join(p for p in field.split(".") if not PYDANTIC_LABEL.match(p))


def related(field: str, expected: str) -> bool:
    """Whether two dotted paths lie on one branch (one is a prefix of the other at a dot)."""
    a = [p for p in field.split(".") if p not in LABEL_WORDS]
    b = [p for p in expected.split(".") if p not in LABEL_WORDS]
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def expect_error(data: Any, secret: str | None = None, field: str | None = None,
                 path: str = PATH) -> ConfigurationError:
    """parse_catalog must raise ConfigurationError (any other exception propagates and fails the test)."""
    with pytest.raises(ConfigurationError) as caught:
        parse_catalog(data, path)
    error = caught.value
    message = str(error)
    assert message.startswith(path + ":") or message.startswith(path + ", "), message
    assert "Traceback" not in message, message
    if secret is not None:
        assert error.secret == secret, message
        assert error.field, f"the field is not named: {message}"
        if field is not None:
            assert related(normalized(error.field), field), (message, field)
    return error


def test_the_base_catalog_is_valid() -> None:
    catalog = parse_catalog(copy.deepcopy(BASE), PATH)
    assert set(catalog.secrets) == set(BASE["secrets"])
    assert {path for path, _ in SITES} >= {("app",), ("secrets", "database", "keys", "password", "generate", "chars")}


# --- structural mutations ------------------------------------------------------------------------------

REQUIRED = [
    ("app",), ("owner",), ("secrets",),
    *[("secrets", s, f) for s in BASE["secrets"] for f in ("description", "class")],
    ("secrets", "session-secret", "value", "generate", "kind"),
    ("secrets", "session-secret", "value", "generate", "bytes"),
    ("secrets", "session-secret", "value", "generate", "encoding"),
    ("secrets", "database", "keys", "password", "generate", "length"),
    ("secrets", "database", "keys", "password", "generate", "chars"),
    ("secrets", "session-secret", "rotation", "strategy"),
    ("secrets", "session-secret", "rotation", "every_days"),
    ("secrets", "database", "rotation", "schedule"),
    ("secrets", "payments", "rotation_reason"),
    # A value without its source.
    ("secrets", "session-secret", "value", "generate"),
    ("secrets", "payments", "keys", "apiKey", "external"),
    ("secrets", "payments", "keys", "url", "template"),
    ("secrets", "feature-flags", "value", "config"),
]


@FAST
@given(st.sampled_from(REQUIRED))
def test_dropping_a_required_field(path: tuple[str, ...]) -> None:
    secret, field = located(path)
    expect_error(mutated(path, lambda parent, key: parent.pop(key)), secret, field)


UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["generat", "clas", "descripton", "rotate", "envs", "requird", "default_value", "secret"]),
    st.from_regex(r"x[a-z_]{1,10}", fullmatch=True),
)
MAPPING_SITES = [()] + [p for p, kind in SITES if kind in ("mapping", "rotation") and p[-1] not in ("secrets", "keys")
                        and isinstance(get(BASE, p), dict)]
MAPPING_SITES += [("secrets", s) for s in BASE["secrets"]]
MAPPING_SITES += [("secrets", s, "keys", k) for s, e in BASE["secrets"].items() for k in e.get("keys", {})]


@FAST
@given(st.sampled_from(MAPPING_SITES), UNKNOWN_NAMES)
def test_an_unknown_field(path: tuple[str, ...], name: str) -> None:
    data = copy.deepcopy(BASE)
    get(data, path)[name] = "x"
    secret, where = located((*path, name))
    error = expect_error(data, secret, where)
    assert error.reason == "unknown field" or error.reason.startswith(("unknown field; did you mean ",
                                                                     "unknown field; '"))
    assert error.field is not None and normalized(error.field).endswith(name), str(error)


def wrong_value(kind: str) -> st.SearchStrategy[Any]:
    """Values that are never valid for a field of this kind."""
    not_text = st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    return {
        "str": not_text,
        "literal": st.one_of(not_text, st.from_regex(r"[a-z]{1,8}q", fullmatch=True)),
        "int": st.one_of(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.lists(st.integers(), max_size=2),
                         st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=1)),
        "bool": st.one_of(st.from_regex(r"(maybe|sure|nope|ja|nein)", fullmatch=True),
                          st.integers().filter(lambda i: i not in (0, 1)), st.lists(st.booleans(), max_size=2)),
        "mapping": st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
        "rotation": st.one_of(st.integers(), st.from_regex(r"(weekly|yearly|never|token)", fullmatch=True),
                              st.lists(st.integers(), max_size=2)),
        "list": st.one_of(st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                          st.text(max_size=5), st.lists(st.integers(), min_size=1, max_size=2)),
        "env": st.one_of(st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                         st.lists(st.integers(), min_size=1, max_size=2)),
    }[kind]


@FAST
@given(st.data())
def test_a_field_of_the_wrong_type(data: st.DataObject) -> None:
    path, kind = data.draw(st.sampled_from(SITES))
    value = data.draw(wrong_value(kind))
    secret, field = located(path)
    if path == ("secrets",) or (len(path) == 3 and path[2] in ("value", "keys")):
        secret, field = None, None  # the whole shape of a secret: see test_secret_shape_errors_name_the_field
    expect_error(mutated(path, lambda parent, key: parent.__setitem__(key, value)), secret, field)


# --- names ----------------------------------------------------------------------------------------------

BAD_SECRET_NAMES = st.one_of(
    st.text(min_size=0, max_size=70).filter(lambda s: not SECRET_NAME.match(s)),
    st.from_regex(r"[A-Z][a-z]{1,8}|[a-z]+_[a-z]+|-[a-z]+|[a-z]{64,70}", fullmatch=True),
    st.integers(),
)


@FAST
@given(BAD_SECRET_NAMES)
def test_a_bad_secret_name(name: Any) -> None:
    data = copy.deepcopy(BASE)
    data["secrets"][name] = data["secrets"].pop("feature-flags")
    error = expect_error(data)
    assert error.secret == str(name) and error.field == "name", str(error)


@FAST
@given(st.from_regex(r"[a-z]{0,3}[A-Z0-9 ]?", fullmatch=True).filter(
    lambda s: not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", s)) | st.integers())
def test_a_bad_app_name(name: Any) -> None:
    data = copy.deepcopy(BASE)
    data["app"] = name
    error = expect_error(data)
    assert error.field == "app", str(error)


BAD_KEY_NAMES = st.from_regex(r"[0-9_-][a-z]{0,5}|[a-z]+-[a-z]+|[a-z]+ [a-z]+|[a-z]{65,70}", fullmatch=True)


@FAST
@given(BAD_KEY_NAMES)
@example("api-key")
def test_a_bad_key_name_names_the_key(name: str) -> None:
    """A JSON key that does not match KEY_NAME is reported at `keys.<key>`."""
    data = copy.deepcopy(BASE)
    data["secrets"]["payments"]["keys"][name] = data["secrets"]["payments"]["keys"].pop("webhookKey")
    error = expect_error(data, "payments")
    assert error.field is not None and error.field.startswith("keys"), str(error)


SHAPES = [
    ("value and keys", lambda s: s.__setitem__("keys", {"a": {"env": "A_VAR", "external": {}}})),
    ("neither value nor keys", lambda s: s.pop("value")),
    ("value: null", lambda s: s.__setitem__("value", None)),
    ("empty keys", lambda s: (s.pop("value"), s.__setitem__("keys", {}))),
]


@pytest.mark.parametrize(("what", "change"), SHAPES, ids=[s[0] for s in SHAPES])
def test_secret_shape_errors_name_the_field(what: str, change: Any) -> None:
    """'give exactly one of value or keys' and "'keys' is empty" say where: `value` / `keys`."""
    data = copy.deepcopy(BASE)
    change(data["secrets"]["feature-flags"])
    error = expect_error(data, "feature-flags")
    assert error.field in ("value", "keys"), str(error)


@pytest.mark.parametrize("entry", [None, [], "plain", 3], ids=["null", "list", "string", "int"])
def test_a_secret_that_is_not_a_mapping_names_it(entry: Any) -> None:
    data = copy.deepcopy(BASE)
    data["secrets"]["feature-flags"] = entry
    error = expect_error(data)
    assert error.secret == "feature-flags", str(error)


# --- generators, templates, rotations, environment variables ------------------------------------------

BAD_GENERATORS = st.one_of(
    st.builds(lambda n, e: {"kind": "bytes", "bytes": n, "encoding": e},
              st.integers().filter(lambda n: not 8 <= n <= 1024), st.sampled_from(["hex", "base64"])),
    st.builds(lambda n: {"kind": "bytes", "bytes": n, "encoding": "hex"}, st.integers(8, 31)),  # < 256 bits
    st.builds(lambda e: {"kind": "bytes", "bytes": 32, "encoding": e},
              st.text(max_size=8).filter(lambda e: e not in ("hex", "base64"))),
    st.builds(lambda k: {"kind": k}, st.text(max_size=8).filter(lambda k: k not in ("bytes", "password", "uuid"))),
    st.builds(lambda n: {"kind": "password", "length": n}, st.integers().filter(lambda n: not 8 <= n <= 4096)),
    st.builds(lambda n: {"kind": "password", "length": n}, st.integers(8, 42)),  # alphanumeric < 256 bits
    st.just({"kind": "password", "length": 64, "alphabet": "custom"}),
    st.just({"kind": "password", "length": 64, "chars": "abc"}),
    st.builds(lambda c: {"kind": "password", "length": 64, "alphabet": "custom", "chars": c, "exclude": c},
              st.text(min_size=1, max_size=8)),
    st.just({"kind": "password", "length": 4096, "alphabet": "hex", "exclude": "0123456789abcde"}),
    st.just({"kind": "uuid"}),  # 122 bits: too few for a critical value without weak_reason
    st.builds(lambda x: {"kind": "uuid", "bytes": x}, st.integers(8, 64)),
)


@FAST
@given(BAD_GENERATORS, st.sampled_from([("session-secret", "value"), ("database", "keys.password")]))
def test_a_bad_generator(spec: dict[str, Any], where: tuple[str, str]) -> None:
    secret, field = where
    data = copy.deepcopy(BASE)
    get(data, ("secrets", secret, *field.split(".")))["generate"] = spec
    expect_error(data, secret, f"{field}.generate")


BAD_TEMPLATES = [
    ("keys.url", "https://{host}/v1"),                # not a key of this secret
    ("keys.url", "https://{url}/v1"),                 # itself
    ("keys.url", "https://{endpoint}/{url}"),
    ("keys.endpoint", "https://{url}"),               # a key that is itself a template
]


@FAST
@given(st.one_of(
    st.sampled_from(BAD_TEMPLATES),
    st.builds(lambda name: ("keys.url", f"https://{{{name}}}/v1"),
              st.from_regex(r"[a-z][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
                  lambda n: n not in BASE["secrets"]["payments"]["keys"])),
))
def test_a_bad_template(case: tuple[str, str]) -> None:
    field, template = case
    data = copy.deepcopy(BASE)
    value = get(data, ("secrets", "payments", *field.split(".")))
    for source in ("external", "config", "generate", "template"):
        value.pop(source, None)
    value["template"] = template
    expect_error(data, "payments", f"{field}.template")


def test_a_template_in_a_single_value_secret() -> None:
    data = copy.deepcopy(BASE)
    data["secrets"]["feature-flags"]["value"] = {"env": "FEATURE_FLAGS", "template": "beta-{x}"}
    expect_error(data, "feature-flags", "value.template")


BAD_ROTATIONS = st.one_of(
    st.builds(lambda s: {"strategy": s, "every_days": 30}, st.text(max_size=10).filter(
        lambda s: s not in ("token", "postgres-single-user", "postgres-alternating-users", "redis-acl",
                            "jwt-hs256", "jwt-rs256"))),
    st.builds(lambda d: {"strategy": "token", "every_days": d}, st.integers().filter(lambda d: not 1 <= d <= 1000)),
    st.just({"strategy": "token", "every_days": 30, "schedule": "rate(30 days)"}),
    st.just({"strategy": "token"}),
    st.builds(lambda s: {"strategy": "token", "schedule": s},
              st.text(max_size=12).filter(lambda s: not re.match(r"^(rate|cron)\(.+\)$", s))),
    st.builds(lambda w: {"strategy": "token", "every_days": 30, "window": w},
              st.text(max_size=6).filter(lambda w: not re.match(r"^[1-9][0-9]*h$", w))),
    st.builds(lambda s: s, st.text(max_size=12).filter(lambda s: s not in ("on-compromise", "manual"))),
)


@FAST
@given(BAD_ROTATIONS)
@example({"strategy": "ldap", "every_days": 30})
def test_a_bad_rotation(rotation: Any) -> None:
    data = copy.deepcopy(BASE)
    data["secrets"]["session-secret"]["rotation"] = rotation
    expect_error(data, "session-secret", "rotation")


ROTATION_RULES = [
    # (secret, change, expected field)
    ("payments", lambda s: s.__setitem__("rotation", {"strategy": "token", "every_days": 30}), "rotation"),
    ("session-secret", lambda s: s.__setitem__("rotation", {"strategy": "jwt-hs256", "every_days": 30}), "rotation"),
    ("payments", lambda s: s.pop("rotation_reason"), "rotation_reason"),
    ("payments", lambda s: s.__setitem__("rotation_reason", "short"), "rotation_reason"),
    ("payments", lambda s: s.__setitem__("rotation_reason", "because; (reasons) & more"), "rotation_reason"),
    ("database", lambda s: s["keys"].pop("engine"), "keys"),          # postgres-single-user reads `engine`
    ("database", lambda s: s.__setitem__("rotation", {"strategy": "redis-acl", "every_days": 30}), "rotation"),
]


@pytest.mark.parametrize(("secret", "change", "field"), ROTATION_RULES,
                         ids=[str(i) for i in range(len(ROTATION_RULES))])
def test_a_rotation_the_secret_cannot_have(secret: str, change: Any, field: str) -> None:
    data = copy.deepcopy(BASE)
    change(data["secrets"][secret])
    error = expect_error(data, secret)
    assert error.field is not None and error.field.startswith(field), str(error)


BAD_ENV_NAMES = st.one_of(
    st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}|[0-9_][A-Z0-9_]{0,8}|[A-Z]+-[A-Z]+|[A-Z]+ [A-Z]+", fullmatch=True),
    st.just(""),
)


@FAST
@given(BAD_ENV_NAMES, st.sampled_from([("session-secret", "value"), ("payments", "keys.endpoint")]),
       st.booleans())
def test_a_bad_environment_variable_name(name: str, where: tuple[str, str], as_list: bool) -> None:
    secret, field = where
    data = copy.deepcopy(BASE)
    get(data, ("secrets", secret, *field.split(".")))["env"] = [name] if as_list else name
    expect_error(data, secret, f"{field}.env")


@FAST
@given(st.sampled_from(["SESSION_SECRET", "PAYMENTS_API_KEY", "DB_PASSWORD", "DATABASE_URL"]))
def test_an_environment_variable_fed_twice(name: str) -> None:
    data = copy.deepcopy(BASE)
    data["secrets"]["feature-flags"]["value"]["env"] = name
    expect_error(data, "feature-flags", "value.env")


def test_field_paths_are_clean() -> None:
    """A field path is what the YAML says (`rotation.strategy`), not pydantic's union-branch labels."""
    data = copy.deepcopy(BASE)
    data["secrets"]["session-secret"]["rotation"] = {"strategy": "ldap", "every_days": 30}
    error = expect_error(data, "session-secret")
    assert error.field == "rotation.strategy", str(error)
    data = copy.deepcopy(BASE)
    data["secrets"]["session-secret"]["value"]["generate"]["bytes"] = 4
    error = expect_error(data, "session-secret")
    assert error.field == "value.generate.bytes", str(error)
    data = copy.deepcopy(BASE)
    data["secrets"]["database"]["keys"]["password"]["env"] = 0
    error = expect_error(data, "database")
    assert error.field == "keys.password.env", str(error)


@pytest.mark.parametrize("rotation", [
    {"strategy": "token", "schedule": "rate(1 day)\nrate(2 days)"},
    {"strategy": "token", "every_days": 30, "window": "4h\n"},
], ids=["schedule", "window"])
def test_messages_are_one_line(rotation: dict[str, Any]) -> None:
    """The README promises one line: a value with a newline must not split the message."""
    data = copy.deepcopy(BASE)
    data["secrets"]["session-secret"]["rotation"] = rotation
    error = expect_error(data, "session-secret")
    assert "\n" not in str(error), str(error)


# --- YAML text: duplicate keys, random bytes, garbage ----------------------------------------------------

BASE_TEXT = yaml.safe_dump(BASE, sort_keys=False, default_flow_style=False, width=200)
KEY_LINES = [i for i, line in enumerate(BASE_TEXT.splitlines()) if re.match(r"^\s*[A-Za-z][\w-]*:", line)]


def _secret_of_line(lines: list[str], index: int) -> str | None:
    """The secret whose block holds a line of BASE_TEXT (by indentation)."""
    current = None
    for line in lines[: index + 1]:
        match = re.match(r"^  ([a-z0-9][a-z0-9-]*):", line)
        if match:
            current = match.group(1)
        elif not line.startswith(" "):
            current = None
    return current


def write(tmp: str, name: str, content: str | bytes) -> Path:
    path = Path(tmp) / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@FAST
@given(st.sampled_from(KEY_LINES))
def test_a_duplicate_key_in_the_yaml(index: int) -> None:
    lines = BASE_TEXT.splitlines()
    key = lines[index].strip().split(":")[0]
    text = "\n".join([*lines[: index + 1], lines[index], *lines[index + 1:]]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "catalog.yaml", text)
        with pytest.raises(ConfigurationError) as caught:
            load_catalog(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert f"duplicate key '{key}'" in message, message
    secret = _secret_of_line(lines, index)
    if secret is not None:
        assert caught.value.secret == secret, message


def test_the_base_catalog_round_trips_through_yaml() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        assert set(load_catalog(write(tmp, "catalog.yaml", BASE_TEXT)).secrets) == set(BASE["secrets"])


YAML_PIECES = st.lists(st.sampled_from([
    "app: shop\n", "owner: p\n", "secrets:\n", "  s:\n", "    value:\n", "      env: A\n", "- ", "[", "]", "{", "}",
    "? ", ": ", "&a ", "*a ", "<<: *a\n", "!!binary ", "!!python/object/apply:os.system ", "!!set ", "'", '"',
    "# c\n", "\t", "---\n", "...\n", "%YAML 1.1\n", "2024-01-01", "~", "1e400", ".nan", "\\x00", "\x00", "\ufeff",
    "a", "b", "1", "\n", "  ", ",",
]), max_size=30).map("".join)


@FAST
@given(st.one_of(YAML_PIECES, st.text(max_size=200)))
@example("? [a]\n: b\n")                        # a list as a mapping key
@example("{[1]: 2}")
@example("app: shop\nsecrets:\n  ? {a: 1}\n  : x\n")
def test_garbage_yaml_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "catalog.yaml", text)
        try:
            load_catalog(path)
        except ConfigurationError as error:
            assert str(error).startswith(str(path)), str(error)


@FAST
@given(st.binary(max_size=200))
@example(b"app: shop\xff\n")                    # not UTF-8
@example(b"\xfe\xff\x00a")
def test_random_bytes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "catalog.yaml", content)
        try:
            load_catalog(path)
        except ConfigurationError as error:
            assert str(error).startswith(str(path)), str(error)


# --- stack configs, through the command line ------------------------------------------------------------

GOOD_STACK: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "secrets-platform:accountId": "210987654321",
    "secrets-platform:recoveryWindowDays": 7,
    "secrets-platform:kmsDeletionWindowDays": 7,
    "secrets-platform:protectSecrets": False,
    "secrets-platform:replicaRegions": ["eu-central-1"],
    "secrets-platform:tags": {"cost-centre": "shop"},
    "secrets-platform:databaseHost": "shop-staging.db.internal",
    "secrets-platform:rotationSubnetIds": ["subnet-0a1b2c3d4e5f60718"],
    "secrets-platform:rotationSecurityGroupIds": ["sg-0a1b2c3d4e5f60718"],
}


STACK_CATALOG = yaml.safe_dump(
    {**BASE, "secrets": {n: s for n, s in BASE["secrets"].items() if n != "feature-flags"}}, sort_keys=False)
"""BASE without its plain-config-only secret, which cannot be previewed yet (see
test_a_secret_of_plain_values_only_previews): the stack config tests must reach the program."""


def checked_main(argv: list[str], out: io.StringIO, err: io.StringIO) -> int:
    """preview.cli.main; a program that fails leaves asyncio tasks pending: collect them now, not while
    pytest parses source for the failure report (CPython 3.11 then fails with "AST constructor
    recursion depth mismatch" and aborts the whole session)."""
    try:
        return main(argv, out=out, err=err)
    finally:
        gc.collect()


def run_cli(config: dict[str, Any] | bytes | str, stack: str = "staging",
            config_name: str | None = None) -> tuple[int, str, str, Path]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
        (project / "catalog.yaml").write_text(STACK_CATALOG)
        content = config if isinstance(config, bytes | str) else yaml.safe_dump({"config": config}, sort_keys=False)
        path = write(tmp, config_name or f"Pulumi.{stack}.yaml", content)
        out, err = io.StringIO(), io.StringIO()
        argv = [stack, "--project-dir", str(project), "--no-policies"]
        if config_name:
            argv += ["--config-file", str(path)]
        code = checked_main(argv, out, err)
        return code, out.getvalue(), err.getvalue(), path


def expect_cli_error(config: dict[str, Any] | bytes | str, *fragments: str) -> str:
    code, out, err, path = run_cli(config)
    assert code == 2, (code, err, out[-500:])
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path.name}") or lines[0].startswith(f"error: {path}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_the_good_stack_config_runs() -> None:
    code, out, err, _ = run_cli(GOOD_STACK)
    assert code == 0, err
    assert "shop/staging/payments" in out


def with_value(key: str, value: Any) -> dict[str, Any]:
    return {**GOOD_STACK, key: value}


def line_text(**kwargs: Any) -> st.SearchStrategy[str]:
    """Text without line breaks (values with one are test_stack_errors_are_one_line's subject)."""
    return st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), **kwargs)


NOT_TRUE_OR_FALSE = st.one_of(
    line_text(max_size=8).filter(lambda s: s.strip().lower() not in ("true", "false")),
    st.integers(), st.lists(st.booleans(), max_size=2),
)
STACK_MUTATIONS = st.one_of(
    st.tuples(st.just("secrets-platform:accountId"), st.one_of(
        line_text(max_size=14).filter(lambda s: not re.fullmatch(r"[0-9]{12}", s)),
        st.integers().filter(lambda i: not re.fullmatch(r"[0-9]{12}", str(i))), st.none(), st.lists(st.integers())),
    ),
    st.tuples(st.just("aws:region"), st.one_of(
        line_text(max_size=16).filter(lambda s: not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", s)),
        st.integers(), st.none(), st.just("EU-WEST-1"), st.just("eu-west"), st.lists(st.just("eu-west-1"), min_size=1)),
    ),
    # recoveryWindowDays also takes 0 (a throwaway stack: deleted without recovery).
    st.tuples(st.just("secrets-platform:recoveryWindowDays"),
              st.one_of(st.integers().filter(lambda i: i != 0 and not 7 <= i <= 30), st.floats(allow_nan=True),
                        line_text(max_size=5).filter(lambda s: not s.strip().lstrip("+-").isdigit()),
                        st.lists(st.integers(), max_size=2))),
    st.tuples(st.just("secrets-platform:kmsDeletionWindowDays"),
              st.one_of(st.integers().filter(lambda i: not 7 <= i <= 30), st.floats(allow_nan=True),
                        line_text(max_size=5).filter(lambda s: not s.strip().lstrip("+-").isdigit()),
                        st.lists(st.integers(), max_size=2))),
    st.tuples(st.sampled_from(["secrets-platform:protectSecrets", "secrets-platform:ciReadsValues"]),
              NOT_TRUE_OR_FALSE),
    st.tuples(st.just("secrets-platform:replicaRegions"), st.one_of(
        st.just(["eu-west-1"]),                                    # the stack's own region
        st.lists(line_text(max_size=10).filter(lambda s: not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", s)),
                 min_size=1, max_size=3),
        st.lists(st.integers(), min_size=1, max_size=2),
        line_text(min_size=1, max_size=10), st.integers(), st.dictionaries(line_text(max_size=3), line_text(max_size=3),
                                                                          min_size=1, max_size=2),
    )),
    st.tuples(st.just("secrets-platform:tags"), st.one_of(
        st.lists(line_text(max_size=3), min_size=1, max_size=2), line_text(min_size=1, max_size=6), st.integers(),
        st.dictionaries(line_text(min_size=1, max_size=5), st.integers(), min_size=1, max_size=2),
    )),
)


@SLOW
@given(STACK_MUTATIONS)
@example(("secrets-platform:accountId", "2109-8765"))
@example(("secrets-platform:recoveryWindowDays", 3))
@example(("secrets-platform:protectSecrets", "yes"))
@example(("secrets-platform:replicaRegions", "eu-central-1"))
def test_a_malformed_stack_config(mutation: tuple[str, Any]) -> None:
    key, value = mutation
    expect_cli_error(with_value(key, value), f"field '{key}'")


@pytest.mark.parametrize("value", ["2109\n8765", "\r"], ids=["newline", "return"])
def test_stack_errors_are_one_line(value: str) -> None:
    """The README promises one line: a value with a line break must not split the message."""
    expect_cli_error(with_value("secrets-platform:accountId", value), "field 'secrets-platform:accountId'")


@SLOW
@given(st.sampled_from(["aws:region", "secrets-platform:accountId"]))
def test_a_missing_stack_setting(key: str) -> None:
    config = dict(GOOD_STACK)
    config.pop(key)
    expect_cli_error(config, f"field '{key}'")


@SLOW
@given(st.one_of(st.binary(max_size=120), YAML_PIECES))
@example(b"config:\n  aws:region: eu-west-1\xff\n")
@example("config: [1, 2]\n")
@example("config:\n  aws:region: eu-west-1\x00\n")   # a YAML reader error
@example("- config\n")
@example("config:\n  ? [a]\n  : b\n")
def test_a_garbage_stack_file(content: bytes | str) -> None:
    code, out, err, path = run_cli(content)
    assert "Traceback" not in err
    assert code == 2, (code, err)
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}") or err.startswith(f"error: {path.name}"), err


def test_an_error_in_a_config_file_given_by_path_names_that_file() -> None:
    """With --config-file (how the examples are previewed) the message names the file that was read."""
    code, _, err, path = run_cli(with_value("secrets-platform:accountId", "2109-8765"),
                                 config_name="shop.staging.yaml")
    assert code == 2, err
    assert err.startswith(f"error: {path}"), err


def test_a_template_over_an_optional_value_that_is_unset() -> None:
    """A template naming an optional external value the stack does not set: refused in the catalog,
    or the key left out; never a KeyError while composing the value."""
    data = copy.deepcopy(BASE)
    del data["secrets"]["feature-flags"]  # see STACK_CATALOG
    data["secrets"]["payments"]["keys"]["url"]["template"] = "https://{endpoint}/v1?hook={webhookKey}"
    config = {**GOOD_STACK, "secrets-platform:paymentsApiKey": {"secure": "v1:" + "A" * 44}}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
        (project / "catalog.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        (project / "Pulumi.staging.yaml").write_text(yaml.safe_dump({"config": config}))
        out, err = io.StringIO(), io.StringIO()
        code = checked_main(["staging", "--project-dir", str(project), "--no-policies"], out, err)
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert "secret 'payments'" in err.getvalue() and "keys.url.template" in err.getvalue()


@pytest.mark.parametrize("entry", [
    {"value": {"env": "SHOP_REGION", "config": {"default": "eu"}}},
    {"keys": {"region": {"env": "SHOP_REGION", "config": {"default": "eu"}}}},
], ids=["single", "grouped"])
def test_a_secret_of_plain_values_only_previews(entry: dict[str, Any]) -> None:
    """A configuration secret made only of plain config values (tria-aibpo's app-config, BASE's
    feature-flags) has nothing generated or external to wait for."""
    catalog = {"app": "shop", "owner": "platform",
               "secrets": {"settings": {"description": "Plain settings", "class": "configuration", **entry}}}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
        (project / "catalog.yaml").write_text(yaml.safe_dump(catalog))
        (project / "Pulumi.staging.yaml").write_text(yaml.safe_dump({"config": {
            "aws:region": "eu-west-1", "secrets-platform:accountId": "210987654321"}}))
        out, err = io.StringIO(), io.StringIO()
        code = checked_main(["staging", "--project-dir", str(project), "--no-policies"], out, err)
    assert code == 0, err.getvalue()
    assert "shop/staging/settings" in out.getvalue()
