"""The regional dashboard's operators: named accounts, sign-in, sessions, and the audit log.

No default password and no shared token: every operator is made by
`linli region operator add NAME`, which prints a generated password (for the
sign-in page) and an API token (for scripts) once; PostgreSQL keeps only the
password's argon2id hash and the token's SHA-256 (the token is 256 random
bits, so a fast digest suffices and a lookup needs no scan).

A web session is a random secret in an HttpOnly, SameSite=Strict cookie
(stored as its digest) with its own CSRF token, which every form carries.
Wrong passwords meet the same rule as the gateway's sign-in
(`linli.common.throttle`): five in a row lock an operator out — the right
password included — for 30 s, doubling with each further failure up to an
hour (stored with the operator; a name with no operator locks out the same
way, in memory, so the answers do not tell which names exist); and the
dashboard throttles per address without ever locking out everyone behind one
(`dashboard.py`).

The same password helpers as the gateway's accounts (`linli.common.credentials`); the
portal's session code is not reused, because it lives on the gateway's SQLite
store and the portal package, which the region must not depend on.

Audit: who signed in (or failed to), who sent which broadcast, who added or
disabled an operator — appended to `audit_log`, which a trigger keeps
append-only.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import orjson

from linli.common import credentials
from linli.common.throttle import LOGIN, Lockouts

SESSION_TTL_S: Final = 12 * 3600
# The rule of the gateway's user names too, so that a person can have the same name in both.
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


class OperatorError(ValueError):
    """An operator request that cannot be done; `code` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True, frozen=True, kw_only=True)
class Operator:
    """Who is asking, and how: `session` (a browser, with its CSRF token) or `token` (a script)."""

    name: str
    via: str
    csrf: str | None = None

    def csrf_ok(self, offered: str | None) -> bool:
        if self.via != "session":
            return True  # a bearer token is never sent by a browser on its own
        if not offered or self.csrf is None:
            return False
        return hmac.compare_digest(offered.encode(), self.csrf.encode())


@dataclass(slots=True, frozen=True)
class Credentials:
    """What `add` made, shown once."""

    name: str
    password: str
    token: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise OperatorError(
            "invalid_name",
            f"operator name {name!r} must be 2-64 letters, digits or . _ @ - "
            "(starting with a letter or digit)",
        )
    return name


async def audit(
    conn: asyncpg.Connection,
    region: str,
    operator: str | None,
    action: str,
    *,
    target: str | None = None,
    outcome: str = "ok",
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (region, operator, action, target, outcome, ip, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        region,
        operator,
        action,
        target,
        outcome,
        ip,
        orjson.dumps(detail).decode() if detail is not None else None,
    )


async def audit_log(conn: asyncpg.Connection, region: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, extract(epoch FROM ts)::float8 AS ts, operator, action, target, outcome, ip, detail "
        "FROM audit_log WHERE region = $1 ORDER BY id DESC LIMIT $2",
        region,
        limit,
    )
    return [dict(r) | {"detail": orjson.loads(r["detail"]) if r["detail"] else None} for r in rows]


# -- accounts ------------------------------------------------------------------------


async def add(conn: asyncpg.Connection, region: str, name: str, *, by: str) -> Credentials:
    """A new operator with a generated password and API token (OperatorError if the name is taken)."""
    check_name(name)
    password, token = credentials.new_password(), credentials.new_token()
    password_hash = await asyncio.to_thread(credentials.hash_password, password)  # argon2: slow by design
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO operators (name, password_hash, token_digest, created_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            name,
            password_hash,
            credentials.digest(token),
            by,
        )
        if inserted is None:
            raise OperatorError(
                "name_taken",
                f"there is an operator {name!r} already; choose another name or disable it first",
            )
        await audit(conn, region, by, "operator.added", target=name)
    return Credentials(name, password, token)


async def disable(conn: asyncpg.Connection, region: str, name: str, *, by: str) -> None:
    """The operator can no longer sign in or use its token; its sessions end at once."""
    async with conn.transaction():
        found = await conn.fetchval(
            "UPDATE operators SET disabled = true WHERE name = $1 RETURNING name", name
        )
        if found is None:
            raise OperatorError("not_found", f"no operator {name!r}; `linli region operator list` shows them")
        await conn.execute("DELETE FROM operator_sessions WHERE operator = $1", name)
        await audit(conn, region, by, "operator.disabled", target=name)


async def listing(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT name, created, created_by, disabled, last_login FROM operators ORDER BY name"
    )
    return [dict(r) for r in rows]


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM operators WHERE NOT disabled"))


# -- signing in ----------------------------------------------------------------------


async def sign_in(
    conn: asyncpg.Connection,
    region: str,
    name: str,
    password: str,
    ip: str | None,
    *,
    unknown_names: Lockouts | None = None,
) -> tuple[str, Operator]:
    """A new session (its secret, the operator) or OperatorError; every attempt is audited.

    `unknown_names` counts the wrong passwords of names that have no operator
    (the dashboard keeps one for its lifetime), so that they lock out as an
    operator does.
    """
    row = await conn.fetchrow(
        "SELECT password_hash, disabled, failures, coalesce(locked_until > now(), false) AS locked "
        "FROM operators WHERE name = $1",
        name,
    )
    now = time.time()
    unknown = unknown_names.get(name[:64]) if unknown_names is not None and row is None else None
    if (row is not None and row["locked"]) or (unknown is not None and unknown.remaining(now) > 0):
        await audit(conn, region, name, "signin", outcome="locked", ip=ip)
        raise OperatorError(
            "locked", "too many wrong passwords: this operator is locked for a while; try later"
        )
    stored = row["password_hash"] if row is not None and not row["disabled"] else None
    # A missing or disabled operator costs the same argon2 check (no telling which names exist).
    if not await asyncio.to_thread(credentials.verify_password, stored, password[:256]):
        if unknown_names is not None and row is None:
            unknown_names.fail(name[:64], now)
        if row is not None:
            failures = row["failures"] + 1
            lock = LOGIN.lock_s(failures) or None
            await conn.execute(
                "UPDATE operators SET failures = $2, locked_until = CASE WHEN $3::float8 IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => $3::float8) END WHERE name = $1",
                name,
                failures,
                lock,
            )
        await audit(conn, region, name[:64], "signin", outcome="failed", ip=ip)
        raise OperatorError("wrong_credentials", "that operator name and password do not match")
    secret, csrf = credentials.new_token(), secrets.token_urlsafe(24)
    async with conn.transaction():
        await conn.execute(
            "UPDATE operators SET failures = 0, locked_until = NULL, last_login = now() WHERE name = $1", name
        )
        await conn.execute("DELETE FROM operator_sessions WHERE expires < now()")
        await conn.execute(
            "INSERT INTO operator_sessions (digest, operator, csrf, expires, ip) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8), $5)",
            credentials.digest(secret),
            name,
            csrf,
            float(SESSION_TTL_S),
            ip,
        )
        await audit(conn, region, name, "signin", ip=ip)
    return secret, Operator(name=name, via="session", csrf=csrf)


async def sign_out(conn: asyncpg.Connection, region: str, secret: str, ip: str | None) -> None:
    name = await conn.fetchval(
        "DELETE FROM operator_sessions WHERE digest = $1 RETURNING operator", credentials.digest(secret)
    )
    if name is not None:
        await audit(conn, region, name, "signout", ip=ip)


async def from_session(conn: asyncpg.Connection, secret: str) -> Operator | None:
    if not secret or len(secret) > 200:
        return None
    row = await conn.fetchrow(
        "SELECT s.operator, s.csrf FROM operator_sessions s JOIN operators o ON o.name = s.operator "
        "WHERE s.digest = $1 AND s.expires > now() AND NOT o.disabled",
        credentials.digest(secret),
    )
    return Operator(name=row["operator"], via="session", csrf=row["csrf"]) if row else None


async def from_token(conn: asyncpg.Connection, token: str) -> Operator | None:
    if not token or len(token) > 200:
        return None
    name = await conn.fetchval(
        "SELECT name FROM operators WHERE token_digest = $1 AND NOT disabled", credentials.digest(token)
    )
    return Operator(name=name, via="token") if name else None
