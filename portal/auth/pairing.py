"""Pairing a TV with its remote alone, in the shape of the OAuth 2.0 device authorization grant.

RFC 8628, as a set-top box without a keyboard needs it:

1. `/tv`, not signed in, asks for a pairing (`POST /api/v1/tv/pairings`, §3.1-3.2):
   a secret `device_code` the page keeps, a short `user_code` shown large
   (`WDJB-MJHT`: 8 letters of an alphabet without vowels or look-alikes, §6.1)
   and a QR code (SVG) of the verification URL `/app/pair?code=WDJB-MJHT`.
2. A household admin, signed in on the phone, confirms the code (typed or
   scanned) and picks nothing else: the screen is paired to the admin's own
   household (`POST /api/v1/screens/pair`), or denied (`.../pair/deny`).
3. The TV polls (`POST /api/v1/tv/pairings/token`, §3.4-3.5) no faster than
   `interval`: `authorization_pending`, `slow_down` (the interval grows by 5 s),
   `access_denied`, `expired_token`; once confirmed it gets the screen
   credential as an HttpOnly cookie, once — a device code cannot be used twice.

Carrier and cable boxes the gateway adopted for a household need no code:
when the gateway opens the portal on such a box it sends a URL with a
one-time *pairing grant* (`/tv/?grant=…`, 2 minutes, single use) that `/tv`
exchanges for the same credential (`async_exchange_grant`).

Household admins list and revoke their screens; revocation stops the box at
once (the token cache forgets it and its WebSockets close). Pairing,
denial, grant use and revocation are audited. Wrong user codes are
throttled per account and per address, so guessing a 34-bit code on someone
else's screen is hopeless. Pending pairings and grants live in memory only:
they last minutes, and a TV simply asks again after a restart.
"""

from __future__ import annotations

import base64
import io
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson
from aiohttp import web

from linli.common.throttle import AddressThrottle
from linli.gateway import users
from linli.gateway.component import ComponentApi
from linli.gateway.users import Role, TokenKind
from linli.portal.api.errors import ApiError, json_response
from linli.portal.api.operations import Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS, CSRF_COOKIE
from linli.portal.auth.screens import SCREEN_COOKIE, SCREEN_TTL_S

#: RFC 8628 §6.1: base-20 consonants, no vowels (no words), no look-alikes; 8 of them ≈ 34.6 bits.
ALPHABET: Final = "BCDFGHJKLMNPQRSTVWXZ"
CODE_LENGTH: Final = 8
EXPIRES_S: Final = 600.0
INTERVAL_S: Final = 5.0
SLOW_DOWN_S: Final = 5.0  # §3.5: each too-early poll adds 5 s to the interval
GRANT_TTL_S: Final = 120.0
MAX_PENDING: Final = 5_000
#: Wrong codes an account, or an address, may enter within the window before it must wait.
WRONG_CODES: Final = 10
WRONG_CODES_WINDOW_S: Final = 600.0
ADMINS: Final = [Role.HOUSEHOLD_ADMIN]


def normalize(code: str) -> str:
    """A user code as typed or scanned ("wdjb mjht", "WDJB-MJHT") in its canonical form."""
    return "".join(ch for ch in code.upper() if ch in ALPHABET)


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


@dataclass(slots=True, kw_only=True)
class Pairing:
    user_code: str
    expires: float
    interval: float
    last_poll: float | None = None
    state: str = "pending"  # pending | approved | denied | used
    household_id: str | None = None
    approved_by: str | None = None


@dataclass(slots=True, kw_only=True)
class Grant:
    household_id: str
    expires: float
    by: str


def qr_svg(data: str) -> str:
    """The QR code of `data` as an SVG document (segno: pure Python, no image library)."""
    import segno  # imported when a TV first asks: the portal starts without paying for it

    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", scale=8, border=2, dark="#000", light="#fff")
    return out.getvalue().decode()


class Pairings:
    """Pending device-code pairings and one-time grants (in memory), and the screen credentials."""

    def __init__(self, gateway: ComponentApi) -> None:
        self.gateway = gateway
        self._by_device: dict[str, Pairing] = {}  # digest of the device code → pairing
        self._by_user_code: dict[str, str] = {}  # user code → digest of its device code
        self._grants: dict[str, Grant] = {}  # digest of the grant → grant
        self.wrong_codes = AddressThrottle(limit=WRONG_CODES, window_s=WRONG_CODES_WINDOW_S)

    # -- the TV's side (RFC 8628 §3.1-3.5) -----------------------------------------

    def _prune(self, now: float) -> None:
        for key in [k for k, p in self._by_device.items() if p.expires <= now]:
            pairing = self._by_device.pop(key)
            self._by_user_code.pop(pairing.user_code, None)
        for key in [k for k, g in self._grants.items() if g.expires <= now]:
            del self._grants[key]

    def start(self, now: float | None = None) -> tuple[str, Pairing]:
        """A new pairing: (the device code, shown to nobody but the TV page; the pairing)."""
        now = time.time() if now is None else now
        self._prune(now)
        if len(self._by_device) >= MAX_PENDING:
            raise ApiError(
                "too_many_attempts",
                "too many TVs are pairing right now; try again in a minute",
                retry_after_s=60,
            )
        while True:
            user_code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            if user_code not in self._by_user_code:
                break
        device_code = users.new_token()
        key = users.digest(device_code)
        pairing = Pairing(user_code=user_code, expires=now + EXPIRES_S, interval=INTERVAL_S)
        self._by_device[key] = pairing
        self._by_user_code[user_code] = key
        return device_code, pairing

    def poll(self, device_code: str, now: float | None = None) -> Pairing:
        """The pairing once the admin confirmed it (then used: never again); ApiError otherwise."""
        now = time.time() if now is None else now
        pairing = self._by_device.get(users.digest(device_code))
        if pairing is None or pairing.state == "used":
            raise ApiError(
                "invalid_grant", "this pairing is unknown or was used already; start a new one on the TV"
            )
        if pairing.expires <= now:
            raise ApiError(
                "expired_token", "the code on the TV expired before anyone confirmed it; show a new one"
            )
        if pairing.state == "denied":
            raise ApiError("access_denied", "the household admin refused to pair this TV")
        too_early = pairing.last_poll is not None and now - pairing.last_poll < pairing.interval
        pairing.last_poll = now
        if too_early:
            pairing.interval += SLOW_DOWN_S
            raise ApiError(
                "slow_down",
                f"polled too fast: wait {pairing.interval:g} s between polls",
                interval=pairing.interval,
            )
        if pairing.state == "pending":
            raise ApiError(
                "authorization_pending",
                "waiting for the household admin to confirm the code in the phone app",
                interval=pairing.interval,
            )
        pairing.state = "used"
        return pairing

    # -- the household admin's side ------------------------------------------------

    def _pending(self, user_code: str, who: str, ip: str, now: float) -> Pairing:
        for key in (f"user:{who}", f"ip:{ip}"):
            wait = self.wrong_codes.retry_after(key)
            if wait > 0:
                raise ApiError(
                    "too_many_attempts",
                    f"too many wrong TV codes; try again in {int(wait) + 1} s",
                    retry_after_s=round(wait, 1),
                )
        self._prune(now)
        key = self._by_user_code.get(normalize(user_code))
        pairing = self._by_device.get(key) if key is not None else None
        if pairing is None or pairing.state != "pending":
            self.wrong_codes.fail(f"user:{who}")
            self.wrong_codes.fail(f"ip:{ip}")
            raise ApiError(
                "not_found",
                "no TV is showing this code: check the letters on the screen, or press OK on the TV "
                "for a new code",
            )
        return pairing

    def decide(self, user_code: str, *, household_id: str, by: str, ip: str, approve: bool) -> Pairing:
        pairing = self._pending(user_code, by, ip, time.time())
        pairing.state = "approved" if approve else "denied"
        pairing.household_id, pairing.approved_by = household_id, by
        return pairing

    # -- grants for boxes the gateway adopted ---------------------------------------

    def grant(self, household_id: str, by: str = "gateway", now: float | None = None) -> str:
        """A one-time pairing grant for this household's box (valid `GRANT_TTL_S`, single use)."""
        now = time.time() if now is None else now
        self._prune(now)
        secret = users.new_token()
        self._grants[users.digest(secret)] = Grant(
            household_id=household_id, expires=now + GRANT_TTL_S, by=by
        )
        return secret

    def take_grant(self, secret: str, now: float | None = None) -> Grant | None:
        """The grant, used up now; None when unknown, used or expired."""
        now = time.time() if now is None else now
        grant = self._grants.pop(users.digest(secret), None) if 0 < len(secret) <= 200 else None
        return grant if grant is not None and grant.expires > now else None

    def tv_url(self, household_id: str) -> str:
        """The TV portal's address for the household's box, carrying a fresh pairing grant."""
        return f"{self.gateway.portal_url}/tv/?grant={quote(self.grant(household_id))}"

    # -- screen credentials --------------------------------------------------------

    async def async_issue(self, household_id: str, *, name: str, by: str) -> tuple[users.Token, str]:
        """A screen credential for the household (its secret returned once, stored as a digest)."""
        return await self.gateway.store.async_write(
            lambda db: users.create_token(
                db.conn,
                kind=TokenKind.SCREEN,
                user_id=None,
                name=name,
                ttl_s=SCREEN_TTL_S,
                scope={"household": household_id, "paired_by": by},
                csrf=True,
            )
        )

    async def async_list(self, household_id: str) -> list[dict[str, Any]]:
        tokens = await self.gateway.store.async_read(lambda conn: users.list_tokens(conn, TokenKind.SCREEN))
        now = time.time()
        return [screen_view(t) for t in tokens if t.scope.get("household") == household_id and t.live(now)]

    async def async_revoke(self, household_id: str, screen_id: str) -> bool:
        def revoke(db: Any) -> bool:
            row = db.conn.execute(
                "SELECT kind, scope FROM tokens WHERE id = ? AND revoked IS NULL", (screen_id,)
            ).fetchone()
            # Another household's screen answers as a missing one does.
            if row is None or row[0] != TokenKind.SCREEN.value or _scope_household(row[1]) != household_id:
                return False
            return users.revoke_token(db.conn, screen_id)

        return bool(await self.gateway.store.async_write(revoke))


PAIRINGS: Final = web.AppKey("linli_pairings", Pairings)


def _scope_household(scope: str | None) -> str | None:
    value = orjson.loads(scope or "{}").get("household")
    return value if isinstance(value, str) else None


def screen_view(token: users.Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "household_id": token.scope.get("household"),
        "paired_by": token.scope.get("paired_by"),
        "created": token.created,
        "expires": token.expires,
    }


def set_screen_cookie(
    response: web.StreamResponse, request: web.Request, secret: str, csrf: str | None
) -> None:
    """The screen credential as the box's browser keeps it: HttpOnly, SameSite=Strict, a year."""
    cfg = request.app[ACCOUNTS].gateway.config["portal"]
    secure = bool(cfg.get("secure_cookies", False)) or request.secure
    max_age = int(SCREEN_TTL_S)
    response.set_cookie(
        SCREEN_COOKIE, secret, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    # The page sends it back in X-CSRF-Token with each change, as a person's session does.
    response.set_cookie(
        CSRF_COOKIE, csrf or "", max_age=max_age, httponly=False, samesite="Strict", secure=secure, path="/"
    )


async def async_exchange_grant(request: web.Request, secret: str) -> tuple[users.Token, str] | None:
    """`/tv/?grant=…`: the adopted box's one-time grant for a screen credential (audited), or None."""
    pairings = request.app[PAIRINGS]
    grant = pairings.take_grant(secret)
    if grant is None or grant.household_id not in pairings.gateway.registry.households:
        return None
    token, screen_secret = await pairings.async_issue(
        grant.household_id, name="机顶盒 Set-top box", by=grant.by
    )
    await request.app[ACCOUNTS].async_audit(
        grant.by,
        "screen.pair",
        household_id=grant.household_id,
        target=token.id,
        detail={"how": "adopted_box"},
        ip=request.remote,
    )
    return token, screen_secret


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "POST",
    "/api/v1/tv/pairings",
    summary="Start pairing a TV: a device code, the user code to show and its QR code (RFC 8628 §3.2)",
    tag="screens",
    public=True,
)
async def start(call: Call) -> dict[str, Any]:
    device_code, pairing = call.request.app[PAIRINGS].start()
    shown = display(pairing.user_code)
    origin = f"{call.request.scheme}://{call.request.host}"
    complete = f"{origin}/app/pair?code={shown}"
    svg = qr_svg(complete)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": f"{origin}/app/pair",
        "verification_uri_complete": complete,
        "expires_in": int(EXPIRES_S),
        "interval": int(pairing.interval),
        "qr_svg": "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(),
    }


@ROUTES.op(
    "POST",
    "/api/v1/tv/pairings/token",
    summary="Poll a TV pairing; once confirmed, the screen credential as a cookie (RFC 8628 §3.4-3.5)",
    tag="screens",
    public=True,
    body=obj({"device_code": text(200)}, ["device_code"]),
)
async def token(call: Call) -> web.StreamResponse:
    pairings = call.request.app[PAIRINGS]
    pairing = pairings.poll(call.body["device_code"])
    household = pairing.household_id or ""
    if household not in call.gateway.registry.households:
        raise ApiError("access_denied", "the household this TV was paired to is gone; pair it again")
    token, secret = await pairings.async_issue(household, name="电视 TV", by=pairing.approved_by or "?")
    await call.request.app[ACCOUNTS].async_audit(
        pairing.approved_by or "?",
        "screen.pair",
        household_id=household,
        target=token.id,
        detail={"how": "user_code"},
        ip=call.ip,
    )
    response = json_response({"paired": True, "household_id": household, "screen": screen_view(token)})
    set_screen_cookie(response, call.request, secret, token.csrf)
    return response


@ROUTES.op(
    "POST",
    "/api/v1/screens/pair",
    summary="Confirm the code a TV shows: the TV is paired to my household (audited)",
    tag="screens",
    roles=ADMINS,
    body=obj({"user_code": text(20)}, ["user_code"]),
)
async def confirm(call: Call) -> dict[str, Any]:
    p = call.principal
    household = p.household_id or ""
    call.request.app[PAIRINGS].decide(
        call.body["user_code"], household_id=household, by=p.name, ip=call.ip, approve=True
    )
    await call.request.app[ACCOUNTS].async_audit(
        p, "screen.confirm", household_id=household, ip=call.ip, detail={"code": "accepted"}
    )
    return {"confirmed": True, "household_id": household}


@ROUTES.op(
    "POST",
    "/api/v1/screens/pair/deny",
    summary="Refuse the code a TV shows: that TV is not paired (audited)",
    tag="screens",
    roles=ADMINS,
    body=obj({"user_code": text(20)}, ["user_code"]),
)
async def deny(call: Call) -> dict[str, Any]:
    p = call.principal
    call.request.app[PAIRINGS].decide(
        call.body["user_code"], household_id=p.household_id or "", by=p.name, ip=call.ip, approve=False
    )
    await call.request.app[ACCOUNTS].async_audit(p, "screen.deny", household_id=p.household_id, ip=call.ip)
    return {"denied": True}


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/paired-screens",
    summary="List the TVs and boxes paired to the household",
    tag="screens",
    roles=ADMINS,
)
async def list_screens(call: Call) -> dict[str, Any]:
    items = await call.request.app[PAIRINGS].async_list(call.household_id)
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "DELETE",
    "/api/v1/households/{household_id}/paired-screens/{screen_id}",
    summary="Revoke a paired TV: it is signed out at once (audited)",
    tag="screens",
    roles=ADMINS,
)
async def revoke(call: Call) -> dict[str, Any]:
    screen_id = call.path["screen_id"]
    if not await call.request.app[PAIRINGS].async_revoke(call.household_id, screen_id[:64]):
        raise ApiError("not_found", f"no paired screen {screen_id!r} in this household")
    accounts = call.request.app[ACCOUNTS]
    accounts.forget_token(screen_id)
    await accounts.async_audit(
        call.principal, "screen.revoke", household_id=call.household_id, target=screen_id, ip=call.ip
    )
    return {"revoked": True, "id": screen_id}
