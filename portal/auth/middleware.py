"""How a request reaches a handler: one small middleware per job, in this order.

1. `errors` — every refusal and failure on /api/ answers in the one error shape
   (`api/errors.py`); an unexpected exception is logged and answered 500.
2. `proxied_client` — behind a reverse proxy named in `portal.trusted_proxies`,
   the request is seen as the client's own (`forwarded.py`): `request.remote` is
   the client's address — for audit entries and login throttles — and
   `request.secure` true when the client used TLS (cookies are then `Secure`).
3. `who_asks` — the request's `Principal`, from
   * `Authorization: Bearer <token>`: an API token or a provider key;
   * the `linli_session` cookie (HttpOnly, SameSite=Strict): a web page's sign-in;
   * the `linli_screen` cookie: a paired TV's credential (`pairing.py`);
   or nobody. Nobody signed in, from this machine's own browser, reading, where
   `portal.open_local_views` is on (the demo): the request is marked `LOCAL`, which
   only the operations declared `open_locally` accept. Having no account yet opens
   nothing: the first-run setup link (printed on the console) is the way in.
4. `csrf` — a change made with a cookie (a page's session, a TV's credential) must
   carry that credential's CSRF token in `X-CSRF-Token` (the page reads it from the
   `linli_csrf` cookie or /api/v1/auth/me). A bearer token needs none: a browser
   never sends that header across sites by itself.
5. `screens_stay_on_the_tv` — a paired TV may call the few API routes the TV page
   needs (`screens.py`) and nothing else.
6. `undeclared_routes_closed` — each operation authorizes its own calls (roles and
   household reach, from its declaration in `operations.py`); an /api/ route that
   was never declared there is open only to the roles `grants.py` names for it, so a
   new route is closed until someone decides who may use it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Final

from aiohttp import web

from linli.common.forwarded import as_the_client_made_it
from linli.portal.api.errors import ApiError, http_error
from linli.portal.api.operations import LOCAL, PRINCIPAL
from linli.portal.auth.accounts import Accounts, same_secret
from linli.portal.auth.grants import roles_for
from linli.portal.auth.principal import Principal
from linli.portal.auth.screens import SCREEN_COOKIE, screen_may
from linli.portal.auth.screens import VIA as SCREEN_VIA

_LOGGER = logging.getLogger(__name__)
ACCOUNTS: Final = web.AppKey("linli_accounts", Accounts)
SESSION_COOKIE: Final = "linli_session"
CSRF_COOKIE: Final = "linli_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_LOCAL_VIEWS: Final = web.AppKey("linli_open_local_views", bool)
#: Routes that authorize each call themselves: the declared operations, the WebSocket, the docs.
SELF_GUARDED: Final = web.AppKey("linli_self_guarded", frozenset)
PAGES_FOR_MEMBERS: Final = "/app"
#: Credentials a browser sends by itself (cookies): a change made with one needs the CSRF token.
_COOKIE_BORNE: Final = frozenset({"session", SCREEN_VIA})
_UNAUTHENTICATED: Final = "sign in first (a session cookie or an Authorization: Bearer token)"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _loopback(request: web.Request) -> bool:
    try:
        return ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _template(request: web.Request) -> str | None:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else None


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal on /api/ in the one error shape; a page's redirects and errors pass as they are."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not _is_api(request) or exc.status < 400:
            raise
        return http_error(exc, request).response()
    except Exception:
        if not _is_api(request):
            raise
        _LOGGER.exception("%s %s failed", request.method, request.path)
        return ApiError("internal", "the gateway failed on this request; it is logged, try again").response()


@web.middleware
async def proxied_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Behind a trusted reverse proxy, the request as the client made it (address, TLS)."""
    return await handler(as_the_client_made_it(request.app[ACCOUNTS].proxies, request))


async def _bearer(accounts: Accounts, header: str) -> Principal:
    """The API token's or provider key's principal; a cookie's secret in this header is refused."""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError("invalid_token", "use Authorization: Bearer <token>")
    principal = await accounts.async_resolve(secret.strip())
    if principal is None or principal.via in _COOKIE_BORNE:
        raise ApiError("invalid_token", "this token is unknown, expired or revoked; ask for a new one")
    return principal


async def _cookie(accounts: Accounts, request: web.Request) -> Principal | None:
    """A page's session, else a paired TV's credential; a stale or misplaced cookie is nobody."""
    for name, via in ((SESSION_COOKIE, "session"), (SCREEN_COOKIE, SCREEN_VIA)):
        secret = request.cookies.get(name)
        principal = await accounts.async_resolve(secret) if secret else None
        if principal is not None and principal.via == via:
            return principal
    return None


@web.middleware
async def who_asks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`request[PRINCIPAL]`: who signed in (bearer token, session cookie, TV credential), or None."""
    accounts = request.app[ACCOUNTS]
    header = request.headers.get("Authorization")
    principal = await _bearer(accounts, header) if header else await _cookie(accounts, request)
    request[PRINCIPAL] = principal
    if (
        principal is None
        and request.app[OPEN_LOCAL_VIEWS]
        and request.method in SAFE_METHODS
        and _loopback(request)
    ):
        request[LOCAL] = True
    return await handler(request)


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A change made with a cookie carries the cookie's CSRF token (a bearer token needs none)."""
    principal: Principal | None = request[PRINCIPAL]
    if (
        principal is not None
        and principal.via in _COOKIE_BORNE
        and request.method not in SAFE_METHODS
        and not same_secret(request.headers.get(CSRF_HEADER), principal.csrf)
    ):
        raise ApiError(
            "csrf_failed",
            f"this change needs the {CSRF_HEADER} header of your session (reload the page and try again)",
        )
    return await handler(request)


@web.middleware
async def screens_stay_on_the_tv(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A paired TV sees what the TV shows and nothing else (portal/auth/screens.py)."""
    principal: Principal | None = request[PRINCIPAL]
    if principal is not None and principal.via == SCREEN_VIA and _is_api(request):
        template = _template(request)
        if not screen_may(request.method, template):
            raise ApiError(
                "forbidden", f"a paired TV may not use {request.method} {template or request.path}"
            )
    return await handler(request)


@web.middleware
async def undeclared_routes_closed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An /api/ route no declaration guards: only for the roles `grants.py` names for it."""
    template = _template(request)
    if template is not None and template.startswith("/api/") and template not in request.app[SELF_GUARDED]:
        principal: Principal | None = request[PRINCIPAL]
        if principal is None:
            raise ApiError("unauthenticated", _UNAUTHENTICATED)
        if principal.role not in roles_for(request.method, template):
            raise ApiError("forbidden", f"a {principal.role.value} may not use {request.method} {template}")
    return await handler(request)


#: The portal's middlewares, outermost first.
MIDDLEWARES: Final = (
    errors,
    proxied_client,
    who_asks,
    csrf,
    screens_stay_on_the_tv,
    undeclared_routes_closed,
)
