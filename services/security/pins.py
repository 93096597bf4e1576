"""Per-user PIN codes (argon2id hashes, never the PIN) and the wrong-code lockout.

A PIN has only 10^4–10^8 values, so a salted hash alone falls to an offline
search in minutes once the database leaks. The hash is therefore taken of
HMAC-SHA256(pepper, PIN), with the gateway's pepper kept outside the database
(`gateway.keyfile`). Such hashes are stored as `p1$<argon2 hash>`; a plain
argon2 hash from before is still accepted once and replaced at that sign-in.

Hashing costs tens of milliseconds of CPU by design, so it runs in a worker
thread, never on the event loop. The lockout is per household (one keypad):
after `MAX_FAILURES` wrong codes in a row, every code — the right one too — is
refused for a while, and each further lockout before a right code doubles it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from linli.services.security.errors import SecurityError

MAX_FAILURES: Final = 5
LOCKOUT_BASE_S: Final = 30.0
LOCKOUT_MAX_S: Final = 900.0
_PIN: Final = re.compile(r"[0-9]{4,8}")
_HASHER: Final = PasswordHasher()
PEPPERED: Final = "p1$"


@functools.cache
def _dummy_hash() -> str:
    # Verified when a user has no PIN, so that a wrong user costs what a wrong PIN does.
    # Made on first use, in the worker thread: hashing at import would stall the loop.
    return PEPPERED + _HASHER.hash("0" * 64)


def _peppered(pin: str, pepper: bytes) -> str:
    return hmac.new(pepper, pin.encode(), hashlib.sha256).hexdigest()


def check_pin_format(pin: Any) -> str:
    """The PIN if it is 4 to 8 digits; SecurityError `invalid_pin` otherwise (the PIN is not echoed)."""
    if not isinstance(pin, str) or _PIN.fullmatch(pin) is None:
        raise SecurityError("invalid_pin", 'a PIN is 4 to 8 digits (0-9); enter it as text, e.g. "0472"')
    return pin


async def async_hash_pin(pin: str, pepper: bytes) -> str:
    """A peppered argon2id hash of the PIN (salted; the PIN cannot be read back from it)."""
    return PEPPERED + await asyncio.to_thread(_HASHER.hash, _peppered(pin, pepper))


async def async_verify_pin(stored_hash: str | None, pin: str, pepper: bytes) -> bool:
    """True when `pin` matches the stored hash (a missing hash costs the same and fails)."""

    def verify() -> bool:
        stored = stored_hash or _dummy_hash()
        if stored.startswith(PEPPERED):
            stored, secret = stored.removeprefix(PEPPERED), _peppered(pin, pepper)
        else:
            secret = pin  # from before peppering: accepted once, then rehashed
        try:
            return _HASHER.verify(stored, secret) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash is unpeppered or made with weaker parameters than today's."""
    if not stored_hash.startswith(PEPPERED):
        return True
    try:
        return _HASHER.check_needs_rehash(stored_hash.removeprefix(PEPPERED))
    except InvalidHashError:
        return True


@dataclass(slots=True, kw_only=True)
class Lockout:
    """Wrong-code bookkeeping for one household's keypad."""

    failures: int = 0  # wrong codes in a row since the last right one or lockout
    lockouts: int = 0  # lockouts since the last right code (drives the backoff)
    locked_until: float | None = None

    def remaining(self, now: float) -> float:
        """Seconds until codes are accepted again (0 when not locked)."""
        if self.locked_until is None or now >= self.locked_until:
            return 0.0
        return self.locked_until - now

    def fail(self, now: float) -> float:
        """Count a wrong code; returns the lockout it starts in seconds (0: none)."""
        self.failures += 1
        if self.failures < MAX_FAILURES:
            return 0.0
        self.failures = 0
        self.lockouts += 1
        duration = min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2 ** (self.lockouts - 1))
        self.locked_until = now + duration
        return duration

    def succeed(self) -> None:
        self.failures = 0
        self.lockouts = 0
        self.locked_until = None

    def as_data(self) -> dict[str, Any]:
        return {"failures": self.failures, "lockouts": self.lockouts, "locked_until": self.locked_until}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Lockout:
        return cls(
            failures=int(data.get("failures", 0)),
            lockouts=int(data.get("lockouts", 0)),
            locked_until=data.get("locked_until"),
        )
