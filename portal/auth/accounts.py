"""Signing in and out, the first-run setup, and resolving a token to a `Principal`.

The portal's side of `gateway/users.py`: every write goes through the store's
writer (committed before the answer), password hashing runs in a worker
thread, and resolved tokens are cached for `CACHE_S` so that an API call costs
no database read; revoking or changing a user drops its cache entries at once
(a token revoked by the CLI in another process stops working within `CACHE_S`).
A cached token still stops at its own expiry time, to the second.

A web session lives `portal.session_hours` (the token's expiry on the server,
not only the cookie's). Whatever ends a credential here — signing out, a
password change, disabling, deleting or re-roling an account, revoking a key —
also closes the WebSockets opened with it at once (`close_sockets`, the hub's
`close_where`), so no screen keeps streaming for someone who lost access.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from linli.common.forwarded import TrustedProxies
from linli.common.throttle import LOGIN, AddressThrottle, Lockouts
from linli.gateway import users
from linli.gateway.component import ComponentApi
from linli.gateway.users import Role, TokenKind, User, UserError
from linli.portal.api.errors import ApiError
from linli.portal.auth.principal import Principal
from linli.portal.auth.screens import screen_principal

_LOGGER = logging.getLogger(__name__)
CACHE_S: Final = 15.0
#: Closes the open WebSockets whose principal matches; returns how many (the hub's `close_where`).
SocketCloser = Callable[[Callable[[Principal], bool]], int]


class Accounts:
    def __init__(self, gateway: ComponentApi) -> None:
        self.gateway = gateway
        self.store = gateway.store
        self.throttle = AddressThrottle()
        # The proxies whose X-Forwarded-For / -Proto are believed (checked when the config loads).
        self.proxies = TrustedProxies(gateway.config.get("portal", {}).get("trusted_proxies", ()))
        # digest → (when resolved, principal, when the token expires (epoch s) or None)
        self._cache: dict[str, tuple[float, Principal | None, float | None]] = {}
        # Wrong passwords for names that have no account, counted like an account's own
        # (in memory): an unknown name locks out after the same failures as a real one, so
        # the answers do not tell which names exist.
        self._unknown_names = Lockouts(LOGIN)
        self.has_users = False
        self._users_checked = 0.0
        self._user_lock = asyncio.Lock()
        self.close_sockets: SocketCloser | None = None  # set where the hub is made

    @property
    def session_ttl_s(self) -> float:
        """How long a web session lives: `portal.session_hours`, enforced on the token itself."""
        hours = self.gateway.config.get("portal", {}).get("session_hours")
        return float(hours) * 3600.0 if hours else users.SESSION_TTL_S

    async def async_load(self) -> None:
        self.has_users = await self.store.async_read(lambda conn: users.count_users(conn) > 0)
        self._users_checked = time.monotonic()

    async def async_has_users(self) -> bool:
        """Whether any account exists (looked up again every 2 s until one does: the CLI may add one)."""
        if not self.has_users and time.monotonic() - self._users_checked > 2.0:
            await self.async_load()
        return self.has_users

    # -- audit ---------------------------------------------------------------------

    async def async_audit(
        self,
        actor: Principal | str,
        action: str,
        *,
        household_id: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        ip: str | None = None,
        outcome: str = "ok",
    ) -> None:
        name = actor if isinstance(actor, str) else actor.name
        role = None if isinstance(actor, str) else actor.role.value
        await self.store.async_write(
            lambda db: users.append_audit(
                db.conn,
                actor=name,
                role=role,
                action=action,
                household_id=household_id,
                target=target,
                detail=detail,
                ip=ip,
                outcome=outcome,
            )
        )

    # -- tokens → principals -------------------------------------------------------

    async def async_resolve(self, secret: str) -> Principal | None:
        """The principal a token stands for, or None (unknown, expired, revoked, disabled)."""
        if not secret or len(secret) > 200:
            return None
        key = users.digest(secret)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_S:
            expires = cached[2]
            if expires is None or expires > time.time():
                return cached[1]
            del self._cache[key]  # expired since it was cached: refused from its last second on
            return None

        def read(conn: Any) -> tuple[users.Token | None, User | None]:
            token = users.find_token(conn, secret)
            user = users.get_user(conn, user_id=token.user_id) if token and token.user_id else None
            return token, user

        token, user = await self.store.async_read(read)
        principal = None
        if token is not None and token.live(time.time()) and token.kind is not TokenKind.SETUP:
            if token.kind is TokenKind.SCREEN:  # a paired TV: no user behind it (portal/auth/pairing.py)
                principal = screen_principal(token)
            elif user is not None and not user.disabled:
                principal = _principal(user, token)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (now, principal, token.expires if token is not None else None)
        return principal

    def forget_user(self, user_id: str, *, keep_token_id: str | None = None, sockets: bool = True) -> int:
        """Drop the user's cached tokens; with `sockets`, close their WebSockets but `keep_token_id`'s.

        Called after any change to the account (disabled, deleted, new role or password): its
        open sockets were indexed under what it was, so they close and the pages reconnect as
        what it is now — or are refused. `sockets=False` for harmless changes (language, name).
        Returns the sockets closed.
        """
        for key, (_, principal, _) in list(self._cache.items()):
            if principal is not None and principal.user_id == user_id:
                del self._cache[key]
        if not sockets or self.close_sockets is None:
            return 0
        closed = self.close_sockets(lambda p: p.user_id == user_id and p.token_id != keep_token_id)
        if closed:
            _LOGGER.info("closed %d live connection(s) of user %s: its access changed", closed, user_id)
        return closed

    def forget_token(self, token_id: str) -> int:
        """Drop a revoked token from the cache and close the WebSockets opened with it."""
        for key, (_, principal, _) in list(self._cache.items()):
            if principal is not None and principal.token_id == token_id:
                del self._cache[key]
        if self.close_sockets is None:
            return 0
        return self.close_sockets(lambda p: p.token_id == token_id)

    async def async_token_expiry(self, token_id: str) -> float | None:
        """When a token expires (epoch s), None if never; a live connection closes then."""
        row = await self.store.async_read(
            lambda conn: conn.execute("SELECT expires FROM tokens WHERE id = ?", (token_id,)).fetchone()
        )
        return float(row[0]) if row and row[0] is not None else None

    # -- login ---------------------------------------------------------------------

    async def async_login(self, name: str, password: str, ip: str) -> tuple[Principal, str]:
        """A new web session (principal, session secret); ApiError when refused (audited)."""
        name = name.strip()[:64]
        verdict = self.throttle.check(ip, name)
        if not verdict.allowed:
            wait = verdict.wait_s
            why = {
                "name": "too many failed sign-ins with this name from your address",
                "address": "too many failed sign-ins from your address",
                "paced": "many failed sign-ins come from your address, so sign-ins from it are slowed",
            }[verdict.reason]
            # Not audited one by one: a refusal costs no database write, however many come.
            raise ApiError(
                "too_many_attempts",
                f"{why}; try again in {int(wait) + 1} s",
                retry_after_s=round(wait, 1),
            )
        user, stored = await self.store.async_read(
            lambda conn: (
                (u := users.get_user(conn, name=name)),
                users.password_hash_of(conn, u.id) if u else None,
            )
        )
        now = time.time()
        # A name without an account keeps its count here, and locks out like an account.
        if user is not None:
            failures, locked_until = user.failed_logins, user.locked_until
        else:
            unknown = self._unknown_names.get(name)
            failures, locked_until = unknown.failures, unknown.locked_until
        if locked_until is not None and locked_until > now:
            wait = locked_until - now
            await self.async_audit(name, "login", ip=ip, outcome="locked_out")
            raise ApiError(
                "locked_out",
                f"account {name!r} is locked after repeated wrong passwords; try again in {int(wait) + 1} s",
                retry_after_s=round(wait, 1),
            )
        ok = await asyncio.to_thread(users.verify_password, stored, password)
        if not ok or user is None or user.disabled or user.role is Role.PROVIDER:
            self.throttle.fail(ip, name)
            locked = LOGIN.locked_until(failures + 1, now)
            if user is None:
                self._unknown_names.fail(name, now)

            def failed(db: Any) -> None:
                # One write whether or not the name exists: the answer takes as long either way.
                if user is not None:
                    users.record_login_failure(db.conn, user.id, locked)
                users.append_audit(db.conn, actor=name, action="login", ip=ip, outcome="failed")

            await self.store.async_write(failed)
            raise ApiError("invalid_credentials", "wrong user name or password")

        def start(db: Any) -> tuple[users.Token, str]:
            users.record_login_success(db.conn, user.id)
            users.append_audit(db.conn, actor=user.name, role=user.role.value, action="login", ip=ip)
            return users.create_token(
                db.conn,
                kind=TokenKind.SESSION,
                user_id=user.id,
                name="web session",
                ttl_s=self.session_ttl_s,
                csrf=True,
            )

        token, secret = await self.store.async_write(start)
        self.throttle.succeed(ip, name)
        return _principal(user, token), secret

    async def async_logout(self, principal: Principal, ip: str) -> None:
        def end(db: Any) -> None:
            users.revoke_token(db.conn, principal.token_id)
            users.append_audit(
                db.conn, actor=principal.name, role=principal.role.value, action="logout", ip=ip
            )

        await self.store.async_write(end)
        self.forget_token(principal.token_id)

    # -- first run -----------------------------------------------------------------

    async def async_setup_secret(self) -> str | None:
        """A one-time setup secret while no user exists (valid one hour), else None."""
        secret = await self.store.async_write(lambda db: users.create_setup_token(db.conn))
        self.has_users = secret is None
        return secret

    async def async_complete_setup(
        self, secret: str, name: str, password: str, display_name: str | None, ip: str
    ) -> tuple[Principal, str]:
        users.check_name(name)
        users.check_password_strength(password)
        password_hash = await asyncio.to_thread(users.hash_password, password)

        def create(db: Any) -> tuple[User, users.Token, str]:
            conn = db.conn
            token = users.find_token(conn, secret)
            if (
                token is None
                or token.kind is not TokenKind.SETUP
                or not token.live(time.time())
                or users.count_users(conn)
            ):
                raise UserError(
                    "invalid_token",
                    "this setup link is used, expired or unknown; restart the gateway for a new one "
                    "(it prints one while no account exists), or add a manager with `linli user add`",
                )
            users.revoke_token(conn, token.id)
            user = users.add_user(
                conn,
                name,
                Role.MANAGER,
                password_hash=password_hash,
                display_name=display_name,
                by="setup-link",
            )
            users.append_audit(conn, actor=user.name, role=user.role.value, action="login", ip=ip)
            session, session_secret = users.create_token(
                conn,
                kind=TokenKind.SESSION,
                user_id=user.id,
                name="web session",
                ttl_s=self.session_ttl_s,
                csrf=True,
            )
            return user, session, session_secret

        async with self._user_lock:
            user, session, session_secret = await self.store.async_write(create)
        self.has_users = True
        _LOGGER.info("first-run setup: manager account %s created", user.name)
        return _principal(user, session), session_secret

    # -- users ---------------------------------------------------------------------

    async def async_add_user(
        self,
        actor: Principal,
        name: str,
        role: str,
        household_id: str | None,
        display_name: str | None,
        ip: str | None = None,
    ) -> tuple[User, str]:
        """A new user with a generated password (returned once)."""
        users.check_name(name)
        password = users.new_password()
        password_hash = await asyncio.to_thread(users.hash_password, password)
        user = await self.store.async_write(
            lambda db: users.add_user(
                db.conn,
                name,
                role,
                password_hash=password_hash,
                household_id=household_id,
                display_name=display_name,
                by=actor.name,
            )
        )
        self.has_users = True
        return user, password

    async def async_change_password(self, principal: Principal, current: str, new: str) -> None:
        stored = await self.store.async_read(lambda conn: users.password_hash_of(conn, principal.user_id))
        if not await asyncio.to_thread(users.verify_password, stored, current):
            raise ApiError("invalid_credentials", "the current password is wrong")
        users.check_password_strength(new)
        new_hash = await asyncio.to_thread(users.hash_password, new)
        # Every other session of this user ends (whoever knew the old password is signed out);
        # this one goes on.
        await self.store.async_write(
            lambda db: users.set_password_hash(
                db.conn, principal.user_id, new_hash, by=principal.name, keep_token_id=principal.token_id
            )
        )
        self.forget_user(principal.user_id, keep_token_id=principal.token_id)


def _principal(user: User, token: users.Token) -> Principal:
    scope = token.scope or {}
    return Principal(
        user_id=user.id,
        name=user.name,
        role=user.role,
        household_id=user.household_id,
        display_name=user.display_name,
        locale=user.locale,
        via={TokenKind.SESSION: "session", TokenKind.PROVIDER: "provider"}.get(token.kind, "bearer"),
        token_id=token.id,
        csrf=token.csrf,
        scope_households=frozenset(scope.get("households", ())),
        scope_kinds=frozenset(scope.get("kinds", ())),
    )


def same_secret(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())
