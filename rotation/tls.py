"""TLS to the servers a rotation logs in to: which hosts are local, and the configured CA bundle."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from rotation.errors import ConfigurationError

CA_BUNDLE_ENV = "DATABASE_CA_BUNDLE"
"""Path of a PEM bundle of the CAs that sign the servers' certificates; overrides PACKAGED_CA_BUNDLE."""
PACKAGED_CA_BUNDLE = Path(__file__).resolve().parent / "ca-bundle.pem"
"""`rotation/ca-bundle.pem`: put AWS's RDS bundle (or your own CA) there before `make lambda`."""


def is_loopback(host: str) -> bool:
    """A host on this machine: a loopback address, `localhost` (RFC 6761), or a Unix socket directory."""
    name = host.strip().rstrip(".").lower()
    if name.startswith("/") or name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: not resolved here, so only `localhost` counts


def ca_bundle() -> str | None:
    """The configured CA bundle: $DATABASE_CA_BUNDLE, else rotation/ca-bundle.pem if the package has one."""
    configured = os.environ.get(CA_BUNDLE_ENV)
    if configured:
        if not Path(configured).is_file():
            raise ConfigurationError(f"{CA_BUNDLE_ENV}={configured} is not a file")
        return configured
    return str(PACKAGED_CA_BUNDLE) if PACKAGED_CA_BUNDLE.is_file() else None
