# ruff: noqa: E501  (tables of cases: one case a line reads better than wrapped ones)
"""Optional parts in catalog templates (`redis://[:{password}@]{host}:{port}/{db}`): how one renders, what the
catalog refuses (one line through the offline preview, exit 2), and what a stack stores with the part's key set
and unset. The rotation side (the same renderer, after a rotation) is tests/rotation/test_rotation_templates.py."""

from __future__ import annotations

import io
import json
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from components.catalog.checks import parse_catalog
from components.rotation import parameters
from preview.cli import main
from preview.model import plain
from rotation.template import TemplateError, parse, rebuilt, render
from tests.conftest import MINIMAL_STACK, REPO
from tests.test_catalog_requirements import program

VERSION = "aws:secretsmanager/secretVersion:SecretVersion"

# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize(("template", "values", "expected"), [
    ("redis://[:{password}@]{host}:{port}/{db}", {"password": "p", "host": "h", "port": 6379, "db": 0}, "redis://:p@h:6379/0"),
    ("redis://[:{password}@]{host}:{port}/{db}", {"host": "h", "port": 6379, "db": 0}, "redis://h:6379/0"),
    # A key present with no value (JSON null) counts as unset.
    ("redis://[:{password}@]{host}", {"password": None, "host": "h"}, "redis://h"),
    # Every key of the part must be set for it to be written.
    ("{scheme}://[{username}:{password}@]{host}", {"scheme": "s", "username": "u", "host": "h"}, "s://h"),
    ("{scheme}://[{username}:{password}@]{host}", {"scheme": "s", "username": "u", "password": "p", "host": "h"}, "s://u:p@h"),
    # Several parts, decided one by one.
    ("x[?a={a}][&b={b}]", {"b": 2}, "x&b=2"),
    # Values are percent-encoded whole, inside a part too; booleans as JSON writes them.
    ("u[:{password}@]h[?tls={tls}]", {"password": "p/w@x:y%z[]", "tls": True}, "u:p%2Fw%40x%3Ay%25z%5B%5D@h?tls=true"),
    # `[[` and `]]` are literal brackets, outside a part and inside one.
    ("redis://[[::1]]:{port}", {"port": 6379}, "redis://[::1]:6379"),
    ("a[ [[{k}]] ]b", {"k": "v"}, "a [v] b"),
    ("a[ [[{k}]] ]b", {}, "ab"),
    # A brace that is not a key is literal text, as before.
    ("{ not a key } {1x}", {}, "{ not a key } {1x}"),
    ("plain", {}, "plain"),
])
def test_a_template_renders(template: str, values: dict[str, object], expected: str) -> None:
    assert render(template, values) == expected


def test_a_required_key_without_a_value_is_named_not_quoted() -> None:
    password = secrets.token_urlsafe(16)
    with pytest.raises(TemplateError) as caught:
        render("redis://[:{password}@]{host}", {"password": password})
    assert "'host'" in str(caught.value) and password not in str(caught.value)


def test_required_and_optional_keys() -> None:
    parsed = parse("{scheme}://[{username}:{password}@]{host}[/{db}]")
    assert parsed.required == ("scheme", "host")
    assert parsed.optional == (("username", "password"), ("db",))


def test_rebuilt_leaves_out_a_template_whose_required_key_is_unset() -> None:
    templates = {"url": "redis://[:{password}@]{host}", "dsn": "{host}/{db}"}
    assert rebuilt({"host": "h", "url": "stale"}, templates) == {"host": "h", "url": "redis://h"}


@pytest.mark.parametrize(("template", "reason"), [
    ("redis://[:{password}@[{host}]]", "do not nest"),
    ("redis://[:{password}@{host}", "never closed"),
    ("redis://{host}]", "closes no optional part"),
    ("redis://[user@]{host}", "holds no {key}"),
    ("redis://[]{host}", "holds no {key}"),
    ("redis://[:{password}@]]{host}", "never closed"),  # `]]` is a literal: the part stays open
])
def test_malformed_templates_are_refused(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason.replace("{", r"\{").replace("}", r"\}")):
        parse(template)


def test_a_huge_template_parses_in_linear_time() -> None:
    """Bounded by the catalog loader's limits anyway; the parser makes one pass (no backtracking)."""
    template = "[{a}]" * 50_000
    assert len(parse(template).optional) == 50_000
    assert render(template, {}) == ""


# ---------------------------------------------------------------- refused at load, one line

CACHE = """\
app: shop
owner: platform
environments: [production, dev]
secrets:
  cache:
    description: Redis; a password in production, none in dev
    class: configuration
    consumers: [api]
    keys:
      host: {env: REDIS_HOST, config: {}}
      port: {config: {default: "6379"}, type: integer}
      db: {config: {}, required: [production]}
      password: {env: REDIS_PASSWORD, external: {}, required: [production]}
      url: {env: REDIS_URL, template: "redis://[:{password}@]{host}:{port}[/{db}]"}
"""
URL = "redis://[:{password}@]{host}:{port}[/{db}]"


def _refused(tmp_path: Path, catalog: str, *fragments: str) -> str:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "catalog.yaml").write_bytes(catalog.encode("utf-8", "surrogateescape"))
    (tmp_path / "Pulumi.dev.yaml").write_text(MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["dev", "--project-dir", str(tmp_path), "--no-policies"], out=out, err=err)
    assert code == 2, err.getvalue()[-2000:]
    assert out.getvalue() == "" and "Traceback" not in err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, err.getvalue()
    for fragment in ("catalog.yaml", *fragments):
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("id_", "old", "new", "reason"), [
    ("nested", URL, "redis://[:{password}@[{host}]]:{port}", "do not nest"),
    ("unclosed", URL, "redis://[:{password}@{host}:{port}", "never closed"),
    ("unclosed-by-escape", URL, "redis://[:{password}@]]{host}:{port}", "never closed"),
    ("stray-close", URL, "redis://{host}:{port}]", "closes no optional part"),
    ("no-placeholder", URL, "redis://[default@]{host}:{port}", "holds no {key}"),
    ("empty-part", URL, "redis://[]{host}:{port}", "holds no {key}"),
    # A key set in every environment inside a part: the part would always be written.
    ("required-inside", URL, "redis://[{host}:]{port}", "'host' inside an optional part"),
    ("default-inside", URL, "redis://{host}[:{port}]", "'port' inside an optional part"),
    ("required-everywhere", "db: {config: {}, required: [production]}", "db: {config: {}, required: [production, dev]}", "'db' inside an optional part"),
    # One of the part's keys required everywhere is enough to refuse it.
    ("mixed", URL, "redis://[{host}{password}@]{port}", "'host' inside an optional part"),
    ("unknown-key", URL, "redis://[:{passwort}@]{host}", "'passwort', which is not another key"),
    ("huge", URL, "[{nope}]" * 20_000, "'nope', which is not another key"),
])
def test_a_bad_optional_part_is_refused_in_one_line(tmp_path: Path, id_: str, old: str, new: str, reason: str) -> None:
    assert old in CACHE
    _refused(tmp_path, CACHE.replace(old, new, 1), "secret 'cache'", "field 'keys.url.template'", reason)


def test_required_in_an_environment_the_secret_alone_has_is_required_everywhere(tmp_path: Path) -> None:
    """`required: [production]` on a secret only production has: the key is always set, the part always written."""
    catalog = CACHE.replace("    consumers: [api]\n", "    consumers: [api]\n    environments: [production]\n")
    _refused(tmp_path, catalog, "secret 'cache'", "field 'keys.url.template'", "'password' inside an optional part")


def test_a_binary_template_is_refused_in_one_line(tmp_path: Path) -> None:
    catalog = CACHE.replace(URL, "redis://[:{password}@]\udcff\x00{host}")
    line = _refused(tmp_path, catalog)
    assert "\x00" not in line


# ---------------------------------------------------------------- what a stack stores


def _stored_url(run: object, name: str = "cache") -> str | None:
    versions = [r for r in run.resources if r.type == VERSION and r.name.endswith(f"-{name}-value")]  # type: ignore[attr-defined]
    assert len(versions) == 1
    return json.loads(plain(versions[0].inputs["secretString"])).get("url")


def test_the_part_is_written_where_its_keys_are_set_and_left_out_where_not(make_project: Callable[..., Path]) -> None:
    password = secrets.token_urlsafe(24) + "/@:"
    stack = MINIMAL_STACK + "  secrets-platform:cacheHost: cache.internal\n"
    production = make_project(CACHE, stack + "  secrets-platform:cacheDb: \"3\"\n", stack="production")
    run = program(production, "production", values={"cachePassword": password})
    url = _stored_url(run)
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("redis", "cache.internal", 6379, "/3")
    assert unquote(parts.password or "") == password and parts.username == ""
    assert run.outputs["envVars"]["REDIS_URL"] == "shop/production/cache:url"

    dev = make_project(CACHE, stack, stack="dev")
    run = program(dev, "dev")
    assert _stored_url(run) == "redis://cache.internal:6379"
    # The url still feeds its variable: only its optional parts were left out.
    assert run.outputs["envVars"]["REDIS_URL"] == "shop/dev/cache:url"
    assert "REDIS_PASSWORD" not in run.outputs["envVars"]


def test_a_required_part_unset_still_leaves_the_whole_template_out(make_project: Callable[..., Path]) -> None:
    catalog = CACHE.replace("host: {env: REDIS_HOST, config: {}}", "host: {env: REDIS_HOST, config: {}, required: [production]}")
    run = program(make_project(catalog, MINIMAL_STACK, stack="dev"), "dev")
    assert "REDIS_URL" not in run.outputs["envVars"]
    assert _stored_url(run) is None


def test_the_rotation_function_is_sent_the_catalogs_templates() -> None:
    """The function renders the catalog's own template after a rotation, not a format of its own."""
    catalog = parse_catalog(yaml.safe_load(SERVER), "catalog.yaml")
    params = parameters(catalog.secrets["cache"], "shop/dev/cache")
    assert params["templates"] == {"url": SERVER_URL}


SERVER_URL = "redis://{username}:{password}@{host}:{port}[/{db}]"
SERVER = f"""\
app: shop
owner: platform
environments: [production, dev]
secrets:
  cache-admin:
    description: Redis admin
    class: critical
    rotation: manual
    rotation_reason: held by the platform team
    keys:
      username: {{config: {{default: admin}}}}
      password: {{external: {{}}}}
  cache:
    description: Redis user
    class: critical
    rotation: {{strategy: redis-acl, every_days: 30, master: cache-admin}}
    consumers: [api]
    keys:
      host: {{config: {{}}}}
      port: {{config: {{default: "6379"}}, type: integer}}
      username: {{config: {{default: app}}}}
      password: {{external: {{}}}}
      db: {{config: {{}}, required: [production]}}
      url: {{env: REDIS_URL, template: "{SERVER_URL}"}}
"""
