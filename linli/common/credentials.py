"""Passwords and tokens: made from the OS's random source, kept only as hashes.

The gateway's accounts (`linli.gateway.users`) and the region's dashboard
operators (`linli.region.operators`) make and check credentials the same way:

* a password is stored only as its argon2id hash, slow by design — call
  `hash_password` / `verify_password` from a worker thread when on the event
  loop (`asyncio.to_thread`);
* a token is 256 random bits, so a fast SHA-256 `digest` is enough to store
  it, and a lookup by digest is one indexed read.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's argon2id minimum (19 MiB, 2 passes): tens of milliseconds a hash, so a sign-in
# stays quick and a stolen hash stays expensive to guess.
_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_PASSWORD_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def new_password() -> str:
    """A generated password people can type: 4 groups of 4 from an unambiguous alphabet (~80 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))


def new_token() -> str:
    """256 random bits, URL-safe: a session secret, an API token, a pairing code."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of a token (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """argon2id (slow by design: call from a worker thread on the event loop)."""
    return _HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not-a-password")


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash costs the same and fails (no user enumeration)."""
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
