"""The one place a request gets its `Principal`, and its errors their JSON shape.

* `Authorization: Bearer <token>`: an API token or a provider key (no CSRF:
  a browser never sends this header across sites by itself).
* The `linli_session` cookie (HttpOnly, SameSite=Strict): a web page's login;
  every unsafe method must carry the session's CSRF token in `X-CSRF-Token`
  (the page reads it from the `linli_csrf` cookie or /api/v1/auth/me).
* Behind a reverse proxy named in `portal.trusted_proxies`, the request is
  seen as the client's own (`forwarded.py`): `request.remote` is the client's
  address — for audit entries and login throttles — and `request.secure` true
  when the client used TLS (cookies are then `Secure`).
* Nobody: only public routes (sign-in, the first-run setup, the docs) — and,
  for this machine's own browser where `portal.open_local_views` is on (the
  demo), the legacy read-only community views, without any health value.
  Having no account yet opens nothing else.

Routes other modules serve (the inbox, screens, adapters, the first
portal's views) are refused to roles `grants.py` does not name for them;
their actor is the signed-in principal (`request[PRINCIPAL]`; no header or
body names it), and each inbox decision is audited.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any, Final

from aiohttp import web
from multidict import CIMultiDict

from linli.portal.api.errors import ApiError
from linli.portal.api.operations import GATEWAY, PRINCIPAL
from linli.portal.auth.accounts import Accounts, same_secret
from linli.portal.auth.grants import roles_for
from linli.portal.auth.principal import Principal, reaches
from linli.portal.auth.screens import SCREEN_COOKIE, screen_may
from linli.portal.auth.screens import VIA as SCREEN_VIA

_LOGGER = logging.getLogger(__name__)
ACCOUNTS: Final = web.AppKey("linli_accounts", Accounts)
SESSION_COOKIE: Final = "linli_session"
CSRF_COOKIE: Final = "linli_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_LOCAL_VIEWS: Final = web.AppKey("linli_open_local_views", bool)
#: Routes that authorize each call themselves (the portal's own API, pages, the WebSocket).
SELF_GUARDED: Final = web.AppKey("linli_self_guarded", frozenset)
LOCAL: Final[Any] = web.RequestKey("linli_local", bool) if hasattr(web, "RequestKey") else "linli.local"

#: The read-only views of the first portal (before accounts existed).
LEGACY_VIEWS: Final = frozenset(
    {"/", "/api/v1/status", "/api/v1/households", "/api/v1/households/{household_id}/devices"}
)
_INBOX: Final = re.compile(r"^/api/v1/inbox(/|$)")
_INBOX_DECISION: Final = re.compile(r"^/api/v1/inbox/([^/]+)/(approve|reject|ignore|restore)$")
PAGES_FOR_MEMBERS: Final = "/app"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _loopback(request: web.Request) -> bool:
    try:
        return ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _template(request: web.Request) -> str | None:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else None


async def _principal(request: web.Request, accounts: Accounts) -> Principal | None:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError("invalid_token", "use Authorization: Bearer <token>")
        principal = await accounts.async_resolve(secret.strip())
        if principal is None or principal.via in ("session", SCREEN_VIA):
            raise ApiError("invalid_token", "this token is unknown, expired or revoked; ask for a new one")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await accounts.async_resolve(cookie) if cookie else None
    if principal is not None and principal.via != "session":
        principal = None  # a stale cookie: treated as signed out
    screen = request.cookies.get(SCREEN_COOKIE)
    if principal is None and screen:  # a paired TV's credential (portal/auth/pairing.py)
        principal = await accounts.async_resolve(screen)
        if principal is not None and principal.via != SCREEN_VIA:
            principal = None
    if principal is None:
        return None
    if request.method not in SAFE_METHODS and not same_secret(
        request.headers.get(CSRF_HEADER), principal.csrf
    ):
        raise ApiError(
            "csrf_failed",
            f"this change needs the {CSRF_HEADER} header of your session (reload the page and try again)",
        )
    return principal


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    is_api = request.path.startswith("/api/")
    if accounts.proxies:
        client = accounts.proxies.client(request)
        if client.via_proxy:
            request = request.clone(remote=client.address or "?", scheme="https" if client.secure else "http")
    try:
        principal = await _principal(request, accounts)
        request[PRINCIPAL] = principal
        template = _template(request)
        if (
            principal is not None
            and principal.via == SCREEN_VIA
            and is_api
            and not screen_may(request.method, template)
        ):
            # A paired TV sees what the TV shows and nothing else (portal/auth/screens.py).
            what = f"{request.method} {template or request.path}"
            raise ApiError("forbidden", f"a paired TV may not use {what}")
        inbox = bool(_INBOX.match(request.path))
        # Other modules' API routes (and the first portal's views) are guarded here: a caller
        # must be signed in, and a household in the path must be within their reach.
        guarded = (
            template is not None
            and (template.startswith("/api/") or template in LEGACY_VIEWS)
            and template not in request.app[SELF_GUARDED]
        )
        if principal is None and guarded:
            # Only the demo's read-only views, only on this machine, only where configured —
            # never merely because no account exists yet: before the first one, the setup link
            # (printed on the console) is the way in, and everything else stays closed.
            open_locally = (
                request.app[OPEN_LOCAL_VIEWS]
                and request.method in SAFE_METHODS
                and template in LEGACY_VIEWS
                and _loopback(request)
            )
            if open_locally:
                request[LOCAL] = True
            elif template == "/":
                raise web.HTTPFound("/login?next=/")
            else:
                raise ApiError(
                    "unauthenticated", "sign in first (a session cookie or an Authorization: Bearer token)"
                )
        if guarded and principal is not None and "household_id" in request.match_info:
            household = request.match_info["household_id"]
            if not reaches(principal, request.app[GATEWAY], household):
                raise ApiError("not_found", f"no household {household!r}, or it is not yours to see")
        if guarded and principal is not None:
            if principal.role not in roles_for(request.method, template or ""):
                raise ApiError(
                    "forbidden", f"a {principal.role.value} may not use {request.method} {template}"
                )
        if guarded and (principal is not None or "X-Linli-User" in request.headers):
            # The inbox takes its actor from the principal; the screens routes still read this
            # header, so it carries who signed in, never what the request claims.
            headers = CIMultiDict(request.headers)
            headers.popall("X-Linli-User", None)
            if principal is not None:
                headers["X-Linli-User"] = principal.name
            request = request.clone(headers=headers)
        response = await handler(request)
        if inbox and principal is not None and response.status == 200:
            decision = _INBOX_DECISION.match(request.path)
            if decision is not None:
                await accounts.async_audit(
                    principal,
                    f"device.{decision.group(2)}",
                    target=decision.group(1),
                    ip=request.remote,
                )
        return response
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not is_api or exc.status < 400:
            raise
        code = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return ApiError(
            code.get(exc.status, "bad_request"),
            {
                404: f"no route {request.method} {request.path}; see /api/v1/openapi.json",
                405: f"{request.method} is not allowed on {request.path}; see /api/v1/openapi.json",
            }.get(exc.status, exc.reason),
            status=exc.status,
        ).response()
    except Exception:
        if not is_api:
            raise
        _LOGGER.exception("%s %s failed", request.method, request.path)
        return ApiError("internal", "the gateway failed on this request; it is logged, try again").response()
