"""The one error the security service raises, with a stable `code` for API clients."""

from __future__ import annotations

from linli.gateway.errors import LinliError


class SecurityError(LinliError, ValueError):
    """A security operation that cannot be done.

    `code` is stable (`open_sensors`, `wrong_pin`, `locked_out`, …); `message`
    says what failed and what to do; `data` carries the details a screen shows
    (the open sensors, the seconds until a lockout ends).
    """
