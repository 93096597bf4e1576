"""A logger that says a recurring thing once a window, and how often it held its tongue.

Some warnings can come thousands of times a second — a subscriber too slow
for its queue, a device sending junk, a region with no consumer. Logging each
would bury everything else and cost the loop real time; logging none would
hide the fault. `RateLimitedLog` lets one line per key through every
`every_s` (a minute unless told), and the next line for that key ends with how
many like it were not logged in between. An optional `budget` caps the lines
of all keys together per window; when it held some back, the next window opens
with one line saying how many.

    log = RateLimitedLog(_LOGGER)
    log.warning("payload from %s rejected: %s", device_id, reason, key=device_id)

Keys are whatever tells the recurring things apart (a device id, a topic);
`None` is one key like any other. At most `max_keys` are remembered; past
that the table starts afresh (a key then may log once more than it would).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

EVERY_S: Final = 60.0
MAX_KEYS: Final = 10_000


@dataclass(slots=True)
class _Key:
    last: float  # when this key last got a line out
    held: int = 0  # lines for this key not logged since


class RateLimitedLog:
    """One line per key per window (see the module's docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        every_s: float = EVERY_S,
        *,
        budget: int | None = None,
        budget_note: str = "",
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.logger = logger
        self.every_s = every_s
        self.budget = budget
        self.budget_note = budget_note  # appended to the "… not logged" line, e.g. where to see them all
        self.max_keys = max_keys
        self.clock = clock  # None: time.monotonic, looked up at each call
        self._keys: dict[Hashable, _Key] = {}
        self._window_start = -float("inf")
        self._left = budget
        self._over_budget = 0  # lines held back by the budget in the current window

    def log(self, level: int, msg: str, *args: Any, key: Hashable = None) -> bool:
        """Log `msg % args` at `level` unless `key` had a line within the window; True if logged."""
        if not self.logger.isEnabledFor(level):
            return False
        now = time.monotonic() if self.clock is None else self.clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry.last < self.every_s:
            entry.held += 1
            return False
        if self.budget is not None and not self._spend(level, now):
            if entry is not None:
                entry.held += 1
            return False
        held = 0
        if entry is None:
            if len(self._keys) >= self.max_keys:
                self._keys.clear()
            self._keys[key] = _Key(last=now)
        else:
            held, entry.last, entry.held = entry.held, now, 0
        if held:
            msg += " (%d more like this in the last %.0f s not logged)"
            args = (*args, held, self.every_s)
        self.logger.log(level, msg, *args)
        return True

    def _spend(self, level: int, now: float) -> bool:
        """Take one line from the window's budget; False when it is spent."""
        if now - self._window_start >= self.every_s:
            if self._over_budget:
                self.logger.log(
                    level,
                    "%d more lines in the last %.0f s were not logged%s",
                    self._over_budget,
                    self.every_s,
                    self.budget_note,
                )
            self._window_start, self._left, self._over_budget = now, self.budget, 0
        if not self._left:
            self._over_budget += 1
            return False
        self._left -= 1
        return True

    def warning(self, msg: str, *args: Any, key: Hashable = None) -> bool:
        return self.log(logging.WARNING, msg, *args, key=key)

    def error(self, msg: str, *args: Any, key: Hashable = None) -> bool:
        return self.log(logging.ERROR, msg, *args, key=key)

    def info(self, msg: str, *args: Any, key: Hashable = None) -> bool:
        return self.log(logging.INFO, msg, *args, key=key)
