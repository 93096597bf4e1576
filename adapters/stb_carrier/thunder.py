"""An RDK Thunder JSON-RPC 2.0 client: calls over HTTP (POST /jsonrpc), events over the WebSocket.

Every answer is checked before it is believed: JSON, `"jsonrpc": "2.0"`, the id
that was sent, a `result` or an `error` object; `success: false` in a result is
a refusal. Anything else is a `BoxAnswerError` naming the method and the
problem. The HTTP limits (size, time) are those of gateway/stb/http.py; the
WebSocket has the same message size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import aiohttp
import orjson

from linli.gateway.commands import NotSupportedError
from linli.gateway.stb.errors import BoxAnswerError
from linli.gateway.stb.http import Limits, async_request

METHOD_NOT_FOUND: Final = -32601
EVENT_CLIENT: Final = "linli"
_HEADERS: Final = {"Content-Type": "application/json"}


def _excerpt(body: bytes) -> str:
    return body[:60].decode("utf-8", "replace").replace("\n", " ")


class ThunderClient:
    """One box's Thunder endpoint (`http://host:9998`)."""

    def __init__(
        self, session: aiohttp.ClientSession, limits: Limits, base_url: str, log: logging.Logger
    ) -> None:
        self._session = session
        self._limits = limits
        self.base_url = base_url.rstrip("/")
        self.rpc_url = self.base_url + "/jsonrpc"
        self._log = log
        self._ids = itertools.count(1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.malformed_events = 0

    async def async_call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        ident = next(self._ids)
        body = orjson.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params or {}})
        answer = await async_request(
            self._session, "POST", self.rpc_url, limits=self._limits, data=body, headers=_HEADERS
        )
        if answer.status != 200:
            raise BoxAnswerError(f"{method}: the box answered HTTP {answer.status}")
        try:
            message = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise BoxAnswerError(
                f"{method}: the box's answer is not JSON ({exc}; starts {_excerpt(answer.body)!r})"
            ) from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise BoxAnswerError(f"{method}: not a JSON-RPC 2.0 answer (starts {_excerpt(answer.body)!r})")
        if message.get("id") != ident:
            raise BoxAnswerError(f"{method}: JSON-RPC answer for id {message.get('id')!r}, sent id {ident}")
        error = message.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = str(error.get("message") if isinstance(error, dict) else error)[:200]
            if code == METHOD_NOT_FOUND:
                raise NotSupportedError(f"the box has no {method} (JSON-RPC {code}: {text})")
            raise BoxAnswerError(f"{method} failed on the box: JSON-RPC error {code}: {text}")
        if "result" not in message:
            raise BoxAnswerError(f"{method}: JSON-RPC answer with neither result nor error")
        result = message["result"]
        if isinstance(result, dict) and result.get("success") is False:
            raise BoxAnswerError(f"{method}: the box refused (success: false)")
        return result

    # -- events ------------------------------------------------------------------

    @property
    def events_open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def async_open_events(
        self, events: Iterable[tuple[str, str]], on_event: Callable[[str, dict[str, Any]], None]
    ) -> None:
        """Subscribe to `(plugin callsign, event)` pairs; `on_event(event, params)` for each notification."""
        await self.async_close_events()
        ws = await asyncio.wait_for(
            self._session.ws_connect(
                self.rpc_url, protocols=("json",), max_msg_size=self._limits.max_bytes, heartbeat=30
            ),
            self._limits.timeout_s,
        )
        self._ws = ws
        for plugin, event in events:
            ident = next(self._ids)
            message = {
                "jsonrpc": "2.0",
                "id": ident,
                "method": f"{plugin}.register",
                "params": {"event": event, "id": EVENT_CLIENT},
            }
            await ws.send_str(orjson.dumps(message).decode())
        self._reader = asyncio.get_running_loop().create_task(
            self._read(ws, on_event), name=f"linli-stb-events-{self.base_url}"
        )

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, on_event: Callable[[str, dict[str, Any]], None]
    ) -> None:
        prefix = EVENT_CLIENT + "."
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            try:
                message = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                self.malformed_events += 1
                continue
            method = message.get("method") if isinstance(message, dict) else None
            if isinstance(method, str) and method.startswith(prefix):
                params = message.get("params")
                try:
                    on_event(method[len(prefix) :], params if isinstance(params, dict) else {})
                except Exception:  # a listener's bug must not end the event stream
                    self._log.warning("event %s from %s not handled", method, self.base_url, exc_info=False)

    async def async_close_events(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
