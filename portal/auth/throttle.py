"""Login throttling: a per-account lockout, and per-address limits that never lock out a network.

Per account (stored with the user, so a restart does not reset it): after
`FREE_FAILURES` wrong passwords in a row, the account refuses every login —
the right password too — for `BASE_S`, doubling with each further failure up
to `MAX_S`. A right password after the lockout ends resets the count.

Per address (in memory). Many people share one address — a household behind
its router, a whole community behind the carrier's NAT or the gateway's own
reverse proxy — so an attacker's failures must not shut the door on the
others. The rule, for an attempt to sign in as NAME from ADDRESS:

1. NAME has failed more than `PAIR_LIMIT` times from ADDRESS within
   `WINDOW_S`: refused until the oldest of those failures leaves the window
   (one name guessed hard from one place; unknown names too, so the answer
   does not tell which names exist).
2. ADDRESS has failed more than `ADDRESS_LIMIT` times within `WINDOW_S`
   (someone there tries many names — password spraying):
   * a NAME that failed from ADDRESS in the window is refused until the
     window passes;
   * a NAME that signed in successfully from ADDRESS within `KNOWN_S` is not
     held back at all (the resident who always signs in from home);
   * any other NAME is slowed, not refused: ADDRESS gets one such attempt
     every `PACE_S`, so a neighbour signing in for the first time waits
     seconds, while the sprayer is held to `3600 / PACE_S` new names an hour.
3. Otherwise the attempt goes ahead.

The address is the client's own (`portal.trusted_proxies`: the one a trusted
reverse proxy forwards), never the proxy's, and never one a client claims.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Final

FREE_FAILURES: Final = 5
BASE_S: Final = 30.0
MAX_S: Final = 3600.0
ADDRESS_LIMIT: Final = 30
PAIR_LIMIT: Final = 10
WINDOW_S: Final = 300.0
PACE_S: Final = 2.0
KNOWN_S: Final = 30 * 86400.0
MAX_ENTRIES: Final = 100_000  # per table; beyond it the oldest half is forgotten


def lockout_after(failures: int, now: float) -> float | None:
    """When an account with `failures` wrong passwords in a row may try again (None: now)."""
    if failures < FREE_FAILURES:
        return None
    return now + min(MAX_S, BASE_S * 2 ** (failures - FREE_FAILURES))


@dataclass(slots=True, frozen=True)
class Verdict:
    """Whether an attempt may go ahead now; if not, how long to wait and why."""

    wait_s: float = 0.0
    reason: str = ""  # "name" (this name from here), "address" (a sprayed address), "paced"

    @property
    def allowed(self) -> bool:
        return self.wait_s <= 0


ALLOWED: Final = Verdict()


def _bounded(table: dict, key: object) -> None:  # type: ignore[type-arg]
    if len(table) >= MAX_ENTRIES and key not in table:
        for old in list(table)[: MAX_ENTRIES // 2]:
            del table[old]


class AddressThrottle:
    def __init__(
        self,
        limit: int = ADDRESS_LIMIT,
        window_s: float = WINDOW_S,
        *,
        pair_limit: int = PAIR_LIMIT,
        pace_s: float = PACE_S,
        known_s: float = KNOWN_S,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.pair_limit = pair_limit
        self.pace_s = pace_s
        self.known_s = known_s
        self._failures: dict[str, collections.deque[float]] = {}  # address → failure times
        self._pairs: dict[tuple[str, str], collections.deque[float]] = {}  # (address, name) → times
        self._known: dict[tuple[str, str], float] = {}  # (address, name) → last successful sign-in
        self._paced: dict[str, float] = {}  # address → when its last paced attempt went ahead

    @staticmethod
    def _key(address: str, name: str) -> tuple[str, str]:
        return address, name.strip().casefold()

    def _recent(self, table: dict, key: object, now: float) -> collections.deque[float]:  # type: ignore[type-arg]
        times = table.get(key)
        if times is None:
            return collections.deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del table[key]
        return times

    def check(self, address: str, name: str, now: float | None = None) -> Verdict:
        """May `name` try to sign in from `address` now? A paced attempt that goes ahead uses the slot."""
        now = time.monotonic() if now is None else now
        key = self._key(address, name)
        pair = self._recent(self._pairs, key, now)
        if len(pair) >= self.pair_limit:
            return Verdict(pair[0] + self.window_s - now, "name")
        spread = self._recent(self._failures, address, now)
        if len(spread) < self.limit:
            return ALLOWED
        if pair:
            return Verdict(spread[0] + self.window_s - now, "address")
        known = self._known.get(key)
        if known is not None and now - known < self.known_s:
            return ALLOWED
        last = self._paced.get(address)
        if last is not None and now - last < self.pace_s:
            return Verdict(last + self.pace_s - now, "paced")
        _bounded(self._paced, address)
        self._paced[address] = now
        return ALLOWED

    def retry_after(self, address: str, name: str = "", now: float | None = None) -> float:
        """Seconds until `name` may try from this address (0: now)."""
        return max(0.0, self.check(address, name, now).wait_s)

    def fail(self, address: str, name: str = "", now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        key = self._key(address, name)
        _bounded(self._failures, address)
        self._failures.setdefault(address, collections.deque()).append(now)
        _bounded(self._pairs, key)
        self._pairs.setdefault(key, collections.deque()).append(now)

    def succeed(self, address: str, name: str, now: float | None = None) -> None:
        """A right password: this name is known at this address, and its failures there are forgiven."""
        now = time.monotonic() if now is None else now
        key = self._key(address, name)
        self._pairs.pop(key, None)
        self._known.pop(key, None)  # re-inserted last: the bound forgets the stalest first
        _bounded(self._known, key)
        self._known[key] = now
