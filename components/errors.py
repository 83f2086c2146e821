"""One error type for every user mistake: a bad catalog, a bad stack config, a bad value.

It subclasses `pulumi.RunError`, which the Pulumi engine reports as a plain message without a
stack trace; the offline preview catches it and exits with status 2.
"""

from __future__ import annotations

import pulumi


class ConfigurationError(pulumi.RunError):
    """A user mistake in the catalog or the stack config, located by file, secret and field."""

    def __init__(self, file: str, message: str, *, secret: str | None = None, field: str | None = None):
        self.file = file
        self.secret = secret
        self.field = field
        self.reason = message
        self.registered: int | None = None
        """Set by the offline preview: cloud resources the program had registered when it stopped."""
        super().__init__(self._render())

    def _render(self) -> str:
        where = [self.file]
        if self.secret:
            where.append(f"secret '{self.secret}'")
        if self.field:
            where.append(f"field '{self.field}'")
        # One line, whatever the input held: control characters are shown escaped.
        text = f"{', '.join(where)}: {self.reason}"
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
