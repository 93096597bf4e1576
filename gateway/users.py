"""The people who sign in, their credentials, and the append-only audit log.

This is core, not portal: the `linli user add` / `linli token create`
commands write here directly (with the gateway stopped or running: SQLite
serialises the writers), and the portal authenticates against the same rows.

* Passwords are stored only as argon2id hashes; a password or token is made
  from the OS's random source (`linli.common.credentials`, which the region's
  operators use too) and shown once by whoever asked for it.
* Tokens (web sessions, API bearer tokens, provider keys, the first-run setup
  link) are stored only as SHA-256 digests: they are 256-bit random strings,
  so a fast digest is enough, and a lookup is one indexed read.
* The audit table refuses UPDATE and DELETE (triggers in the migration).

Every function here takes a `sqlite3.Connection` and does no I/O of its own,
so it runs inside `Store.async_write(...)` or on the CLI's own connection.
Hashing a password costs tens of milliseconds: call `hash_password` /
`verify_password` from a worker thread when on the event loop.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson

# Passwords and tokens are made and hashed as the region's operators' are (linli.common.credentials);
# the accounts' callers keep asking for them here: users.new_password(), users.hash_password(), …
from linli.common.credentials import digest, new_token
from linli.common.credentials import hash_password as hash_password
from linli.common.credentials import new_password as new_password
from linli.common.credentials import verify_password as verify_password
from linli.gateway.errors import LinliError


class Role(StrEnum):
    RESIDENT = "resident"  # lives in the household
    HOUSEHOLD_ADMIN = "household_admin"  # a resident who also manages members, consent, data
    CARER = "carer"  # family carer of one household (health only with consent)
    MANAGER = "manager"  # the property manager: the whole community
    INSTALLER = "installer"  # devices and the discovery inbox, no personal data
    PROVIDER = "provider"  # a service provider's system: consenting households, granted kinds


HOUSEHOLD_ROLES: Final = frozenset({Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER})


class TokenKind(StrEnum):
    SESSION = "session"  # a browser's login (cookie), with a CSRF token
    API = "api"  # a bearer token for scripts (`linli token create`)
    PROVIDER = "provider"  # a provider's API key: scoped to households and capability kinds
    SETUP = "setup"  # the first-run link that creates the first manager
    SCREEN = "screen"  # a paired TV: no user, scope {"household": id}; sees what the TV shows


SETUP_TTL_S: Final = 3600.0
SESSION_TTL_S: Final = 12 * 3600.0
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


class UserError(LinliError, ValueError):
    """A change to users or tokens that cannot be made; `code` is stable for API clients."""


@dataclass(slots=True, kw_only=True)
class User:
    id: str
    name: str
    role: Role
    household_id: str | None
    display_name: str
    locale: str
    created: float
    disabled: bool = False
    failed_logins: int = 0
    locked_until: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "household_id": self.household_id,
            "display_name": self.display_name,
            "locale": self.locale,
            "created": self.created,
            "disabled": self.disabled,
        }


@dataclass(slots=True, kw_only=True)
class Token:
    id: str
    user_id: str | None
    kind: TokenKind
    name: str
    created: float
    expires: float | None
    revoked: float | None
    csrf: str | None = None
    scope: dict[str, Any] = field(default_factory=dict)

    def live(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > now)

    def as_dict(self) -> dict[str, Any]:
        """The token's description; never the secret (which is not stored)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "kind": self.kind.value,
            "name": self.name,
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked,
            "scope": self.scope,
        }


_USER_COLUMNS: Final = (
    "id, name, role, household_id, display_name, locale, created, disabled, failed_logins, locked_until"
)
_TOKEN_COLUMNS: Final = "id, user_id, kind, name, created, expires, revoked, csrf, scope"


def _user(row: tuple[Any, ...]) -> User:
    uid, name, role, hid, display, locale, created, disabled, failed, locked = row
    return User(
        id=uid,
        name=name,
        role=Role(role),
        household_id=hid,
        display_name=display,
        locale=locale,
        created=created,
        disabled=bool(disabled),
        failed_logins=failed,
        locked_until=locked,
    )


def _token(row: tuple[Any, ...]) -> Token:
    tid, uid, kind, name, created, expires, revoked, csrf, scope = row
    return Token(
        id=tid,
        user_id=uid,
        kind=TokenKind(kind),
        name=name,
        created=created,
        expires=expires,
        revoked=revoked,
        csrf=csrf,
        scope=orjson.loads(scope or "{}"),
    )


# -- secrets -------------------------------------------------------------------------


def check_password_strength(password: Any) -> str:
    if not isinstance(password, str) or len(password) < 10 or len(password) > 256:
        raise UserError("weak_password", "a password needs 10 to 256 characters")
    if len(set(password)) < 5:
        raise UserError("weak_password", "a password needs at least 5 different characters")
    return password


# -- users ---------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(
            "invalid_name",
            f"user name {name!r} must be 2-64 letters, digits or . _ @ - (starting with a letter or digit)",
        )
    return name


def check_role(role: Any, household_id: str | None) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        raise UserError("invalid_role", f"role {role!r} is not one of {[r.value for r in Role]}") from None
    if parsed in HOUSEHOLD_ROLES and not household_id:
        raise UserError("household_required", f"a {parsed.value} belongs to a household: give --household ID")
    if parsed not in HOUSEHOLD_ROLES and household_id:
        raise UserError("no_household", f"a {parsed.value} is not a member of one household; omit it")
    return parsed


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def get_user(conn: sqlite3.Connection, *, user_id: str | None = None, name: str | None = None) -> User | None:
    if user_id is not None:
        row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    else:
        row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return _user(row) if row else None


def password_hash_of(conn: sqlite3.Connection, user_id: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    return row[0] if row else None


def list_users(conn: sqlite3.Connection, household_id: str | None = None) -> list[User]:
    if household_id is None:
        rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE household_id = ? ORDER BY name", (household_id,)
        ).fetchall()
    return [_user(r) for r in rows]


def add_user(
    conn: sqlite3.Connection,
    name: str,
    role: str,
    *,
    password_hash: str,
    household_id: str | None = None,
    display_name: str | None = None,
    locale: str = "zh-CN",
    by: str,
) -> User:
    """Insert a user (the caller hashed the password); audited. UserError if the name is taken."""
    check_name(name)
    parsed = check_role(role, household_id)
    if household_id is not None:
        known = conn.execute("SELECT 1 FROM households WHERE id = ?", (household_id,)).fetchone()
        if known is None:
            raise UserError("no_household", f"no household {household_id!r}; list them with the portal")
    if get_user(conn, name=name) is not None:
        raise UserError("name_taken", f"a user named {name!r} exists already; choose another name")
    user = User(
        id=f"u-{secrets.token_hex(6)}",
        name=name,
        role=parsed,
        household_id=household_id,
        display_name=display_name or name,
        locale=locale,
        created=time.time(),
    )
    conn.execute(
        "INSERT INTO users (id, name, role, household_id, display_name, locale, created, password_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (user.id, name, parsed.value, household_id, user.display_name, locale, user.created, password_hash),
    )
    append_audit(
        conn, actor=by, action="user.add", household_id=household_id, target=name, detail={"role": parsed}
    )
    return user


def set_role(conn: sqlite3.Connection, user_id: str, role: str, household_id: str | None, *, by: str) -> User:
    user = get_user(conn, user_id=user_id)
    if user is None:
        raise UserError("not_found", f"no user {user_id!r}")
    parsed = check_role(role, household_id)
    conn.execute(
        "UPDATE users SET role = ?, household_id = ? WHERE id = ?", (parsed.value, household_id, user_id)
    )
    append_audit(
        conn,
        actor=by,
        action="user.role",
        household_id=household_id or user.household_id,
        target=user.name,
        detail={"from": user.role, "to": parsed, "household_id": household_id},
    )
    return get_user(conn, user_id=user_id)  # type: ignore[return-value]


def set_password_hash(
    conn: sqlite3.Connection,
    user_id: str,
    password_hash: str,
    *,
    by: str,
    keep_token_id: str | None = None,
) -> int:
    """Set a new password and end the user's web sessions but `keep_token_id` (the one that asked).

    Whoever signed in with the old password is signed out by the change, whether the user
    changed it, a manager reset it, or the demo gave it a new one. API tokens and provider
    keys are credentials of their own (revoked one by one). Returns the sessions ended.
    """
    conn.execute(
        "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?",
        (password_hash, user_id),
    )
    ended = conn.execute(
        "UPDATE tokens SET revoked = ? WHERE user_id = ? AND kind = ? AND revoked IS NULL AND id IS NOT ?",
        (time.time(), user_id, TokenKind.SESSION.value, keep_token_id),
    ).rowcount
    user = get_user(conn, user_id=user_id)
    append_audit(
        conn,
        actor=by,
        action="user.password",
        target=user.name if user else user_id,
        detail={"sessions_ended": ended},
    )
    return int(ended)


def set_locale(conn: sqlite3.Connection, user_id: str, locale: str) -> None:
    conn.execute("UPDATE users SET locale = ? WHERE id = ?", (locale, user_id))


def record_login_failure(conn: sqlite3.Connection, user_id: str, locked_until: float | None) -> None:
    conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1, locked_until = ? WHERE id = ?",
        (locked_until, user_id),
    )


def record_login_success(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (user_id,))


def delete_user(conn: sqlite3.Connection, user_id: str, *, by: str) -> None:
    user = get_user(conn, user_id=user_id)
    if user is None:
        raise UserError("not_found", f"no user {user_id!r}")
    conn.execute(
        "UPDATE tokens SET revoked = ? WHERE user_id = ? AND revoked IS NULL", (time.time(), user_id)
    )
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    append_audit(conn, actor=by, action="user.delete", household_id=user.household_id, target=user.name)


# -- tokens --------------------------------------------------------------------------


def create_token(
    conn: sqlite3.Connection,
    *,
    kind: TokenKind,
    user_id: str | None,
    name: str,
    ttl_s: float | None,
    scope: dict[str, Any] | None = None,
    csrf: bool = False,
) -> tuple[Token, str]:
    """A new token; returns its row and the secret (shown once, stored only as a digest)."""
    secret = new_token()
    now = time.time()
    token = Token(
        id=f"t-{secrets.token_hex(6)}",
        user_id=user_id,
        kind=kind,
        name=name,
        created=now,
        expires=now + ttl_s if ttl_s is not None else None,
        revoked=None,
        csrf=secrets.token_urlsafe(24) if csrf else None,
        scope=scope or {},
    )
    conn.execute(
        f"INSERT INTO tokens ({_TOKEN_COLUMNS}, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token.id,
            user_id,
            kind.value,
            name,
            now,
            token.expires,
            None,
            token.csrf,
            orjson.dumps(token.scope).decode(),
            digest(secret),
        ),
    )
    return token, secret


def find_token(conn: sqlite3.Connection, secret: str) -> Token | None:
    row = conn.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE digest = ?", (digest(secret),)).fetchone()
    return _token(row) if row else None


def list_tokens(conn: sqlite3.Connection, kind: TokenKind | None = None) -> list[Token]:
    if kind is None:
        rows = conn.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE kind = ? ORDER BY created", (kind.value,)
        ).fetchall()
    return [_token(r) for r in rows]


def revoke_token(conn: sqlite3.Connection, token_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), token_id)
    )
    return cursor.rowcount > 0


def create_setup_token(conn: sqlite3.Connection, ttl_s: float = SETUP_TTL_S) -> str | None:
    """The first-run secret, or None when a user exists already. Earlier setup links stop working."""
    if count_users(conn):
        return None
    conn.execute("UPDATE tokens SET revoked = ? WHERE kind = 'setup' AND revoked IS NULL", (time.time(),))
    _, secret = create_token(conn, kind=TokenKind.SETUP, user_id=None, name="first-run setup", ttl_s=ttl_s)
    return secret


# -- audit ---------------------------------------------------------------------------


def append_audit(
    conn: sqlite3.Connection,
    *,
    actor: str,
    action: str,
    household_id: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    role: str | None = None,
    ip: str | None = None,
    outcome: str = "ok",
) -> None:
    """One line of the append-only audit log. Never put a secret or a health value in `detail`."""
    conn.execute(
        "INSERT INTO audit (ts, actor, role, action, household_id, target, outcome, ip, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            actor,
            role,
            action,
            household_id,
            target,
            outcome,
            ip,
            orjson.dumps(detail or {}).decode(),
        ),
    )


AUDIT_COLUMNS: Final = (
    "id",
    "ts",
    "actor",
    "role",
    "action",
    "household_id",
    "target",
    "outcome",
    "ip",
    "detail",
)


def query_audit(
    conn: sqlite3.Connection,
    *,
    household_ids: list[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; `household_ids` None means the whole community. Returns (entries, total)."""
    where: list[str] = []
    params: list[Any] = []
    if household_ids is not None:
        where.append(f"household_id IN ({','.join('?' * len(household_ids))})")
        params += household_ids
    if actor:
        where.append("actor = ?")
        params.append(actor)
    if action:
        where.append("(action = ? OR action LIKE ?)")
        params += [action, action + ".%"]
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    if text:
        where.append("(target LIKE ? OR detail LIKE ? OR actor LIKE ?)")
        params += [f"%{text}%"] * 3
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT count(*) FROM audit{clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    entries = []
    for row in rows:
        entry = dict(zip(AUDIT_COLUMNS, row, strict=True))
        entry["detail"] = orjson.loads(entry["detail"] or "{}")
        entries.append(entry)
    return entries, int(total)
