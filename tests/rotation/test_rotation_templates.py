"""After a rotation, a templated key is rendered again by the catalog's own template, with the renderer the program
uses for the first value (rotation/template.py): an optional part (`[/{db}]`) is kept where the secret holds its
key and left out where it does not, exactly as at deploy. Against a real redis-server with ACL users, through the
parameters the program sends (components.rotation.parameters)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis
import yaml
from rotation_harness import STEPS, Harness, SecretDict, SecretStr
from servers import RedisServer

from components.catalog.checks import parse_catalog
from components.rotation import parameters
from rotation.errors import ConfigurationError
from rotation.strategies.postgres import SingleUserStrategy
from rotation.strategies.redis_acl import RedisAclStrategy
from rotation.strategies.token import TokenStrategy
from rotation.template import render

pytestmark = pytest.mark.servers

URL = "redis://{username}:{password}@{host}:{port}[/{db}]"
CATALOG = f"""\
app: filot
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
    description: Redis user; a database number in production only
    class: critical
    rotation: {{strategy: redis-acl, every_days: 30, master: cache-admin}}
    keys:
      host: {{config: {{}}}}
      port: {{config: {{default: "6379"}}, type: integer}}
      username: {{config: {{default: app}}}}
      password: {{external: {{}}}}
      db: {{config: {{}}, required: [production]}}
      url: {{env: REDIS_URL, template: "{URL}"}}
"""


def _deployed(harness: Harness, redis_srv: RedisServer, name: str, db: int | None) -> tuple[str, SecretDict]:
    """A Redis user and its secret as the program writes it (the url rendered by the program's renderer), and a
    paused function given the parameters the program gives it."""
    user = f"app-{uuid.uuid4().hex[:6]}"
    password = SecretStr(f"pw:{uuid.uuid4().hex}")
    admin = redis_srv.admin()
    try:
        admin.execute_command("ACL", "SETUSER", user, "on", "#" + hashlib.sha256(password.encode()).hexdigest(),
                              "~*", "+@all")
    finally:
        admin.close()
    master = SecretDict(username=redis_srv.admin_user, password=redis_srv.passwords[redis_srv.admin_user])
    initial = SecretDict(host=redis_srv.host, port=redis_srv.port, username=user, password=password,
                         **({"db": db} if db is not None else {}))
    initial["url"] = render(URL, initial)
    initial["masterarn"] = harness.secret(name + "-master", json.dumps(master))
    harness.secret(name, json.dumps(initial))
    entry = parse_catalog(yaml.safe_load(CATALOG), "catalog.yaml").secrets["cache"]
    fn = harness.function("redis-acl", {name: parameters(entry, name)}, paused=True)
    return fn, initial


@pytest.mark.parametrize("db", [3, None], ids=["part-kept", "part-omitted"])
def test_the_optional_part_follows_the_secret_after_rotation(
    harness: Harness, redis_srv: RedisServer, name: str, db: int | None
) -> None:
    fn, initial = _deployed(harness, redis_srv, name, db)
    assert initial["url"].endswith("/3" if db is not None else f":{redis_srv.port}")
    token = harness.rotate(name, fn)
    for step in STEPS:
        harness.step(name, step, token, fn)
    new = harness.json(name)
    assert new["password"] != initial["password"]
    parts = urlsplit(new["url"])
    assert unquote(parts.password or "") == new["password"] and parts.username == new["username"]
    # Kept where the secret holds db, left out where it does not: the catalog's format, not the strategy's own.
    assert parts.path == ("/3" if db is not None else "")
    assert new["url"] == render(URL, new)
    client: Any = redis.Redis.from_url(new["url"], socket_timeout=5)
    try:
        assert client.ping()
    finally:
        client.close()


def test_the_templates_parameter_is_checked_when_the_function_starts() -> None:
    for strategy in (RedisAclStrategy, SingleUserStrategy, TokenStrategy):
        extra: dict[str, object] = {"generate": {"kind": "uuid"}} if strategy is TokenStrategy else {}
        with pytest.raises(ConfigurationError, match="never closed"):
            strategy({**extra, "templates": {"url": "redis://[:{password}@{host}"}})
        with pytest.raises(ConfigurationError, match="must map key names"):
            strategy({**extra, "templates": ["redis://{host}"]})


def test_a_token_rotation_renders_what_the_catalog_builds_from_the_token() -> None:
    """The token strategy replaces one key; a template built from it follows (it went stale before)."""
    from rotation.protocol import RotationContext

    strategy = TokenStrategy({"key": "token", "generate": {"kind": "uuid"},
                              "templates": {"header": "Bearer {token}[ realm={realm}]"}})
    ctx = RotationContext(secret_name="filot/dev/hook", token="t", store=None, client=None)  # type: ignore[arg-type]
    new = json.loads(strategy.create_pending(json.dumps({"token": "old", "header": "Bearer old"}), ctx))
    assert new["header"] == f"Bearer {new['token']}" and new["token"] != "old"
