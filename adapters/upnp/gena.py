"""UPnP eventing (GENA) from boxes: subscriptions kept alive, and NOTIFYs let in from those boxes only.

A cable box tells the gateway at once when the resident changes channel or
volume with its own remote — as a carrier box does over its Thunder WebSocket —
instead of the gateway finding out at the next poll.

async-upnp-client's `UpnpEventHandler` sends the SUBSCRIBE, renewal and
UNSUBSCRIBE requests. What a listener on a residential LAN needs besides, this
module adds:

* one small HTTP server per local address the boxes are reached from; the
  callback a box is given is that address (or the configured `host`), a port,
  and a path with a random token. Idle connections close after `IDLE_S`, and
  what aiohttp says about a malformed request is logged at debug: nobody on the
  LAN can hold the gateway's sockets or write its error log;
* a NOTIFY is taken only on that path, with NT/NTS of a property change, with a
  SID the gateway holds from the box that sent it, at most 64 KB, a well-formed
  property set (defusedxml). Anything else is answered (404, 405, 412, 413,
  400), counted in `refused`, and nothing of it is kept. The library's own
  NOTIFY handler is not used: it keeps NOTIFYs for SIDs it does not know in a
  backlog without bound, and sets the service's state variables from the
  values, logging each it cannot take at ERROR. The gateway only needs to know
  that a service changed: it then reads the box, as after a Thunder event;
* a box's first NOTIFY may overtake the answer to its SUBSCRIBE: while a
  SUBSCRIBE to that box is on its way, a NOTIFY from it with a SID not known yet
  is answered 200 and dropped (a 412 makes some renderers cancel the new
  subscription) — nothing is lost, the gateway reads a box when it connects;
* subscriptions are taken out in the background and renewed at half their
  lifetime. One a box refuses (it rebooted and forgot it) is taken out afresh;
  while a box does not answer, its subscription is kept and tried again less
  and less often (up to every 10 minutes), each try in its own task, so boxes
  that are off delay nobody else's renewal.
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
import defusedxml.ElementTree as DET
from aiohttp import web
from async_upnp_client.client import UpnpService
from async_upnp_client.event_handler import UpnpEventHandler, UpnpNotifyServer
from async_upnp_client.utils import async_get_local_ip
from defusedxml import DefusedXmlException

from linli.common.backoff import backoff_delay
from linli.gateway.stb.errors import BoxUnreachableError
from linli.gateway.stb.http import BoundedUpnpRequester, Limits

MAX_NOTIFY_BYTES: Final = 64 * 1024
SUBSCRIPTION_S: Final = 300  # asked of each box; renewed at half-time
TICK_S: Final = 1.0  # how often due renewals are looked for
RETRY_S: Final = 30.0  # first retry of a subscription that failed; doubled up to MAX_RETRY_S
MAX_RETRY_S: Final = 600.0
IDLE_S = 5.0  # a box's NOTIFY connection is closed after this long without a request
_CONCURRENT: Final = 16  # SUBSCRIBE / UNSUBSCRIBE requests at once
_PROPERTY_SET: Final = "{urn:schemas-upnp-org:event-1-0}propertyset"


class _Quiet(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's own complaints about what a LAN host sent (a malformed request) at debug."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)  # no traceback for somebody else's bad request line
        super().log(logging.DEBUG, msg, *args, **kwargs)


@dataclass(slots=True, eq=False)
class _Subscription:
    service: UpnpService
    on_event: Callable[[], None]
    peer: str | None  # the box's address, when its URL names one (a NOTIFY must come from it)
    endpoint: _Endpoint | None = None
    sid: str | None = None  # None: not (or no longer) held, to be taken out
    due: float = 0.0  # when to renew it, or try again
    failures: int = 0
    busy: bool = False  # a request for it is on its way


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
        runner = web.AppRunner(
            app,
            access_log=None,
            logger=_Quiet(logging.getLogger(__name__), {}),
            keepalive_timeout=IDLE_S,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = int(sock.getsockname()[1])
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
        listener = self._listener
        sid = request.headers.get("SID", "")
        subscription = listener.holding(request.remote, sid)
        if subscription is None or subscription.endpoint is not self:
            if listener.subscribing[request.remote] > 0:
                listener.early += 1  # it overtook the SUBSCRIBE answer: taken, and dropped
                return web.Response(status=200)
            return listener.refuse(412, "a SID the gateway does not hold from that address", request)
        if request.headers.get("NT") != "upnp:event" or request.headers.get("NTS") != "upnp:propchange":
            return listener.refuse(412, "not a upnp:propchange event", request)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return listener.refuse(413, f"over {MAX_NOTIFY_BYTES} bytes", request)
        try:
            root = DET.fromstring(body)  # bytes: the declared encoding, a byte-order mark, are honoured
        except (ParseError, DefusedXmlException, ValueError) as exc:
            return listener.refuse(400, f"an unreadable property set ({type(exc).__name__})", request)
        if root.tag != _PROPERTY_SET:
            return listener.refuse(400, f"a {root.tag[:60]!r} document, not a property set", request)
        listener.received += 1
        try:
            subscription.on_event()
        except Exception:  # our listener's bug: the box did nothing wrong
            listener.log.warning("UPnP event from %s not handled", request.remote, exc_info=True)
        return web.Response(status=200)


class GenaListener:
    """The gateway's end of UPnP eventing, for every box of one adapter."""

    def __init__(
        self,
        *,
        limits: Limits,
        log: logging.Logger,
        host: str | None = None,
        port: int = 0,
        subscription_s: int = SUBSCRIPTION_S,
        tick_s: float = TICK_S,
        retry_s: float = RETRY_S,
    ) -> None:
        if host is not None:
            _check_callback_host(host)
        self._limits = limits
        self.log = log
        self._host = host
        self._port = port
        self._timeout = timedelta(seconds=subscription_s)
        self._tick_s = tick_s
        self._retry_s = retry_s
        self._session: aiohttp.ClientSession | None = None
        self.requester: BoundedUpnpRequester | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._starting = asyncio.Lock()
        self._subscriptions: dict[UpnpService, _Subscription] = {}
        self._by_sid: dict[tuple[str | None, str], _Subscription] = {}
        self.subscribing: Counter[str | None] = Counter()  # boxes with a SUBSCRIBE on its way
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(_CONCURRENT)
        self._closed = False
        self.refused: Counter[int] = Counter()  # NOTIFYs turned away, by the status they were given
        self.received = 0
        self.early = 0  # NOTIFYs that overtook their SUBSCRIBE's answer

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_CONCURRENT), timeout=aiohttp.ClientTimeout(total=None)
        )
        self.requester = BoundedUpnpRequester(self._session, self._limits)
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="linli-gena-renew")

    async def async_stop(self) -> None:
        """Unsubscribe from every box at once (bounded by the request timeout), then stop listening."""
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        for service in list(self._subscriptions):
            self.unwatch(service)
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._limits.timeout_s + 1)
        left = list(self._background)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
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

    @property
    def held(self) -> dict[str, str]:
        """The SIDs held, by the event URL of the service each is for."""
        return {s.service.event_sub_url: s.sid for s in self._subscriptions.values() if s.sid is not None}

    def holding(self, remote: str | None, sid: str) -> _Subscription | None:
        return self._by_sid.get((remote, sid)) or self._by_sid.get((None, sid))

    # -- subscriptions ---------------------------------------------------------------

    def watch(self, service: UpnpService, on_event: Callable[[], None]) -> None:
        """Have the box NOTIFY the gateway of this service's changes (taken out in the background);
        `on_event()` on each. A box that refuses or does not answer is asked again later."""
        if self._closed or self.requester is None:
            return
        self.unwatch(service)
        host = urlsplit(service.event_sub_url).hostname or ""
        try:
            peer: str | None = str(ipaddress.ip_address(host))
        except ValueError:
            peer = None  # a name: from whichever address sends its SID
        subscription = _Subscription(service=service, on_event=on_event, peer=peer, busy=True)
        self._subscriptions[service] = subscription
        self._spawn(self._renew(subscription))

    def unwatch(self, service: UpnpService) -> None:
        """Stop listening to this service now; the box is told so in the background."""
        subscription = self._subscriptions.pop(service, None)
        if subscription is None:
            return
        sid, subscription.sid = subscription.sid, None
        if sid is not None and subscription.endpoint is not None:
            self._by_sid.pop((subscription.peer, sid), None)
            self._spawn(self._unsubscribe(subscription.endpoint.handler, sid))

    async def _unsubscribe(self, handler: UpnpEventHandler, sid: str) -> None:
        async with self._limit:
            try:
                await handler.async_unsubscribe(sid)
            except Exception as exc:  # the box is away, or forgot us first: its subscription lapses
                self.log.debug("UNSUBSCRIBE %s: %s", sid, exc)

    async def _renew(self, subscription: _Subscription) -> None:
        """Take out, or renew, one subscription; on failure, schedule the next try."""
        try:
            async with self._limit:
                if self._closed or self._subscriptions.get(subscription.service) is not subscription:
                    return
                try:
                    sid, timeout = await self._request(subscription)
                except BoxUnreachableError as exc:
                    # Away: what we hold may still be good when it is back; ask again, less often.
                    self._failed(subscription, exc)
                    return
                except Exception as exc:  # refused, or answered with something unusable
                    self._failed(subscription, exc)
                    self._drop_sid(subscription)
                    return
            self._took(subscription, sid, timeout)
        finally:
            subscription.busy = False

    async def _request(self, subscription: _Subscription) -> tuple[str, timedelta]:
        if subscription.endpoint is None:
            subscription.endpoint = await self._endpoint_for(subscription.service.event_sub_url)
        handler = subscription.endpoint.handler
        self.subscribing[subscription.peer] += 1
        try:
            if subscription.sid is not None and handler.service_for_sid(subscription.sid) is not None:
                # the library renews it, and subscribes afresh where the box refuses (forgot it)
                return await handler.async_resubscribe(subscription.sid, self._timeout)
            return await handler.async_subscribe(subscription.service, self._timeout)
        finally:
            self.subscribing[subscription.peer] -= 1
            if self.subscribing[subscription.peer] <= 0:
                del self.subscribing[subscription.peer]

    def _failed(self, subscription: _Subscription, exc: Exception) -> None:
        subscription.failures += 1
        base = min(self._retry_s, MAX_RETRY_S)
        wait = backoff_delay(subscription.failures - 1, base=base, cap=MAX_RETRY_S, jitter=False)
        subscription.due = time.monotonic() + wait
        self.log.debug(
            "UPnP events from %s: %s; trying again in %.0f s", subscription.service.event_sub_url, exc, wait
        )

    def _drop_sid(self, subscription: _Subscription) -> None:
        """The box does not have it (any more): forget it, here and in the library."""
        sid, subscription.sid = subscription.sid, None
        if sid is None or subscription.endpoint is None:
            return
        self._by_sid.pop((subscription.peer, sid), None)
        if subscription.endpoint.handler.service_for_sid(sid) is not None:
            self._spawn(self._unsubscribe(subscription.endpoint.handler, sid))

    def _took(self, subscription: _Subscription, sid: str, timeout: timedelta) -> None:
        assert subscription.endpoint is not None
        if self._subscriptions.get(subscription.service) is not subscription:
            # unwatched while the SUBSCRIBE was on its way: let the box know
            self._spawn(self._unsubscribe(subscription.endpoint.handler, sid))
            return
        if subscription.sid is not None and subscription.sid != sid:
            self._by_sid.pop((subscription.peer, subscription.sid), None)
        key = (subscription.peer, sid)
        other = self._by_sid.get(key)
        if other is not None and other is not subscription:
            self.log.info(
                "box at %s gave one SID to two subscriptions; the events of %s are lost",
                subscription.peer,
                other.service.event_sub_url,
            )
        subscription.sid = sid
        subscription.failures = 0
        granted = min(timeout.total_seconds(), self._timeout.total_seconds())
        subscription.due = time.monotonic() + max(granted / 2, self._tick_s)
        self._by_sid[key] = subscription

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            now = time.monotonic()
            for subscription in list(self._subscriptions.values()):
                if subscription.due <= now and not subscription.busy:
                    subscription.busy = True
                    self._spawn(self._renew(subscription))

    # -- listening ---------------------------------------------------------------------

    async def _endpoint_for(self, url: str) -> _Endpoint:
        """The server boxes at `url` call back: on the configured host, else the address reaching them."""
        host = self._host or (await async_get_local_ip(url))[1]
        async with self._starting:
            if self._closed:
                raise RuntimeError("GENA listener stopped")
            endpoint = self._endpoints.get(host)
            if endpoint is None:
                assert self.requester is not None, "GENA listener not started"
                endpoint = _Endpoint(self, self.requester, host, self._port)
                await endpoint.async_start_server()
                self._endpoints[host] = endpoint
                self.log.info(
                    "listening for UPnP events at %s", endpoint.callback_url.rpartition("/gena/")[0]
                )
            return endpoint

    def refuse(self, status: int, why: str, request: web.Request) -> web.Response:
        self.refused[status] += 1
        self.log.debug("NOTIFY from %s refused (%d): %s", request.remote, status, why)
        return web.Response(status=status, text=f"NOTIFY refused: {why}")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _check_callback_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"events.host {host!r} is not an IP address: give the gateway's address on the "
            "boxes' network, or leave it out to use the address each box is reached from"
        ) from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError(
            f"events.host {host!r}: boxes cannot call back an unspecified or multicast address; "
            "give the gateway's own address on the boxes' network"
        )
