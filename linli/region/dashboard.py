"""The regional dashboard (aiohttp): overview, per-community drill-down, broadcast composer, delivery reports.

HTML for people (pages.py) and the same data as JSON under /api/v1. Every
request is an operator's (operators.py): a browser signs in at /login with
the operator's name and password and gets a session cookie (HttpOnly,
SameSite=Strict), and every form it posts carries the session's CSRF token and
comes from the dashboard's own origin; a script sends the operator's own API
token as `Authorization: Bearer …`. Sign-ins and broadcasts land in the audit
log (/audit), under the operator's name.

The dashboard process holds the region's signing key: it signs every
announcement and publishes the region's signed clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import web

from linli.common.forwarded import TrustedProxies, as_the_client_made_it
from linli.common.throttle import AddressThrottle, Lockouts
from linli.region import operators, pages, queries
from linli.region.broadcast import BroadcastError, RegionLink, compose
from linli.region.operators import Operator, OperatorError
from linli.region.schema import maintain, migrate
from linli.wire.signing import Signer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LOGGER = logging.getLogger(__name__)
CONFIG_KEY: Final = web.AppKey("config", dict)
OPERATOR: Final = web.RequestKey("operator", Operator) if hasattr(web, "RequestKey") else "linli.operator"
SIGNER_KEY: Final = web.AppKey("signer", Signer)
POOL_KEY: Final = web.AppKey("pool", asyncpg.Pool)
LINK_KEY: Final = web.AppKey("link", RegionLink)
THROTTLE_KEY: Final = web.AppKey("throttle", AddressThrottle)
UNKNOWN_NAMES_KEY: Final = web.AppKey("unknown_names", Lockouts)
COOKIE: Final = "linli_region_session"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
PUBLIC: Final = frozenset({"/login"})


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


async def _operator(request: web.Request) -> Operator | None:
    header = request.headers.get("Authorization", "")
    async with request.app[POOL_KEY].acquire() as conn:
        if header:
            scheme, _, token = header.partition(" ")
            return await operators.from_token(conn, token.strip()) if scheme.lower() == "bearer" else None
        return await operators.from_session(conn, request.cookies.get(COOKIE, ""))


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    if request.path in PUBLIC:
        return await handler(request)
    operator = await _operator(request)
    if operator is None:
        if request.path.startswith("/api/") or "Authorization" in request.headers:
            return _error(401, "unauthorized", "send your operator API token as 'Authorization: Bearer …'")
        raise web.HTTPSeeOther("/login")
    if request.method == "POST" and operator.via == "session":
        if not _same_origin(request):
            return _error(
                403,
                "cross_origin",
                f"form posts must come from this dashboard, not {request.headers['Origin']}",
            )
        offered = request.headers.get(CSRF_HEADER)
        if offered is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            offered = str((await request.post()).get(CSRF_FIELD, ""))  # the body stays readable
        if not operator.csrf_ok(offered):
            return _error(
                403, "csrf_failed", "this form is stale or not from this dashboard: reload the page"
            )
    request[OPERATOR] = operator
    return await handler(request)


def _who(request: web.Request) -> pages.Who:
    operator = request[OPERATOR]
    return pages.Who(name=operator.name, csrf=operator.csrf or "")


async def _login_page(request: web.Request) -> web.Response:
    return _html(pages.login(_region(request)))


async def _login(request: web.Request) -> web.StreamResponse:
    region = _region(request)
    if not _same_origin(request):
        return _html(pages.login(region, "Sign in from this dashboard's own page."), 403)
    form = await request.post()
    name, password = str(form.get("name", "")).strip()[:64], str(form.get("password", ""))
    # Per address, but never the whole address: an operator who signed in from here before is
    # not held back by someone else's guessing, and a new name is slowed, not refused.
    throttle, address = request.app[THROTTLE_KEY], request.remote or "?"
    verdict = throttle.check(address, name)
    if not verdict.allowed:
        why = {
            "name": "Too many failed sign-ins with this name from your address",
            "address": "Too many failed sign-ins from your address",
            "paced": "Many failed sign-ins come from your address, so sign-ins from it are slowed",
        }[verdict.reason]
        return _html(pages.login(region, f"{why}: try again in {int(verdict.wait_s) + 1} s."), 429)
    try:
        async with request.app[POOL_KEY].acquire() as conn:
            secret, _ = await operators.sign_in(
                conn, region, name, password, request.remote, unknown_names=request.app[UNKNOWN_NAMES_KEY]
            )
    except OperatorError as exc:
        if exc.code != "locked":  # a locked account's refusal tells nothing: not a guess
            throttle.fail(address, name)
        return _html(pages.login(region, exc.message), 429 if exc.code == "locked" else 401)
    throttle.succeed(address, name)
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="Strict",
        secure=request.secure,  # TLS here or at a trusted proxy: the cookie never goes out in clear
        max_age=operators.SESSION_TTL_S,
        path="/",
    )
    raise response


async def _logout(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL_KEY].acquire() as conn:
        await operators.sign_out(conn, _region(request), request.cookies.get(COOKIE, ""), request.remote)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _region(request: web.Request) -> str:
    return str(request.app[CONFIG_KEY]["region"]["id"])


async def _overview_data(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG_KEY]
    async with request.app[POOL_KEY].acquire() as conn:
        return await queries.overview(conn, _region(request), config["dashboard"]["online_after_s"])


async def _overview(request: web.Request) -> web.Response:
    return _html(pages.overview(await _overview_data(request), _who(request)))


async def _api_overview(request: web.Request) -> web.Response:
    return _json(await _overview_data(request))


async def _community_data(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL_KEY].acquire() as conn:
        data = await queries.community(conn, _region(request), request.match_info["community"])
    if data is None:
        raise web.HTTPNotFound(text=f"no community {request.match_info['community']!r} in this region")
    return data


async def _community(request: web.Request) -> web.Response:
    return _html(pages.community(_region(request), await _community_data(request), _who(request)))


async def _api_community(request: web.Request) -> web.Response:
    return _json(await _community_data(request))


async def _announcements(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        items = await queries.announcements(conn, _region(request))
        known = await queries.communities(conn, _region(request))
    return _html(pages.announcements(_region(request), items, known, _who(request), error), status)


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
    operator = request[OPERATOR].name  # who sends it is who signed in, whatever the body says
    kind = str(fields.get("kind", "announcement"))
    async with request.app[POOL_KEY].acquire() as conn:
        try:
            # The announcement and its audit row commit together, and only once it is published.
            async with conn.transaction():
                sent = await compose(
                    conn,
                    request.app[LINK_KEY],
                    kind=kind,
                    title=str(fields.get("title", "")),
                    body=str(fields.get("body", "")),
                    targets=targets,
                    ttl_s=ttl_s,
                    by=operator,
                )
                await operators.audit(
                    conn,
                    _region(request),
                    operator,
                    f"broadcast.{sent['kind']}",
                    target=sent["id"],
                    ip=request.remote,
                    detail={
                        "title": sent["title"],
                        "targets": sent["targets"],
                        "expires_at": sent["expires_at"],
                    },
                )
        except BroadcastError as exc:
            await operators.audit(
                conn,
                _region(request),
                operator,
                f"broadcast.{kind if kind in ('announcement', 'emergency') else 'invalid'}",
                outcome=exc.code,
                ip=request.remote,
                detail={"reason": exc.message[:300]},
            )
            raise
    return sent


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
    return _html(pages.report(_region(request), await _report_data(request), _who(request)))


async def _api_report(request: web.Request) -> web.Response:
    return _json(await _report_data(request))


async def _audit(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        items = await operators.audit_log(conn, _region(request))
    return _html(pages.audit(_region(request), items, _who(request)))


async def _api_audit(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        return _json({"items": await operators.audit_log(conn, _region(request))})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The database pool and the downlink publisher: started and stopped together."""
    config = app[CONFIG_KEY]
    pool = await asyncpg.create_pool(config["database"]["dsn"], min_size=1, max_size=4, timeout=10)
    async with pool.acquire() as conn:
        await migrate(conn, config["region"]["id"])
    link = RegionLink(config, app[SIGNER_KEY])
    tasks = [
        asyncio.create_task(link.run(), name="region-downlink"),
        asyncio.create_task(_maintenance(config, pool), name="region-maintenance"),
    ]
    app[POOL_KEY], app[LINK_KEY] = pool, link
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await pool.close()


async def _maintenance(config: dict[str, Any], pool: asyncpg.Pool) -> None:
    """Each kind's retention from the config, and pg_partman's maintenance, every interval.

    The dashboard holds the config, so it is the one that applies [retention]; consumers run
    the same maintenance (with the retention last set) when they check their partitions.
    """
    region, retention = config["region"]["id"], config["retention"]
    while True:
        try:
            async with pool.acquire() as conn:
                await maintain(conn, region, retention)
        except (OSError, asyncpg.PostgresError) as exc:
            _LOGGER.warning(
                "region %s: partition maintenance failed (%s); trying again next interval", region, exc
            )
        await asyncio.sleep(retention["maintenance_interval_s"])


def create_app(config: dict[str, Any], signer: Signer) -> web.Application:
    proxies = TrustedProxies(config["dashboard"]["trusted_proxies"], "dashboard.trusted_proxies")

    @web.middleware
    async def proxied_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Behind a trusted reverse proxy the throttle, the audit log and the cookie see the operator's
        # own address and scheme, not the proxy's (linli/common/forwarded.py).
        return await handler(as_the_client_made_it(proxies, request))

    app = web.Application(middlewares=[proxied_client, _auth])
    app[CONFIG_KEY], app[SIGNER_KEY] = config, signer
    app[THROTTLE_KEY], app[UNKNOWN_NAMES_KEY] = AddressThrottle(), Lockouts()
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/login", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/", _overview)
    app.router.add_get("/communities/{community}", _community)
    app.router.add_get("/announcements", _announcements)
    app.router.add_post("/announcements", _post_announcement)
    app.router.add_get("/announcements/{id}", _report)
    app.router.add_get("/audit", _audit)
    app.router.add_get("/api/v1/overview", _api_overview)
    app.router.add_get("/api/v1/communities/{community}", _api_community)
    app.router.add_get("/api/v1/announcements", _api_announcements)
    app.router.add_post("/api/v1/announcements", _api_post_announcement)
    app.router.add_get("/api/v1/announcements/{id}", _api_report)
    app.router.add_get("/api/v1/audit", _api_audit)
    return app


async def run_dashboard(config: dict[str, Any]) -> None:
    """Serve until cancelled."""
    data_dir = Path(config["region"]["data_dir"])
    signer = Signer.from_file(data_dir / "region.key")
    app = create_app(config, signer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = config["dashboard"]["host"], config["dashboard"]["port"]
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        base = f"http://{host}:{port}"
        async with app[POOL_KEY].acquire() as conn:
            accounts = await operators.count(conn)
        print(f"\n  Linli regional dashboard: {base}/\n", flush=True)
        if not accounts:
            print(
                "  No operator can sign in yet: create one with `linli region operator add NAME`\n"
                "  (it prints the operator's password and API token once).\n",
                flush=True,
            )
        _LOGGER.info(
            "regional dashboard for %s on %s, signing as key %s", config["region"]["id"], base, signer.key_id
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
