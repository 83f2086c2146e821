"""Domain exceptions of the rotation Lambda.

Messages name secrets, versions, stages, hosts and users, never a secret value.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base class: a rotation step could not complete."""


class ConfigurationError(RotationError):
    """The function's deployment (environment variables) is invalid."""


class SecretNotAllowedError(RotationError):
    """The event names a secret this function was not built to rotate."""


class RotationNotEnabledError(RotationError):
    """DescribeSecret says rotation is not enabled for the secret."""


class VersionStageError(RotationError):
    """The event's token is not a version in the state the step requires."""


class SecretFormatError(RotationError):
    """A secret value does not have the shape the strategy needs."""


class CredentialError(RotationError):
    """No candidate credential could log in, or the pending one does not work."""


class ExternalServiceError(RotationError):
    """The database / cache / Secrets Manager failed or could not be reached."""
