"""Sign in, sign out, first-run setup, and the signed-in user's own settings."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from linli.gateway import __version__, users
from linli.gateway.users import Role, UserError
from linli.portal.api.errors import ApiError, json_response
from linli.portal.api.operations import Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS, CSRF_COOKIE, SESSION_COOKIE
from linli.portal.auth.principal import EVERYONE, Principal

LOCALES = ["zh-CN", "en"]
STAFF = frozenset({Role.MANAGER, Role.INSTALLER})


def _secure(call: Call) -> bool:
    """`Secure` cookies when the client uses TLS (here or at a trusted proxy), or when configured."""
    return call.request.secure or bool(call.gateway.config["portal"].get("secure_cookies", False))


def _signed_in(call: Call, principal: Principal, secret: str, status: int = 200) -> web.Response:
    max_age = int(call.request.app[ACCOUNTS].session_ttl_s)
    secure = _secure(call)
    response = json_response({"user": principal.as_dict(), "csrf_token": principal.csrf}, status)
    response.set_cookie(
        SESSION_COOKIE, secret, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    response.set_cookie(
        CSRF_COOKIE,
        principal.csrf or "",
        max_age=max_age,
        httponly=False,
        samesite="Strict",
        secure=secure,
        path="/",
    )
    return response


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "POST",
    "/api/v1/auth/login",
    summary="Sign in with a user name and password (sets the session cookie)",
    tag="auth",
    public=True,
    body=obj({"name": text(64), "password": text(256)}, ["name", "password"]),
)
async def login(call: Call) -> web.Response:
    accounts = call.request.app[ACCOUNTS]
    principal, secret = await accounts.async_login(call.body["name"], call.body["password"], call.ip)
    return _signed_in(call, principal, secret)


@ROUTES.op("POST", "/api/v1/auth/logout", summary="Sign out (ends this session)", tag="auth")
async def logout(call: Call) -> web.Response:
    await call.request.app[ACCOUNTS].async_logout(call.principal, call.ip)
    response = json_response({"signed_out": True})
    secure = _secure(call)
    response.del_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="Strict")
    response.del_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="Strict")
    return response


@ROUTES.op(
    "POST",
    "/api/v1/auth/setup",
    summary="Create the first manager with the one-time setup link's token",
    tag="auth",
    public=True,
    status=201,
    body=obj(
        {"token": text(200), "name": text(64), "password": text(256, 10), "display_name": text(64)},
        ["token", "name", "password"],
    ),
)
async def setup(call: Call) -> web.Response:
    accounts = call.request.app[ACCOUNTS]
    b = call.body
    try:
        principal, secret = await accounts.async_complete_setup(
            b["token"], b["name"], b["password"], b.get("display_name"), call.ip
        )
    except UserError as exc:
        raise ApiError(exc.code, exc.message, status=401 if exc.code == "invalid_token" else 400) from None
    return _signed_in(call, principal, secret, 201)


@ROUTES.op(
    "GET",
    "/api/v1/auth/me",
    summary="Who is signed in (and, for the community's staff, the gateway's running version)",
    tag="auth",
)
async def me(call: Call) -> dict[str, Any]:
    answer: dict[str, Any] = {"user": call.principal.as_dict(), "csrf_token": call.principal.csrf}
    if call.principal.role in STAFF:
        # Who keeps the gateway up to date sees what runs (docs/updating.md); residents need not.
        answer["gateway"] = {"version": __version__, "id": call.gateway.gateway_id}
    return answer


@ROUTES.op(
    "PATCH",
    "/api/v1/auth/me",
    summary="Change my language or display name",
    tag="auth",
    body=obj({"locale": {"enum": LOCALES}, "display_name": text(64)}),
)
async def update_me(call: Call) -> dict[str, Any]:
    p = call.principal
    locale = call.body.get("locale")
    display = call.body.get("display_name")

    def write(db: Any) -> None:
        if locale:
            users.set_locale(db.conn, p.user_id, locale)
        if display:
            db.conn.execute("UPDATE users SET display_name = ? WHERE id = ?", (display, p.user_id))

    await call.gateway.store.async_write(write)
    # the language or name shown: the cache forgets, open screens stay connected
    call.request.app[ACCOUNTS].forget_user(p.user_id, sockets=False)
    return {"locale": locale or p.locale, "display_name": display or p.display_name}


@ROUTES.op(
    "POST",
    "/api/v1/auth/password",
    summary="Change my password",
    tag="auth",
    roles=EVERYONE - {Role.PROVIDER},  # a provider signs in with keys only: it has no password
    body=obj({"current": text(256), "new": text(256, 10)}, ["current", "new"]),
)
async def password(call: Call) -> dict[str, Any]:
    try:
        await call.request.app[ACCOUNTS].async_change_password(
            call.principal, call.body["current"], call.body["new"]
        )
    except UserError as exc:
        raise ApiError(exc.code, exc.message) from None
    return {"changed": True}
