"""UPnP eventing (GENA) from boxes: subscriptions kept alive, and NOTIFYs let in from those boxes only.

A cable box tells the gateway at once when the resident changes channel or
volume with its own remote — as a carrier box does over its Thunder WebSocket —
instead of the gateway finding out at the next poll.

async-upnp-client's `UpnpEventHandler` subscribes, renews and unsubscribes, and
reads a NOTIFY's property set (with defusedxml). What a listener on a
residential LAN needs besides, this module adds:

* one small HTTP server per local address the boxes are reached from; the
  callback a box is given is that address (or the configured `host`), a port,
  and a path with a random token;
* a NOTIFY is let through only on that path, carrying a SID the gateway holds,
  from the address of the box it was given to, and at most 64 KB. Anything else
  is answered (404, 405, 412, 413, 400) and counted in `refused`, and nothing
  of it is kept. The library's own backlog of NOTIFYs for SIDs it does not know
  yet has no bound, so it is never reached: a box's first NOTIFY that overtakes
  its SUBSCRIBE answer is refused, which loses nothing — the gateway reads a
  box's state when it connects anyway;
* subscriptions are renewed at half their lifetime, and one that cannot be
  renewed (the box rebooted and forgot it, or is away) is taken out afresh on
  each later round until the box answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import aiohttp
from aiohttp import web
from async_upnp_client.client import UpnpService
from async_upnp_client.const import HttpRequest
from async_upnp_client.event_handler import UpnpEventHandler, UpnpNotifyServer
from async_upnp_client.utils import async_get_local_ip
from defusedxml import DefusedXmlException

from gateway.stb.http import BoundedUpnpRequester, Limits

MAX_NOTIFY_BYTES: Final = 64 * 1024
SUBSCRIPTION_S: Final = 300  # asked of each box; renewed at half-time
RENEW_EVERY_S: Final = 30.0
_CONCURRENT: Final = 16  # SUBSCRIBE / UNSUBSCRIBE requests at once, in the background


@dataclass(slots=True, eq=False)
class _Subscription:
    service: UpnpService
    endpoint: _Endpoint
    peer: str | None  # the box's address, when its URL names one (a NOTIFY must come from it)
    sid: str | None = None  # None: lapsed, to be taken out again
    renew_at: float = 0.0


class _Endpoint(UpnpNotifyServer):
    """One listening address: its HTTP server, its secret callback path, its event handler."""

    def __init__(self, listener: GenaListener, requester: BoundedUpnpRequester, host: str, port: int) -> None:
        self._listener = listener
        self.host = host
        self.port = port
        self.path = "/gena/" + secrets.token_urlsafe(16)
        self.handler = UpnpEventHandler(self, requester)
        self._runner: web.AppRunner | None = None

    @property
    def callback_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def async_start_server(self) -> None:
        app = web.Application(client_max_size=MAX_NOTIFY_BYTES)
        app.router.add_route("NOTIFY", self.path, self._notify)
        app.router.add_route("*", "/{anything:.*}", self._other)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def async_stop_server(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _other(self, request: web.Request) -> web.Response:
        if request.path == self.path:
            return self._listener.refuse(405, f"{request.method[:16]}, not NOTIFY", request)
        return self._listener.refuse(404, "not the callback path", request)

    async def _notify(self, request: web.Request) -> web.Response:
        subscription = self._listener.by_sid.get(request.headers.get("SID", ""))
        if subscription is None or subscription.endpoint is not self:
            return self._listener.refuse(412, "a SID the gateway does not hold", request)
        if subscription.peer is not None and request.remote != subscription.peer:
            return self._listener.refuse(412, f"a SID of {subscription.peer}, sent from elsewhere", request)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._listener.refuse(413, f"over {MAX_NOTIFY_BYTES} bytes", request)
        try:
            text = body.decode("utf-8-sig")  # some renderers start their XML with a byte-order mark
            # Headers as received, looked up case-insensitively: some boxes send `nt:` and `sid:`.
            status = await self.handler.handle_notify(
                HttpRequest("NOTIFY", self.callback_url, request.headers, text)
            )
        except (UnicodeDecodeError, ParseError, DefusedXmlException, ValueError) as exc:
            return self._listener.refuse(400, f"an unreadable property set ({type(exc).__name__})", request)
        if status >= 400:
            return self._listener.refuse(int(status), "not a upnp:propchange event", request)
        self._listener.received += 1
        return web.Response(status=int(status))


class GenaListener:
    """The gateway's end of UPnP eventing, for every box of one adapter."""

    def __init__(
        self,
        *,
        limits: Limits,
        log: logging.Logger,
        host: str | None = None,
        port: int = 0,
        renew_every_s: float = RENEW_EVERY_S,
        subscription_s: int = SUBSCRIPTION_S,
    ) -> None:
        if host is not None:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(
                    f"events.host {host!r} is not an IP address: give the gateway's address on the "
                    "boxes' network, or leave it out to use the address each box is reached from"
                ) from None
        self._limits = limits
        self._log = log
        self._host = host
        self._port = port
        self._renew_every_s = renew_every_s
        self._timeout = timedelta(seconds=subscription_s)
        self._session: aiohttp.ClientSession | None = None
        self.requester: BoundedUpnpRequester | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._starting = asyncio.Lock()
        self._subscriptions: dict[UpnpService, _Subscription] = {}
        self.by_sid: dict[str, _Subscription] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(_CONCURRENT)
        self.refused: Counter[int] = Counter()  # NOTIFYs turned away, by the status they were given
        self.received = 0

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_CONCURRENT), timeout=aiohttp.ClientTimeout(total=None)
        )
        self.requester = BoundedUpnpRequester(self._session, self._limits)
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="linli-gena-renew")

    async def async_stop(self) -> None:
        """Unsubscribe from every box at once (bounded by the request timeout), then stop listening."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        for service in list(self._subscriptions):
            self.unsubscribe(service)
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._limits.timeout_s + 1)
        for task in self._background:
            task.cancel()
        for endpoint in self._endpoints.values():
            with contextlib.suppress(Exception):
                await endpoint.async_stop_server()
        self._endpoints.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def callback_urls(self) -> list[str]:
        return [endpoint.callback_url for endpoint in self._endpoints.values()]

    # -- subscriptions ---------------------------------------------------------------

    async def async_subscribe(self, service: UpnpService, on_event: Callable[[], None]) -> None:
        """Have the box NOTIFY the gateway of this service's changes; `on_event()` on each.

        Raises what the SUBSCRIBE raised (the box refused, or did not answer).
        """
        if self.requester is None:
            raise RuntimeError("GENA listener not started")
        self.unsubscribe(service)
        url = service.event_sub_url
        host = urlsplit(url).hostname or ""
        try:
            peer: str | None = str(ipaddress.ip_address(host))
        except ValueError:
            peer = None  # a name: whoever it resolves to
        subscription = _Subscription(service=service, endpoint=await self._endpoint_for(url), peer=peer)
        service.on_event = lambda _service, _changed: on_event()
        self._subscriptions[service] = subscription
        try:
            await self._subscribe(subscription)
        except BaseException:
            self._subscriptions.pop(service, None)
            raise

    def unsubscribe(self, service: UpnpService) -> None:
        """Stop listening to this service now; the box is told so in the background."""
        subscription = self._subscriptions.pop(service, None)
        if subscription is None:
            return
        service.on_event = None
        sid, subscription.sid = subscription.sid, None
        if sid is None:
            return
        self.by_sid.pop(sid, None)
        self._spawn(self._unsubscribe(subscription.endpoint.handler, sid))

    async def _unsubscribe(self, handler: UpnpEventHandler, sid: str) -> None:
        async with self._limit:
            try:
                await handler.async_unsubscribe(sid)
            except Exception as exc:  # the box is away, or forgot us first: its subscription lapses
                self._log.debug("UNSUBSCRIBE %s: %s", sid, exc)

    async def _subscribe(self, subscription: _Subscription) -> None:
        handler = subscription.endpoint.handler
        sid, timeout = await handler.async_subscribe(subscription.service, self._timeout)
        self._took(subscription, sid, timeout)

    def _took(self, subscription: _Subscription, sid: str, timeout: timedelta) -> None:
        if self._subscriptions.get(subscription.service) is not subscription:
            # unsubscribed while the SUBSCRIBE was on its way: let the box know
            self._spawn(self._unsubscribe(subscription.endpoint.handler, sid))
            return
        if subscription.sid is not None and subscription.sid != sid:
            self.by_sid.pop(subscription.sid, None)
        subscription.sid = sid
        subscription.renew_at = time.monotonic() + max(timeout.total_seconds(), 2 * self._renew_every_s) / 2
        self.by_sid[sid] = subscription

    async def _renew(self, subscription: _Subscription) -> None:
        handler = subscription.endpoint.handler
        async with self._limit:
            try:
                if subscription.sid is None or handler.service_for_sid(subscription.sid) is None:
                    sid, timeout = await handler.async_subscribe(subscription.service, self._timeout)
                else:
                    sid, timeout = await handler.async_resubscribe(subscription.sid, self._timeout)
            except Exception as exc:  # away, or refusing: polling covers it; try again next round
                self._log.debug("GENA subscription to %s lapsed: %s", subscription.service.event_sub_url, exc)
                if subscription.sid is not None:
                    # forget it here and in the library's handler; the box forgets it when it lapses
                    self.by_sid.pop(subscription.sid, None)
                    self._spawn(self._unsubscribe(handler, subscription.sid))
                    subscription.sid = None
                subscription.renew_at = time.monotonic() + self._renew_every_s
                return
        self._took(subscription, sid, timeout)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every_s)
            now = time.monotonic()
            due = [s for s in self._subscriptions.values() if s.renew_at <= now]
            if due:
                await asyncio.gather(*(self._renew(s) for s in due))

    # -- listening ---------------------------------------------------------------------

    async def _endpoint_for(self, url: str) -> _Endpoint:
        """The server boxes at `url` call back: on the configured host, else the address reaching them."""
        host = self._host or (await async_get_local_ip(url))[1].partition("%")[0]
        async with self._starting:
            endpoint = self._endpoints.get(host)
            if endpoint is None:
                assert self.requester is not None, "GENA listener not started"
                endpoint = _Endpoint(self, self.requester, host, self._port)
                await endpoint.async_start_server()
                self._endpoints[host] = endpoint
                self._log.info("listening for UPnP events at %s:%d", host, endpoint.port)
            return endpoint

    def refuse(self, status: int, why: str, request: web.Request) -> web.Response:
        self.refused[status] += 1
        self._log.debug("NOTIFY from %s refused (%d): %s", request.remote, status, why)
        return web.Response(status=status, text=f"NOTIFY refused: {why}")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
