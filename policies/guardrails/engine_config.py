"""The stack's config as the engine hands it to the pack, on either path the CLI starts a pack by.

- The legacy path (the `pulumi-analyzer-policy-python` shim, CLIs before 3.221) puts it in the pack's
  environment as `PULUMI_CONFIG` (JSON: `{"<project>:<key>": "<string or JSON text>"}`).
- Newer CLIs start a Python pack through the language host's `RunPlugin` and leave `PULUMI_CONFIG` unset
  (pulumi/pulumi's analyzer test language host fails the run if it is set); the config arrives in the
  Analyzer's `ConfigureStack` call instead (`AnalyzerStackConfigureRequest.config`, the same map), which
  pulumi-policy 1.21 receives but keeps only the tags of.

`install()` wraps pulumi-policy's ConfigureStack to keep the config too; `stack_config()` prefers it and
falls back to the environment. Without either, it is empty, and the rules that read it fail closed (an
adopted secret is then held to every rule, a recovery stack's key is not accepted).
"""

from __future__ import annotations

import json
import os
from typing import Any

_received: dict[str, str] | None = None
"""The config of the last ConfigureStack call, None before any."""


def stack_config() -> dict[str, str]:
    """`{"<project>:<key>": value}` of the stack being checked (JSON text for structured values)."""
    if _received is not None:
        return dict(_received)
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        return {}
    return {str(k): v for k, v in config.items()} if isinstance(config, dict) else {}


def structured(key_suffix: str) -> Any:
    """A structured value (`adopt`, `recoveryOf`) of the stack config, parsed; None when absent or malformed."""
    raw = next((v for k, v in stack_config().items() if k.endswith(f":{key_suffix}")), None)
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None


def receive(config: Any) -> None:
    """Keep the config of a ConfigureStack request (a protobuf map of strings)."""
    global _received
    _received = {str(k): str(v) for k, v in dict(config).items()}


def install() -> bool:
    """Wrap pulumi-policy's ConfigureStack so that the config it is sent is kept; True if installed."""
    from pulumi_policy import policy as sdk

    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    original = getattr(servicer, "ConfigureStack", None)
    if servicer is None or original is None:
        return False
    if getattr(original, "_guardrails_keeps_config", False):
        return True

    def configure_stack(self: Any, request: Any, context: Any) -> Any:
        receive(request.config)
        return original(self, request, context)

    configure_stack._guardrails_keeps_config = True  # type: ignore[attr-defined]
    servicer.ConfigureStack = configure_stack
    return True
