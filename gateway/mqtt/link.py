"""The gateway's supervised MQTT connection.

* Reconnects with exponential backoff and full jitter; resubscribes every
  filter on each connect (and keeps a persistent session, so QoS 1 messages
  published while the link was down are delivered on return).
* Birth and last will: `linli/<gateway-id>/status` is `online` (retained) while
  connected, and the broker publishes `offline` if the gateway vanishes.
* An authentication failure stops the retries and says so: retrying a wrong
  password only fills the broker's log.
* Incoming messages are handed to handlers straight from the client's receive
  callback (aiomqtt's `queue_type` hook), without a task per message: the
  fastest public path aiomqtt offers. Handlers therefore must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
from aiomqtt import MqttCodeError, MqttError
from paho.mqtt.reasoncodes import ReasonCode

from linli.common.backoff import backoff_delay
from linli.gateway.bus import EventBus
from linli.gateway.context import Context
from linli.gateway.events import MqttConnectionChanged
from linli.gateway.mqtt.topics import status_topic

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[str, bytes, aiomqtt.Message], None]

# CONNACK codes that retrying cannot fix (MQTT 3.1.1: 4, 5; MQTT 5: 134, 135, 138).
_AUTH_FAILURES = {4, 5, 134, 135, 138}


class MqttAuthError(RuntimeError):
    """The broker refused our credentials; the link has stopped retrying."""


@dataclass(slots=True, kw_only=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    gateway_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    connect_timeout_s: float = 10.0

    def __repr__(self) -> str:  # never print the password
        return f"MqttSettings({self.username or 'anonymous'}@{self.host}:{self.port})"


def _no_delay(client: aiomqtt.Client) -> None:
    """Send our small packets (PUBACKs above all) at once: TCP_NODELAY on the socket.

    With Nagle's algorithm on, a PUBACK waits for the ACK of the previous segment,
    which the broker's kernel delays by up to 40 ms; meanwhile the broker's QoS 1
    in-flight window (20 messages in Mosquitto) fills and every message — an SOS
    included — waits behind it. aiomqtt exposes no socket option, so this reaches
    the paho client it wraps (aiomqtt is pinned below 3 in pyproject.toml).
    """
    sock = client._client.socket()
    if sock is not None and hasattr(sock, "setsockopt"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason_value(exc: BaseException) -> int | None:
    rc = getattr(exc, "rc", None)
    if isinstance(rc, ReasonCode):
        return int(rc.value)
    if isinstance(rc, int):
        return rc
    return None


class MqttLink:
    """One supervised aiomqtt client for the whole gateway."""

    def __init__(self, settings: MqttSettings, bus: EventBus) -> None:
        self.settings = settings
        self._bus = bus
        self._subscriptions: dict[str, int] = {}
        self._exact: dict[str, Handler] = {}
        self._filters: list[tuple[str, Handler]] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._first_attempt: asyncio.Future[None] | None = None
        self.received = 0
        self.unrouted = 0
        self.handler_errors = 0
        self.connects = 0
        self.auth_error: str | None = None
        self._births: dict[str, bytes] = {}

    # -- routing -----------------------------------------------------------------

    def route_exact(self, topic: str, handler: Handler) -> None:
        """Send messages on exactly `topic` to `handler` (a dict lookup per message)."""
        self._exact[topic] = handler

    def unroute_exact(self, topic: str) -> None:
        self._exact.pop(topic, None)

    def route_filter(self, topic_filter: str, handler: Handler) -> None:
        """Send messages matching a wildcard filter (when no exact route matched)."""
        self._filters.append((topic_filter, handler))

    def add_birth_message(self, topic: str, payload: bytes) -> None:
        """Publish `payload` on `topic` (QoS 1, not retained) after every connect, after our own
        status: Home Assistant's `homeassistant/status` `online` makes bridges re-announce."""
        self._births[topic] = payload

    async def async_subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now if connected, and again after every reconnect."""
        self._subscriptions[topic_filter] = qos
        if self._client is not None and self._connected.is_set():
            try:
                await self._client.subscribe(topic_filter, qos=qos)
            except MqttError as exc:
                _LOGGER.warning("subscribe %s failed (%s); will retry on reconnect", topic_filter, exc)

    async def async_subscribe_many(self, topic_filters: list[str], qos: int = 1) -> None:
        """Subscribe to many filters in few SUBSCRIBE packets (and again on every reconnect)."""
        for topic_filter in topic_filters:
            self._subscriptions[topic_filter] = qos
        if self._client is not None and self._connected.is_set():
            await self._subscribe_all(self._client, topic_filters)

    async def _subscribe_all(self, client: aiomqtt.Client, topic_filters: list[str]) -> None:
        for start in range(0, len(topic_filters), 200):
            chunk = [(f, self._subscriptions[f]) for f in topic_filters[start : start + 200]]
            try:
                # A generous timeout: with a persistent session the broker may first send
                # a large backlog of queued messages, and the SUBACK queues behind it.
                await client.subscribe(chunk, timeout=max(60.0, self.settings.connect_timeout_s))
            except MqttError as exc:
                _LOGGER.warning(
                    "subscribing %d filters failed (%s); will retry on reconnect", len(chunk), exc
                )

    def _dispatch(self, message: aiomqtt.Message) -> None:
        self.received += 1
        topic = message.topic.value
        handler = self._exact.get(topic)
        if handler is None:
            for topic_filter, candidate in self._filters:
                if message.topic.matches(topic_filter):
                    handler = candidate
                    break
            else:
                self.unrouted += 1
                return
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode()
        try:
            handler(topic, bytes(payload), message)
        except Exception:
            # A handler bug must not take the connection down with it.
            self.handler_errors += 1
            if self.handler_errors == 1 or self.handler_errors % 10000 == 0:
                _LOGGER.exception("handler for %s failed (%d so far)", topic, self.handler_errors)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def async_start(self) -> None:
        """Nothing to do yet: components route and subscribe first, then the gateway connects.

        Connecting last matters: a persistent session delivers the messages queued
        while the gateway was down right on CONNACK, and they must find their routes.
        """

    async def async_connect(self) -> None:
        """Start the supervisor; waits for the first connection attempt's outcome.

        Raises MqttAuthError on refused credentials. An unreachable broker does
        not fail the start: the gateway works locally and keeps retrying.
        """
        self._first_attempt = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(), name="linli-mqtt-link")
        try:
            await asyncio.wait_for(asyncio.shield(self._first_attempt), self.settings.connect_timeout_s)
        except TimeoutError:
            _LOGGER.warning(
                "MQTT broker %s:%d not reachable yet; retrying in the background",
                self.settings.host,
                self.settings.port,
            )
        except MqttAuthError:
            await self.async_stop()
            raise

    async def async_wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def async_stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def async_publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish now; raises MqttError if the link is down (callers decide to queue)."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise MqttError(f"MQTT link is down; cannot publish to {topic}")
        await client.publish(topic, payload, qos=qos, retain=retain)

    def _resolve_first(self, error: BaseException | None = None) -> None:
        first = self._first_attempt
        if first is not None and not first.done():
            if error is None:
                first.set_result(None)
            else:
                first.set_exception(error)

    async def _supervise(self) -> None:
        settings = self.settings
        status = status_topic(settings.gateway_id)
        handle = self._dispatch

        class _DispatchQueue(asyncio.Queue[aiomqtt.Message]):
            """Runs each message through the router in the receive callback."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                handle(item)

        attempt = 0
        while True:
            started = time.monotonic()
            try:
                client = aiomqtt.Client(
                    settings.host,
                    settings.port,
                    username=settings.username,
                    password=settings.password,
                    identifier=settings.client_id,
                    keepalive=settings.keepalive_s,
                    clean_session=False,
                    queue_type=_DispatchQueue,
                    will=aiomqtt.Will(status, b"offline", qos=1, retain=True),
                    timeout=settings.connect_timeout_s,
                )
                async with client:
                    self._client = client
                    _no_delay(client)
                    await self._subscribe_all(client, list(self._subscriptions))
                    await client.publish(status, b"online", qos=1, retain=True)
                    for topic, payload in self._births.items():
                        await client.publish(topic, payload, qos=1)
                    self.connects += 1
                    self._connected.set()
                    attempt = 0
                    self._resolve_first()
                    _LOGGER.info(
                        "MQTT connected to %s:%d as %s",
                        settings.host,
                        settings.port,
                        settings.client_id,
                    )
                    self._bus.fire(
                        MqttConnectionChanged(
                            connected=True, reason="connected", context=Context(origin="mqtt")
                        )
                    )
                    try:
                        async for _ in client.messages:  # ends only on disconnect
                            pass
                    except asyncio.CancelledError:
                        # A clean stop is no unexpected disconnect, so the will won't fire.
                        with contextlib.suppress(MqttError, TimeoutError):
                            await asyncio.wait_for(client.publish(status, b"offline", qos=1, retain=True), 2)
                        raise
                    finally:
                        self._connected.clear()
                        self._client = None
                        self._bus.fire(
                            MqttConnectionChanged(
                                connected=False,
                                reason="disconnected",
                                context=Context(origin="mqtt"),
                            )
                        )
            except MqttError as exc:
                self._connected.clear()
                self._client = None
                code = _reason_value(exc)
                if code in _AUTH_FAILURES or (
                    isinstance(exc, MqttCodeError) and "not authori" in str(exc).lower()
                ):
                    self.auth_error = (
                        f"MQTT broker {settings.host}:{settings.port} refused the credentials "
                        f"for user {settings.username or '(anonymous)'!r} ({exc}); "
                        "fix mqtt.username / mqtt.password — not retrying"
                    )
                    _LOGGER.error(self.auth_error)
                    self._resolve_first(MqttAuthError(self.auth_error))
                    return
                if time.monotonic() - started > 30:
                    attempt = 0  # it was a working connection, start the backoff afresh
                delay = backoff_delay(attempt, base=settings.reconnect_min_s, cap=settings.reconnect_max_s)
                attempt += 1
                log = _LOGGER.warning if attempt <= 3 or attempt % 20 == 0 else _LOGGER.debug
                log(
                    "MQTT link to %s:%d lost (%s); retry %d in %.1fs",
                    settings.host,
                    settings.port,
                    exc,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "connects": self.connects,
            "received": self.received,
            "unrouted": self.unrouted,
            "handler_errors": self.handler_errors,
        }
