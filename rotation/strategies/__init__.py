"""Rotation strategies, by the name used in ROTATION_STRATEGY.

Each strategy's module is imported only when a function uses it (`load`), so that a function's cold
start pays for its own strategy's libraries (psycopg, redis, cryptography) and no other's.
"""

from __future__ import annotations

import importlib

from rotation.protocol import Strategy

MODULES: dict[str, tuple[str, str]] = {
    "token": ("rotation.strategies.token", "TokenStrategy"),
    "postgres-single-user": ("rotation.strategies.postgres", "SingleUserStrategy"),
    "postgres-alternating-users": ("rotation.strategies.postgres", "AlternatingUsersStrategy"),
    "redis-acl": ("rotation.strategies.redis_acl", "RedisAclStrategy"),
    "jwt-hs256": ("rotation.strategies.jwt", "Hs256Strategy"),
    "jwt-rs256": ("rotation.strategies.jwt", "Rs256Strategy"),
}
"""Strategy name -> (module, class)."""

NAMES: tuple[str, ...] = tuple(sorted(MODULES))


def load(name: str) -> type[Strategy] | None:
    """The strategy class called `name`, its module imported now; None for an unknown name."""
    where = MODULES.get(name)
    if where is None:
        return None
    cls: type[Strategy] = getattr(importlib.import_module(where[0]), where[1])
    return cls
