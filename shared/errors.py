"""User input that a surface refuses, with a stable code: the CLI and the HTTP API show the same.

The HTTP API answers 422 ``{"error": <code>, "message": <text>}``; the CLI prints
``error: <code>: <message>`` on one line and exits 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Refused input: `code` is stable, the message explains, `field` names the input."""

    code = "invalid_parameter"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
