"""token: a generated value with no external system (API tokens, signing salts, ...).

Params: {"key": null | "<json key>", "generate": <generation spec>, "templates": {key: template}}. With `key` null the
secret is the plain string; otherwise the secret is a JSON object and only `key` changes.
A secret created without a value gets `{key: <new>}` (or the plain value) as its first value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rotation import generate, template
from rotation.errors import ConfigurationError, CredentialError
from rotation.protocol import RotationContext, Strategy, templates_parameter
from rotation.values import load_object


class TokenStrategy(Strategy):
    name = "token"
    installs = False  # consumers read the new value once it is AWSCURRENT
    makes_first_value = True
    parameters = frozenset({"key", "generate", "templates"})

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        key = params.get("key")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"token: 'key' must be null or a non-empty string, got {key!r}")
        self.key: str | None = key
        if "generate" not in params:
            raise ConfigurationError("token: parameter 'generate' (a generation spec) is required")
        self.spec = generate.validate(params["generate"])
        self.templates = templates_parameter(self.name, params)

    @property
    def derives_from_current(self) -> bool:
        return self.key is not None  # a JSON secret keeps its other keys; a plain value needs nothing

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        if self.key is None:  # not called (derives_from_current is False), but complete
            return self.create_first(ctx)
        data = load_object(current, f"{ctx.secret_name} (AWSCURRENT)", {})
        data[self.key] = generate.generate(self.spec)
        # A value the catalog builds from the token (`Bearer {token}`) follows it.
        return json.dumps(template.rebuilt(data, self.templates or {}))

    def create_first(self, ctx: RotationContext) -> str:
        value = generate.generate(self.spec)
        return value if self.key is None else json.dumps({self.key: value})

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        """Nothing to install: consumers read the new value once it is AWSCURRENT."""

    def test(self, pending: str, ctx: RotationContext) -> None:
        value = pending
        if self.key is not None:
            data = load_object(pending, f"{ctx.secret_name} (AWSPENDING)", {self.key: str})
            value = data[self.key]
        if not value:
            raise CredentialError(f"token: the AWSPENDING value of {ctx.secret_name} is empty")
