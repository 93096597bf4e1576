"""The one error the security service raises, with a stable `code` for API clients."""

from __future__ import annotations

from typing import Any


class SecurityError(ValueError):
    """A security operation that cannot be done.

    `code` is stable (`open_sensors`, `wrong_pin`, `locked_out`, …); `message`
    says what failed and what to do; `data` carries the details a screen shows
    (the open sensors, the seconds until a lockout ends).
    """

    def __init__(self, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.data}
