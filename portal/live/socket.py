"""`GET /api/v1/ws`: the live-event WebSocket (signed in: session cookie or bearer token).

A socket lives no longer than the credential it was opened with: it closes at
the token's expiry (a session's `portal.session_hours`), and at once when the
credential is revoked or the account changed (`Accounts.forget_*` → the hub).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from linli.portal.api.errors import ApiError
from linli.portal.api.operations import PRINCIPAL
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.auth.principal import Principal
from linli.portal.live.hub import Hub

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
    expires = await request.app[ACCOUNTS].async_token_expiry(principal.token_id)
    # No permessage-deflate: the hub writes one shared, uncompressed frame to every socket,
    # and the messages are small (a per-socket compressor would cost more memory than it saves).
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_CLIENT_MESSAGE, compress=False)
    try:
        await ws.prepare(request)
    except ConnectionResetError:  # the client went away during the handshake: nobody to answer
        return ws
    transport = request.transport
    if transport is None:  # the client went away during the handshake
        return ws
    connection = hub.add(ws, transport, principal)
    expiry: asyncio.TimerHandle | None = None
    if expires is not None:
        # One timer per socket, not a sweep: it costs nothing until it fires.
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(
            loop.time() + max(0.0, expires - time.time()), connection.close, WSCloseCode.POLICY_VIOLATION
        )
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
        if expiry is not None:
            expiry.cancel()
        connection.close()
    return ws
