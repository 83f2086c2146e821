"""What the offline preview collects: one record per resource the program registers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CollectedResource:
    """A resource as the program registered it, in the engine's wire shape."""

    urn: str
    """The resource's URN as the mock runtime built it."""
    type: str
    """The resource type token, e.g. `aws:secretsmanager/secret:Secret`."""
    name: str
    """The logical (Pulumi) name."""
    parent: str | None
    """URN of the parent resource; None only for the stack itself."""
    protect: bool
    """Whether `protect=True` was set."""
    custom: bool
    """True for provider resources, False for ComponentResources."""
    inputs: dict[str, Any]
    """Input properties in camelCase wire names. Secret values stay wrapped as
    `{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": ...}`
    (pulumi.runtime.rpc.wrap_rpc_secret); use `plain()` to unwrap them for a policy engine
    and `redacted()` to print them."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on."""
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per input property, the URNs its value came from."""
    ignore_changes: tuple[str, ...] = ()
    """Property paths listed in `ignore_changes`."""
    retain_on_delete: bool = False
    """Whether `retain_on_delete=True` was set."""
    additional_secret_outputs: tuple[str, ...] = ()
    """Output names the program asked to be marked secret."""
    provider: str = ""
    """The provider reference, if an explicit provider was passed."""
    import_id: str = ""
    """The id of an existing resource the program imports (`import_`); empty for one it creates."""
    delete_before_replace: bool = False
    """Whether `delete_before_replace=True` was set: a replacement deletes the old resource first."""


SECRET_MARK = "[secret]"  # noqa: S105 - the redaction marker, not a secret


def _is_wrapped_secret(value: Any) -> bool:
    from pulumi.runtime.rpc import is_rpc_secret

    return bool(is_rpc_secret(value))


def plain(value: Any) -> Any:
    """The value with every wrapped secret unwrapped: what a policy pack sees (it gets plaintext)."""
    if _is_wrapped_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's marker of a value not known until the deployment (pulumi.runtime.rpc.UNKNOWN)."""
_SIG = "4dabf18193072939515e22adb298388d"
_ARCHIVE_OR_ASSET = {"0def7320c3a5731c473e5ecbe6d01bc7": "archive", "c44067f5952c0a294b673a41bacd8c17": "asset"}


def redacted(value: Any) -> Any:
    """The value with every wrapped secret replaced by `[secret]`: what a person may see."""
    if _is_wrapped_secret(value):
        return SECRET_MARK
    if value == UNKNOWN:
        return "[unknown until deployed]"
    if isinstance(value, dict) and value.get(_SIG) in _ARCHIVE_OR_ASSET:
        kind = _ARCHIVE_OR_ASSET[value[_SIG]]
        return f"[{kind} {value.get('path') or value.get('uri') or 'inline'}]"
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value
