"""Read each resource's properties once per request, not once per policy.

pulumi-policy's analyzer (`pulumi_policy.policy._PolicyAnalyzerServicer`) turns a resource's properties,
a protobuf Struct, into Python values and read-only proxies for every policy it runs: 24 times per
resource in Analyze, and every resource of the stack once per stack policy in AnalyzeStack. That
conversion was most of the pack's time (bench/: a 1,000-secret stack). It depends only on the message,
so `install()` makes it once per distinct Struct within one Analyze or AnalyzeStack call and hands every
policy the same values; the rules only read them. Everything else (which policies run, their config,
levels, diagnostics) is the SDK's own.

The engine runs this same pack (`__main__.py` installs it), so what passes offline is what the engine
enforces. `GUARDRAILS_SDK_CACHE=off` turns it off (tests compare both). If the SDK no longer has the
names this relies on, nothing is installed and the pack runs as the SDK alone runs it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()


class _Properties(dict[str, Any]):
    """The dict MessageToDict made of one Struct, carrying what was derived from it in this request."""

    __slots__ = ("deserialized",)
    deserialized: Any


def _request_cache() -> dict[Any, Any] | None:
    cache: dict[Any, Any] | None = getattr(_local, "cache", None)
    return cache


def install() -> bool:
    """Install the per-request cache into pulumi-policy's analyzer; True if installed."""
    if os.environ.get("GUARDRAILS_SDK_CACHE", "").lower() == "off":
        return False
    from pulumi_policy import policy as sdk

    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    needed = ("json_format", "deserialize_properties", "unknown_checking_proxy", "signature")
    if servicer is None or not all(hasattr(sdk, n) for n in needed) \
            or not all(hasattr(servicer, m) for m in ("Analyze", "AnalyzeStack")):
        return False
    if getattr(sdk, "_guardrails_sdk_cache", False):  # installed already
        return True
    json_format, deserialize, proxy = sdk.json_format, sdk.deserialize_properties, sdk.unknown_checking_proxy

    class _JsonFormat:
        """json_format as the analyzer module sees it: MessageToDict remembers Structs within a request."""

        def __getattr__(self, name: str) -> Any:
            return getattr(json_format, name)

        @staticmethod
        def MessageToDict(message: Any, *args: Any, **kwargs: Any) -> Any:
            cache = _request_cache()
            if cache is None or args or kwargs or message.DESCRIPTOR.full_name != "google.protobuf.Struct":
                return json_format.MessageToDict(message, *args, **kwargs)
            key = message.SerializeToString(deterministic=True)
            found = cache.get(key)
            if found is None:
                found = cache[key] = _Properties(json_format.MessageToDict(message))
            return found

    def deserialize_properties(props: Any, proxy_secrets: bool = False) -> Any:
        if not isinstance(props, _Properties) or proxy_secrets or _request_cache() is None:
            return deserialize(props, proxy_secrets)
        try:
            return props.deserialized
        except AttributeError:
            props.deserialized = deserialize(props)
            return props.deserialized

    def unknown_checking_proxy(props: dict[str, Any]) -> dict[str, Any]:
        deserialized = props
        cache = _request_cache()
        if cache is None:
            return proxy(deserialized)
        key = ("proxy", id(deserialized))
        found = cache.get(key)
        if found is None or found[0] is not deserialized:
            found = cache[key] = (deserialized, proxy(deserialized))  # keeps `deserialized` alive: ids stay unique
        made: dict[str, Any] = found[1]
        return made

    def per_request(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def run(self: Any, request: Any, context: Any) -> Any:
            _local.cache = {}
            try:
                return method(self, request, context)
            finally:
                _local.cache = None

        return run

    sdk.json_format = _JsonFormat()
    sdk.deserialize_properties = deserialize_properties
    sdk.unknown_checking_proxy = unknown_checking_proxy
    # Every request inspects pulumi.runtime.Settings' signature again; it does not change.
    sdk.signature = functools.lru_cache(maxsize=8)(sdk.signature)
    servicer.Analyze = per_request(servicer.Analyze)
    servicer.AnalyzeStack = per_request(servicer.AnalyzeStack)
    sdk._guardrails_sdk_cache = True  # type: ignore[attr-defined]
    return True
