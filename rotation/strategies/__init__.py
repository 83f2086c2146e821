"""Rotation strategies, by the name used in ROTATION_STRATEGY."""

from __future__ import annotations

from rotation.protocol import Strategy
from rotation.strategies.jwt import Hs256Strategy, Rs256Strategy
from rotation.strategies.postgres import AlternatingUsersStrategy, SingleUserStrategy
from rotation.strategies.redis_acl import RedisAclStrategy
from rotation.strategies.token import TokenStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        TokenStrategy,
        SingleUserStrategy,
        AlternatingUsersStrategy,
        RedisAclStrategy,
        Hs256Strategy,
        Rs256Strategy,
    )
}
