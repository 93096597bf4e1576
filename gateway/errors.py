"""The one shape of an error a caller can act on, shared by the core, services and adapters.

Every layer refuses things for its own reasons (an alert already resolved, a
wrong PIN, a box that cannot tune), but all say it the same way: a stable
`code` for programs, a `message` for people that says what went wrong and what
to do, and `data` with the details a screen shows. The portal turns any of
them into its uniform JSON error without knowing which layer raised it.
"""

from __future__ import annotations

from typing import Any


class LinliError(Exception):
    """An error with a stable `code`, a human `message` and optional `data`."""

    def __init__(self, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.data}
