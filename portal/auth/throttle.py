"""Login throttling: a per-account lockout with growing backoff, and a per-address rate limit.

Per account (stored with the user, so a restart does not reset it): after
`FREE_FAILURES` wrong passwords in a row, the account refuses every login —
the right password too — for `BASE_S`, doubling with each further failure up
to `MAX_S`. A right password after the lockout ends resets the count.

Per address (in memory): more than `ADDRESS_LIMIT` failures within
`ADDRESS_WINDOW_S` from one address refuse further attempts from it for the
rest of the window, whichever names they try (password spraying).
"""

from __future__ import annotations

import collections
import time
from typing import Final

FREE_FAILURES: Final = 5
BASE_S: Final = 30.0
MAX_S: Final = 3600.0
ADDRESS_LIMIT: Final = 30
ADDRESS_WINDOW_S: Final = 300.0


def lockout_after(failures: int, now: float) -> float | None:
    """When an account with `failures` wrong passwords in a row may try again (None: now)."""
    if failures < FREE_FAILURES:
        return None
    return now + min(MAX_S, BASE_S * 2 ** (failures - FREE_FAILURES))


class AddressThrottle:
    def __init__(self, limit: int = ADDRESS_LIMIT, window_s: float = ADDRESS_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, address: str, now: float) -> collections.deque[float]:
        times = self._failures.setdefault(address, collections.deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, address: str, now: float | None = None) -> float:
        """Seconds until this address may try again (0: it may now)."""
        now = time.monotonic() if now is None else now
        times = self._recent(address, now)
        if len(times) < self.limit:
            if not times:
                self._failures.pop(address, None)
            return 0.0
        return times[0] + self.window_s - now

    def fail(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(address, now).append(now)
        if len(self._failures) > 100_000:  # bounded: forget the quietest addresses
            for key in list(self._failures)[:50_000]:
                del self._failures[key]
