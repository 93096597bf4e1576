"""Wires the portal into the aiohttp app: auth, the REST API, live events, pages.

`install(app, gateway)` is all `create_app` needs to call. Every API route is an
operation some module declares at module level (`ROUTES`, `operations.py`); the
one table here takes them all in, serves them and documents them. Start and
stop of what runs in the background (the WebSocket hub and its `ws` delivery
channel, the announcement scheduler) live together in one `cleanup_ctx` generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from linli.gateway.component import ComponentApi
from linli.gateway.events import GatewayStarted
from linli.portal import adapters_api, inbox_api, pages, screens_api
from linli.portal.api import (
    alarm,
    alert_cancel,
    alerts,
    announcements,
    audit,
    care,
    cast,
    community,
    health,
    local_views,
    mqtt_clients,
    privacy,
    providers,
    structure,
)
from linli.portal.api.announcements import ANNOUNCEMENTS, Announcement, Announcements
from linli.portal.api.errors import json_response
from linli.portal.api.openapi import build, document_other_routes
from linli.portal.api.operations import GATEWAY, Api
from linli.portal.auth import pairing
from linli.portal.auth import routes as auth_routes
from linli.portal.auth.accounts import Accounts
from linli.portal.auth.middleware import ACCOUNTS, MIDDLEWARES, OPEN_LOCAL_VIEWS, SELF_GUARDED
from linli.portal.live import Hub, WsChannel
from linli.portal.live.socket import HUB, websocket
from linli.services.screens import SCREENS

API: Final = web.AppKey("linli_api", Api)


def make_api() -> Api:
    """The portal's one table of operations, in the order they are matched and documented."""
    api = Api()
    for module in (
        local_views,
        inbox_api,
        auth_routes,
        community,
        structure,
        alerts,
        alert_cancel,
        alarm,
        health,
        care,
        announcements,
        audit,
        privacy,
        providers,
        mqtt_clients,
        cast,
        pairing,
        adapters_api,
        screens_api,
    ):
        api.include(module.ROUTES)
    document_other_routes(api)
    return api


async def _openapi(request: web.Request) -> web.Response:
    routes = [
        (route.method, route.resource.canonical, route.handler)
        for route in request.app.router.routes()
        if route.resource is not None
    ]
    return json_response(build(request.app[API], routes=routes))


def install(app: web.Application, gateway: ComponentApi) -> None:
    app.middlewares.extend(MIDDLEWARES)
    app[GATEWAY] = gateway
    app[ACCOUNTS] = Accounts(gateway)
    app[OPEN_LOCAL_VIEWS] = bool(gateway.config["portal"].get("open_local_views", False))
    app[HUB] = Hub(gateway)
    # A revoked session, a disabled account, a changed password: its open sockets close at once.
    app[ACCOUNTS].close_sockets = app[HUB].close_where
    app[ANNOUNCEMENTS] = Announcements(gateway)
    app[pairing.PAIRINGS] = pairing.Pairings(gateway)
    api = app[API] = make_api()
    api.register(app)
    app.router.add_get("/api/v1/openapi.json", _openapi)
    app.router.add_get("/api/v1/ws", websocket)
    app[SELF_GUARDED] = frozenset(
        {op.path for op in api.operations if op.handler is not None}
        | {"/api/v1/openapi.json", "/api/v1/ws", "/api/docs"}
    )
    app.add_routes(pages.PAGES)
    app.cleanup_ctx.append(_live)


async def _live(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY]
    await app[ACCOUNTS].async_load()
    hub = app[HUB]
    hub.start()
    channel = WsChannel(hub)
    gateway.notifier.register(channel)
    book = app[ANNOUNCEMENTS]
    book.on_start.append(lambda item: hub.announce(item.as_dict(), book.households_of(item)))

    def link_screens(_started: GatewayStarted | None = None) -> None:
        screens = gateway.peer(SCREENS)
        if screens is not None:
            # The box opens /tv already paired (a one-time grant), and shows announcements calmly.
            screens.tv_link = app[pairing.PAIRINGS].tv_url

    def announce_on_tvs(item: Announcement) -> None:
        screens = gateway.peer(SCREENS)
        if screens is not None:
            gateway.spawn(
                screens.async_announce(item.as_dict(), book.households_of(item)), "screens-announce"
            )

    link_screens()
    gateway.bus.listen(GatewayStarted, link_screens)  # the screens may start after the portal
    book.on_start.append(announce_on_tvs)
    await book.async_start()
    yield
    screens = gateway.peer(SCREENS)
    if screens is not None:
        screens.tv_link = None
    await book.async_stop()
    if gateway.notifier.channels and any(c is channel for c in gateway.notifier.channels):
        gateway.notifier.unregister(channel.name)
    await hub.async_stop()
