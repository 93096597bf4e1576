"""Sign-in throttling: a per-account lockout, and per-address limits that never lock out a network.

One rule for every secret a person types: the portal's passwords
(`portal/auth/accounts.py`), the regional dashboard's operator passwords
(`linli/region/operators.py`), the TV pairing codes (`portal/auth/pairing.py`)
and the alarm keypad's PINs (`services/security/pins.py`).

Per account (`LockoutPolicy`, `Lockout`; the caller stores the count with the
account, so a restart does not reset it): after `free_failures` wrong answers
in a row, the account refuses every attempt — the right one too — for
`base_s`, doubling with each further lockout up to `max_s`. For passwords
(`LOGIN`) every failure after the fifth is a further lockout: five wrong
passwords lock an account for 30 s, a sixth after that for a minute, and so
on up to an hour. A right answer after the lockout ends resets the count.
Names that have no account lock out the same way (`Lockouts`, in memory), so
that the answers do not tell which names exist.

Per address (`AddressThrottle`, in memory). Many people share one address — a
household behind its router, a whole community behind the carrier's NAT or a
reverse proxy — so an attacker's failures must not shut the door on the
others. The rule, for an attempt to sign in as NAME from ADDRESS:

1. NAME has failed more than `PAIR_LIMIT` times from ADDRESS within
   `WINDOW_S`: refused until the oldest of those failures leaves the window
   (one name guessed hard from one place; unknown names too).
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

The address must be the client's own (the one a trusted reverse proxy
forwards), never the proxy's, and never one a client claims. Times are the
caller's: wall-clock seconds for a lockout that is stored, `time.monotonic()`
(the default) for the in-memory address tables; tests pass their own.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any, Final

from linli.common.backoff import backoff_delay

FREE_FAILURES: Final = 5
BASE_S: Final = 30.0
MAX_S: Final = 3600.0
ADDRESS_LIMIT: Final = 30
PAIR_LIMIT: Final = 10
WINDOW_S: Final = 300.0
PACE_S: Final = 2.0
KNOWN_S: Final = 30 * 86400.0
MAX_ENTRIES: Final = 100_000  # per table; beyond it the oldest half is forgotten


# -- per account ---------------------------------------------------------------------


@dataclass(slots=True, frozen=True, kw_only=True)
class LockoutPolicy:
    """When wrong answers in a row lock an account, and for how long."""

    free_failures: int = FREE_FAILURES  # wrong answers in a row before the first lockout
    base_s: float = BASE_S  # the first lockout; each further one doubles it…
    max_s: float = MAX_S  # …up to this
    failures_per_lockout: int = 1  # after the first lockout, how many more wrong answers start the next

    def __post_init__(self) -> None:
        if self.free_failures < 1 or self.failures_per_lockout < 1:
            raise ValueError(
                f"lockout: free_failures and failures_per_lockout must be at least 1, got {self!r}"
            )

    def lock_s(self, failures: int) -> float:
        """How long the `failures`-th wrong answer in a row locks the account (0: it does not)."""
        over = failures - self.free_failures
        if over < 0 or over % self.failures_per_lockout:
            return 0.0
        attempt = over // self.failures_per_lockout
        return backoff_delay(attempt, base=self.base_s, cap=self.max_s, jitter=False)

    def locked_until(self, failures: int, now: float) -> float | None:
        """Until when the `failures`-th wrong answer in a row at `now` locks the account (None: not)."""
        lock = self.lock_s(failures)
        return now + lock if lock else None

    def lockouts(self, failures: int) -> int:
        """How many lockouts `failures` wrong answers in a row have started."""
        over = failures - self.free_failures
        return 0 if over < 0 else over // self.failures_per_lockout + 1


LOGIN: Final = LockoutPolicy()  # passwords: five free, then 30 s doubling with every failure up to an hour


@dataclass(slots=True, kw_only=True)
class Lockout:
    """One account's (or keypad's) wrong answers in a row, and until when it is locked."""

    policy: LockoutPolicy = field(default=LOGIN, compare=False, repr=False)
    failures: int = 0  # wrong answers in a row since the last right one
    locked_until: float | None = None

    @property
    def lockouts(self) -> int:
        return self.policy.lockouts(self.failures)

    def remaining(self, now: float) -> float:
        """Seconds until answers are looked at again (0 when not locked)."""
        if self.locked_until is None or now >= self.locked_until:
            return 0.0
        return self.locked_until - now

    def fail(self, now: float) -> float:
        """Count a wrong answer; returns the lockout it starts in seconds (0: none)."""
        self.failures += 1
        lock = self.policy.lock_s(self.failures)
        if lock:
            self.locked_until = now + lock
        return lock

    def succeed(self) -> None:
        self.failures = 0
        self.locked_until = None

    def as_data(self) -> dict[str, Any]:
        return {"failures": self.failures, "locked_until": self.locked_until}

    @classmethod
    def from_data(cls, data: dict[str, Any], policy: LockoutPolicy = LOGIN) -> Lockout:
        until = data.get("locked_until")
        return cls(
            policy=policy,
            failures=int(data.get("failures", 0)),
            locked_until=float(until) if until is not None else None,
        )


class Lockouts:
    """Lockouts kept in memory by name (bounded): for names that have no account to store them with."""

    def __init__(self, policy: LockoutPolicy = LOGIN, max_entries: int = MAX_ENTRIES) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._by_name: dict[str, Lockout] = {}

    def get(self, name: str) -> Lockout:
        """The name's lockout (a fresh one, not remembered, for a name that never failed)."""
        return self._by_name.get(name) or Lockout(policy=self.policy)

    def fail(self, name: str, now: float) -> float:
        """Count a wrong answer for `name`; returns the lockout it starts in seconds (0: none)."""
        lockout = self._by_name.pop(name, None) or Lockout(policy=self.policy)
        _bounded(self._by_name, name, self.max_entries)
        self._by_name[name] = lockout  # re-inserted last: the bound forgets the stalest first
        return lockout.fail(now)

    def succeed(self, name: str) -> None:
        self._by_name.pop(name, None)


# -- per address ---------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Verdict:
    """Whether an attempt may go ahead now; if not, how long to wait and why."""

    wait_s: float = 0.0
    reason: str = ""  # "name" (this name from here), "address" (a sprayed address), "paced"

    @property
    def allowed(self) -> bool:
        return self.wait_s <= 0


ALLOWED: Final = Verdict()


def _bounded(table: dict[Any, Any], key: object, max_entries: int = MAX_ENTRIES) -> None:
    if len(table) >= max_entries and key not in table:
        for old in list(table)[: max_entries // 2]:
            del table[old]


class AddressThrottle:
    """The per-address rules above, in memory (see the module's docstring)."""

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

    def _recent(
        self, table: dict[Any, collections.deque[float]], key: object, now: float
    ) -> collections.deque[float]:
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
