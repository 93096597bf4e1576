"""`GET /api/v1/ws`: the live-event WebSocket (signed in: session cookie or bearer token)."""

from __future__ import annotations

import time
from typing import Final

import orjson
from aiohttp import WSMsgType, web
from yarl import URL

from portal.api.errors import ApiError
from portal.api.operations import PRINCIPAL
from portal.auth.principal import Principal
from portal.live.hub import Hub

HUB: Final = web.AppKey("linli_hub", Hub)
MAX_CLIENT_MESSAGE: Final = 4096


async def websocket(request: web.Request) -> web.StreamResponse:
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:
        raise ApiError("unauthenticated", "sign in before opening the live-event WebSocket")
    origin = request.headers.get("Origin")
    if principal.via == "session" and origin and URL(origin).host != URL(f"//{request.host}").host:
        # A page on another site must not ride on a resident's cookie (cross-site WebSocket hijacking).
        raise ApiError("forbidden", f"WebSocket from origin {origin!r} refused; open the portal's own pages")
    hub = request.app[HUB]
    # No permessage-deflate: the hub writes one shared, uncompressed frame to every socket,
    # and the messages are small (a per-socket compressor would cost more memory than it saves).
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_CLIENT_MESSAGE, compress=False)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the client went away during the handshake
        return ws
    connection = hub.add(ws, transport, principal)
    connection.offer(
        hub.encode(
            {
                "type": "hello",
                "user": principal.as_dict(),
                "households": sorted(connection.households),
                "ts": time.time(),
            }
        )
    )
    try:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                data = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("type") == "ping":
                connection.offer(hub.encode({"type": "pong", "ts": time.time()}))
    finally:
        connection.close()
    return ws
