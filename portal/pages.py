"""The web pages: sign-in and first-run setup, the phone app, the TV, the manager's console, the API docs.

Plain HTML, CSS and JavaScript modules (no build step) under `static/`. A page
is only a shell: everything it shows comes from the API, which checks the
caller again, so a page never decides what someone may see. Each page is
declared once, at module level, in `PAGES` (aiohttp's route table); pages are
not API operations, so the OpenAPI document does not list them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import quote

from aiohttp import web

from linli.gateway.users import Role
from linli.portal.api.operations import LOCAL, PRINCIPAL
from linli.portal.auth.pairing import async_exchange_grant, set_screen_cookie
from linli.portal.auth.principal import COMMUNITY_ROLES, Principal

STATIC: Final = Path(__file__).resolve().parent / "static"
#: Every page, declared where its handler is; `assembly.py` adds the table to the app.
PAGES: Final = web.RouteTableDef()
_NO_STORE: Final = {"Cache-Control": "no-store"}
# Pages get a strict policy: scripts and styles only from the portal itself.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(
        STATIC / name,
        headers={**_NO_STORE, "Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"},
    )


def _signed_in(request: web.Request, *, keep_query: bool = False) -> Principal:
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:
        back = request.path_qs if keep_query else request.path
        raise web.HTTPFound(f"/login?next={quote(back, safe='/')}")
    return principal


def _home_of(principal: Principal) -> str:
    if principal.role in COMMUNITY_ROLES:
        return "/manage"
    return "/app"


@PAGES.get("/")
async def community(request: web.Request) -> web.StreamResponse:
    """The community at a glance (the first portal's page); signed in, or the demo's open local view."""
    if request.get(PRINCIPAL) is None and not request.get(LOCAL):
        raise web.HTTPFound("/login?next=/")
    return web.FileResponse(STATIC / "index.html")


@PAGES.get("/login")
async def login(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


@PAGES.get("/setup")
async def setup(request: web.Request) -> web.StreamResponse:
    return _page("setup.html")


@PAGES.get("/app")
@PAGES.get("/app/")
async def phone(request: web.Request) -> web.StreamResponse:
    principal = _signed_in(request)
    if principal.role in COMMUNITY_ROLES:
        raise web.HTTPFound("/manage")
    return _page("app/index.html")


@PAGES.get("/app/pair")
async def phone_pair(request: web.Request) -> web.StreamResponse:
    """`/app/pair?code=…`: where a TV's QR code leads — the phone app, with the code to confirm."""
    principal = _signed_in(request, keep_query=True)
    if principal.role in COMMUNITY_ROLES:
        raise web.HTTPFound("/manage")
    return _page("app/index.html")


@PAGES.get("/tv")
@PAGES.get("/tv/")
async def tv(request: web.Request) -> web.StreamResponse:
    """The TV page: signed in (a paired screen, or a resident's own session), or showing a pairing code.

    `?grant=…` is the one-time pairing grant the gateway sends a box it adopted: exchanged here
    for the screen credential, then the box is sent on to `/tv/` so the grant leaves no trace in
    its address bar or history. A used or expired grant simply shows the pairing code.
    """
    grant = request.query.get("grant")
    if grant:
        issued = await async_exchange_grant(request, grant)
        response = web.HTTPFound("/tv/")
        response.headers.update(_NO_STORE)
        if issued is not None:
            token, secret = issued
            set_screen_cookie(response, request, secret, token.csrf)
        raise response
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is not None and principal.role not in (Role.RESIDENT, Role.HOUSEHOLD_ADMIN):
        raise web.HTTPFound(_home_of(principal))
    return _page("tv/index.html")


@PAGES.get("/manage")
@PAGES.get("/manage/")
async def manage(request: web.Request) -> web.StreamResponse:
    principal = _signed_in(request)
    if principal.role not in COMMUNITY_ROLES:
        raise web.HTTPFound(_home_of(principal))
    return _page("manage/index.html")


@PAGES.get("/api/docs")
async def docs(request: web.Request) -> web.StreamResponse:
    return _page("docs.html")


@PAGES.get("/app/manifest.webmanifest")
async def manifest(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "app" / "manifest.webmanifest", headers={"Content-Type": "application/manifest+json"}
    )


@PAGES.get("/app/sw.js")
async def service_worker(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "app" / "sw.js",
        headers={"Content-Type": "text/javascript", "Service-Worker-Allowed": "/app", **_NO_STORE},
    )


@PAGES.get("/favicon.ico")
async def favicon(request: web.Request) -> web.StreamResponse:
    # Browsers ask for /favicon.ico on every page whatever the <link rel="icon"> says: the app icon answers.
    return web.FileResponse(
        STATIC / "app" / "icon.svg",
        headers={"Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"},
    )


@PAGES.get("/screens/overlay")
async def tv_overlay(request: web.Request) -> web.StreamResponse:
    """`/screens/overlay?text=…&title=…&level=…`: what a web-overlay box shows over the picture.

    One static page for every message: its script reads the query and sets it as text, so
    nothing a message says is ever built into HTML here. Boxes load it without a sign-in
    (the message is in the address the gateway gave them).
    """
    return _page("screens/overlay.html")
