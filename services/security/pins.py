"""Per-user PIN codes (argon2id hashes, never the PIN) and the wrong-code lockout.

A PIN has only 10^4–10^8 values, so a salted hash alone falls to an offline
search in minutes once the database leaks. The hash is therefore taken of
HMAC-SHA256(pepper, PIN), with the gateway's pepper kept outside the database
(`gateway.keyfile`). Such hashes are stored as `p1$<argon2 hash>`; a plain
argon2 hash from before is still accepted once and replaced at that sign-in.

Hashing costs tens of milliseconds of CPU by design, so it runs in a worker
thread, never on the event loop. The lockout is per household (one keypad),
Linli's one lockout rule (`linli.common.throttle`) with the keypad's numbers
(`KEYPAD`): after five wrong codes in a row, every code — the right one too —
is refused for a while, and each further lockout before a right code doubles it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import re
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from linli.common.throttle import Lockout, LockoutPolicy
from linli.services.security.errors import SecurityError

#: Five wrong codes in a row lock the keypad for 30 s; each further five before a right code
#: lock it twice as long, up to 15 minutes (a resident locked out of their own alarm for
#: longer could not disarm it).
KEYPAD: Final = LockoutPolicy(free_failures=5, base_s=30.0, max_s=900.0, failures_per_lockout=5)
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


def keypad_lockout(data: dict[str, Any] | None = None) -> Lockout:
    """A household keypad's lockout: new, or as stored (`Lockout.as_data`).

    Also reads what was stored before the lockout was Linli's shared one
    (`linli.common.throttle`): wrong codes since the last lockout plus the
    lockouts since the last right code, rather than wrong codes in a row.
    """
    data = data or {}
    if "lockouts" in data:
        lockouts, since = int(data["lockouts"]), int(data.get("failures", 0))
        in_a_row = since + (
            KEYPAD.free_failures + (lockouts - 1) * KEYPAD.failures_per_lockout if lockouts else 0
        )
        data = {"failures": in_a_row, "locked_until": data.get("locked_until")}
    return Lockout.from_data(data, KEYPAD)
