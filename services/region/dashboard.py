"""The regional dashboard (aiohttp): overview, per-community drill-down, broadcast composer, delivery reports.

HTML for people (pages.py) and the same data as JSON under /api/v1. One
operator token guards everything: made on the first start and printed once as
a sign-in link, kept (0600) in `<region.data_dir>/dashboard.token`; sent as a
`Bearer` header by programs, or as an HttpOnly, SameSite=Strict cookie set by
the sign-in link. Form posts must also come from the dashboard's own origin.

The dashboard process holds the region's signing key: it signs every
announcement and publishes the region's signed clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import web

from gateway.uplink.signing import Signer
from services.region import pages, queries
from services.region.broadcast import BroadcastError, RegionLink, compose
from services.region.schema import migrate

_LOGGER = logging.getLogger(__name__)
CONFIG_KEY: Final = web.AppKey("config", dict)
TOKEN_KEY: Final = web.AppKey("token", str)
SIGNER_KEY: Final = web.AppKey("signer", Signer)
POOL_KEY: Final = web.AppKey("pool", asyncpg.Pool)
LINK_KEY: Final = web.AppKey("link", RegionLink)
COOKIE: Final = "linli_region"


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # PostgreSQL numeric
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    token = request.app[TOKEN_KEY]
    if request.path == "/login":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    offered = header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    if not offered or not hmac.compare_digest(offered.encode(), token.encode()):
        if request.path.startswith("/api/"):
            return _error(401, "unauthorized", "send the operator token as 'Authorization: Bearer …'")
        return _html("<p>Sign in with the link printed when the dashboard first started.</p>", 401)
    if request.method == "POST" and not header:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return _error(403, "cross_origin", f"form posts must come from this dashboard, not {origin}")
    return await handler(request)


async def _login(request: web.Request) -> web.StreamResponse:
    offered = request.query.get("token", "")
    if not hmac.compare_digest(offered.encode(), request.app[TOKEN_KEY].encode()):
        return _html("<p>That sign-in link is not valid.</p>", 401)
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, offered, httponly=True, samesite="Strict", max_age=30 * 86400)
    raise response


def _region(request: web.Request) -> str:
    return str(request.app[CONFIG_KEY]["region"]["id"])


async def _overview_data(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG_KEY]
    async with request.app[POOL_KEY].acquire() as conn:
        return await queries.overview(conn, _region(request), config["dashboard"]["online_after_s"])


async def _overview(request: web.Request) -> web.Response:
    return _html(pages.overview(await _overview_data(request)))


async def _api_overview(request: web.Request) -> web.Response:
    return _json(await _overview_data(request))


async def _community_data(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL_KEY].acquire() as conn:
        data = await queries.community(conn, _region(request), request.match_info["community"])
    if data is None:
        raise web.HTTPNotFound(text=f"no community {request.match_info['community']!r} in this region")
    return data


async def _community(request: web.Request) -> web.Response:
    return _html(pages.community(_region(request), await _community_data(request)))


async def _api_community(request: web.Request) -> web.Response:
    return _json(await _community_data(request))


async def _announcements(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        items = await queries.announcements(conn, _region(request))
        known = await queries.communities(conn, _region(request))
    return _html(pages.announcements(_region(request), items, known, error), status)


async def _api_announcements(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        return _json({"items": await queries.announcements(conn, _region(request), 100)})


async def _send(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    targets = fields.get("targets")
    if targets in (None, "*", [], ""):
        targets = None
    elif isinstance(targets, str):
        targets = [targets]
    try:
        ttl_s = float(fields.get("ttl_s") or float(fields.get("ttl_min") or 60) * 60)
    except ValueError:
        raise BroadcastError("invalid", "ttl must be a number") from None
    async with request.app[POOL_KEY].acquire() as conn:
        return await compose(
            conn,
            request.app[LINK_KEY],
            kind=str(fields.get("kind", "announcement")),
            title=str(fields.get("title", "")),
            body=str(fields.get("body", "")),
            targets=targets,
            ttl_s=ttl_s,
            by=str(fields.get("by") or "operator"),
        )


async def _post_announcement(request: web.Request) -> web.Response:
    form = await request.post()
    fields: dict[str, Any] = {k: form.get(k) for k in ("kind", "title", "body", "ttl_min")}
    fields["targets"] = [str(t) for t in form.getall("targets", [])]
    try:
        sent = await _send(request, fields)
    except BroadcastError as exc:
        return await _announcements(request, exc.message, 400 if exc.code != "broker_unreachable" else 503)
    raise web.HTTPSeeOther(f"/announcements/{sent['id']}")


async def _api_post_announcement(request: web.Request) -> web.Response:
    try:
        fields = await request.json(loads=orjson.loads)
    except ValueError:
        return _error(400, "invalid", "the body must be a JSON object")
    if not isinstance(fields, dict):
        return _error(400, "invalid", "the body must be a JSON object")
    try:
        sent = await _send(request, fields)
    except BroadcastError as exc:
        return _error(503 if exc.code == "broker_unreachable" else 400, exc.code, exc.message)
    return _json(sent, 201)


async def _report_data(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL_KEY].acquire() as conn:
        data = await queries.delivery_report(conn, request.match_info["id"])
    if data is None:
        raise web.HTTPNotFound(text=f"no announcement {request.match_info['id']!r}")
    return data


async def _report(request: web.Request) -> web.Response:
    return _html(pages.report(_region(request), await _report_data(request)))


async def _api_report(request: web.Request) -> web.Response:
    return _json(await _report_data(request))


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The database pool and the downlink publisher: started and stopped together."""
    config = app[CONFIG_KEY]
    pool = await asyncpg.create_pool(config["database"]["dsn"], min_size=1, max_size=4, timeout=10)
    async with pool.acquire() as conn:
        await migrate(conn, config["region"]["id"])
    link = RegionLink(config, app[SIGNER_KEY])
    task = asyncio.create_task(link.run(), name="region-downlink")
    app[POOL_KEY], app[LINK_KEY] = pool, link
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await pool.close()


def create_app(config: dict[str, Any], token: str, signer: Signer) -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[CONFIG_KEY], app[TOKEN_KEY], app[SIGNER_KEY] = config, token, signer
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/login", _login)
    app.router.add_get("/", _overview)
    app.router.add_get("/communities/{community}", _community)
    app.router.add_get("/announcements", _announcements)
    app.router.add_post("/announcements", _post_announcement)
    app.router.add_get("/announcements/{id}", _report)
    app.router.add_get("/api/v1/overview", _api_overview)
    app.router.add_get("/api/v1/communities/{community}", _api_community)
    app.router.add_get("/api/v1/announcements", _api_announcements)
    app.router.add_post("/api/v1/announcements", _api_post_announcement)
    app.router.add_get("/api/v1/announcements/{id}", _api_report)
    return app


def operator_token(data_dir: Path) -> tuple[str, bool]:
    """The dashboard token; made (and flagged as new) on the first start."""
    path = data_dir / "dashboard.token"
    if path.exists():
        return path.read_text(encoding="ascii").strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token, True


async def run_dashboard(config: dict[str, Any]) -> None:
    """Serve until cancelled."""
    data_dir = Path(config["region"]["data_dir"])
    signer = Signer.from_file(data_dir / "region.key")
    token, new = operator_token(data_dir)
    app = create_app(config, token, signer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = config["dashboard"]["host"], config["dashboard"]["port"]
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        base = f"http://{host}:{port}"
        if new:
            # Printed once, on the terminal only (never logged): the operator's sign-in link.
            print(
                f"\n  Linli regional dashboard: {base}/login?token={token}\n  (shown once; keep it)\n",
                flush=True,
            )
        else:
            print(
                f"\n  Linli regional dashboard: {base}/ (sign-in token in {data_dir / 'dashboard.token'})\n"
            )
        _LOGGER.info(
            "regional dashboard for %s on %s, signing as key %s", config["region"]["id"], base, signer.key_id
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
