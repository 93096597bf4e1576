"""The relay: one MQTT 5 connection to the regional broker, publishing the outbox in order.

* Persistent session (clean start off, a session expiry), so the downlink
  messages the region sends while a gateway is away wait for it at the broker.
* Rows go out in `seq` order, QoS 1, up to the in-flight window (and never past
  the broker's Receive Maximum); a row leaves the outbox only after its PUBACK
  carried a success reason code. A broken connection or a refusal leaves the
  rest in the outbox, to be sent again — the region ignores what it already has.
* A PUBACK saying "no matching subscribers" (0x10) is not a delivery: nobody in
  the region has the event. It happens when a broker restarts and forgets the
  consumers' shared subscriptions until they resubscribe (Mosquitto 2.0 does).
  The row stays and is sent again after a backoff.
* Reconnects with exponential backoff and full jitter, so thousands of gateways
  coming back after a regional outage spread out instead of stampeding.
* Fails over: with `[uplink] servers` (the nodes of a clustered engine) each
  new session after a failure goes to the next node, and stays there while it
  works. The rows not yet PUBACKed are sent again on the new node, in order.
* Presence: `online` retained on connect, `offline` as the last will.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
from aiomqtt import MqttError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.common.backoff import backoff_delay
from linli.common.ratelog import RateLimitedLog
from linli.gateway.store import Store
from linli.gateway.uplink.outbox import mark_delivered, read_batch
from linli.gateway.uplink.settings import UplinkSettings, address
from linli.wire import messages, topics
from linli.wire.client import PublishRefusedError, RegionalClient

_LOGGER = logging.getLogger(__name__)
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code: accepted, but nobody subscribed

DownlinkHandler = Callable[[str, bytes], Awaitable[None]]


def _reconnect_delay(attempt: int, s: UplinkSettings) -> float:
    # Jittered all the way down to a twentieth of a second: after a regional broker restarts,
    # thousands of gateways must not all come back at `reconnect_min_s` together.
    return backoff_delay(attempt, base=s.reconnect_min_s, cap=s.reconnect_max_s, floor=0.05)


class Relay:
    """Publishes the outbox and receives the downlink, for as long as it runs."""

    def __init__(
        self,
        settings: UplinkSettings,
        store: Store,
        on_downlink: DownlinkHandler,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._on_downlink = on_downlink
        self._on_connection = on_connection
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.published = 0
        self.delivered = 0
        self.connects = 0
        self.refusals = 0
        self.last_error: str | None = None
        self._session_ts = 0.0
        self._server_index = 0  # which of settings.servers the next session goes to
        self.unrouted = 0  # consecutive batches the broker had no subscriber for
        self._unrouted_log = RateLimitedLog(_LOGGER)  # once a minute

    # -- waking ------------------------------------------------------------------

    def wake(self) -> None:
        """Something was committed to the outbox (loop thread)."""
        self._wake.set()

    def wake_threadsafe(self) -> None:
        """Called by `outbox.enqueue` on the store's writer thread, just before its COMMIT."""
        # A little later than at once, so the relay's read usually finds the row committed;
        # the poll interval catches the rare read that does not.
        self._loop.call_soon_threadsafe(self._loop.call_later, 0.005, self._wake.set)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def server(self) -> tuple[str, int]:
        """The node this session uses (or the next one tries): it changes only when a session fails."""
        return self.settings.servers[self._server_index]

    async def async_wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    # -- the connection ----------------------------------------------------------

    def _presence(self, state: str) -> bytes:
        # One timestamp per connection for its birth, its will and its goodbye (why: linli/wire/messages.py).
        return messages.encode_presence(state, gateway=self.settings.gateway_id, ts=self._session_ts)

    def _client(self) -> RegionalClient:
        s = self.settings
        self._session_ts = time.time()
        session: dict[str, Any]
        if s.mqtt_version == "3.1.1":
            # A persistent session the 3.1.1 way (no expiry: the broker keeps it until told otherwise).
            # No reason codes either: a PUBACK is success, so "no matching subscribers" cannot be
            # told apart — the engine then must keep the messages itself (a JetStream stream does).
            session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
        else:
            connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho's __init__ is unannotated
            connect.SessionExpiryInterval = s.session_expiry_s
            session = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False, "properties": connect}
        host, port = self.server
        return RegionalClient(
            host,
            port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            max_inflight_messages=s.inflight,
            tls_context=s.tls,
            **session,
            will=aiomqtt.Will(
                topics.presence_topic(s.region, s.community),
                self._presence(messages.OFFLINE),
                qos=1,
                retain=True,
            ),
        )

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled."""
        s = self.settings
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                client = self._client()
                async with client:
                    attempt = 0
                    await self._serve(client)
            except MqttError as exc:
                self.last_error = str(exc)
            except Exception as exc:  # a bug here must not end the uplink for good
                self.last_error = f"{type(exc).__name__}: {exc}"
                _LOGGER.exception("uplink session failed unexpectedly; reconnecting")
            finally:
                if self._connected.is_set():
                    self._connected.clear()
                    if self._on_connection is not None:
                        self._on_connection(False)
            if time.monotonic() - started > 30:
                attempt = 0  # it was a working connection: start the backoff afresh
            failed = address(self.server)
            # The next try goes to the cluster's next node: the one that failed may be down for long.
            self._server_index = (self._server_index + 1) % len(s.servers)
            delay = _reconnect_delay(attempt, s)
            attempt += 1
            log = _LOGGER.warning if attempt <= 2 or attempt % 20 == 0 else _LOGGER.debug
            log(
                "uplink to %s unavailable (%s); the gateway works on locally, retry %d in %.1fs at %s",
                failed,
                self.last_error,
                attempt,
                delay,
                address(self.server),
            )
            await asyncio.sleep(delay)

    async def _serve(self, client: RegionalClient) -> None:
        s = self.settings
        if client.receive_maximum:
            client.set_inflight(min(s.inflight, client.receive_maximum))
        await client.subscribe([(f, 1) for f in topics.down_filters(s.region, s.community)])
        await client.publish_acked(
            topics.presence_topic(s.region, s.community), self._presence(messages.ONLINE), retain=True
        )
        self.connects += 1
        self._connected.set()
        if self._on_connection is not None:
            self._on_connection(True)
        _LOGGER.info("uplink connected to region %s at %s as %s", s.region, address(self.server), s.client_id)
        drain = asyncio.create_task(self._drain(client), name="linli-uplink-drain")
        receive = asyncio.create_task(self._receive(client), name="linli-uplink-downlink")
        try:
            done, _ = await asyncio.wait((drain, receive), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raises what ended the session
            raise MqttError("uplink session ended")
        except asyncio.CancelledError:
            # A clean stop is no unexpected disconnect, so the will would not fire: say it.
            with contextlib.suppress(MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish_acked(
                        topics.presence_topic(s.region, s.community),
                        self._presence(messages.OFFLINE),
                        retain=True,
                    ),
                    2,
                )
            raise
        finally:
            client.fail_pending(MqttError("uplink connection closed"))
            for task in (drain, receive):
                task.cancel()
            for task in (drain, receive):
                with contextlib.suppress(asyncio.CancelledError, MqttError):
                    await task

    async def _receive(self, client: RegionalClient) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            try:
                await self._on_downlink(message.topic.value, bytes(payload))
            except Exception:
                _LOGGER.exception("handling downlink message on %s failed", message.topic.value)

    async def _drain(self, client: RegionalClient) -> None:
        s = self.settings
        cursor = 0  # rows up to here were published on this connection
        store = self._store
        while True:
            rows = await store.async_read(functools.partial(read_batch, after_seq=cursor, limit=s.batch_rows))
            if not rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), s.poll_s)
                continue
            started = time.monotonic()
            pending = []
            for row in rows:
                body = messages.encode(row, region=s.region, community=s.community, gateway=s.gateway_id)
                pending.append(
                    (row.seq, client.publish_acked(topics.up_topic(s.region, s.community, row.kind), body))
                )
            self.published += len(pending)
            acked: list[int] = []
            unrouted = False
            try:
                for seq, future in pending:
                    if (await future).value == NO_MATCHING_SUBSCRIBERS:
                        unrouted = True
                        break
                    acked.append(seq)
            except PublishRefusedError as exc:
                self.refusals += 1
                self.last_error = str(exc)
                raise
            finally:
                if acked:
                    await store.async_write(functools.partial(mark_delivered, seqs=acked))
                    self.delivered += len(acked)
            if unrouted:
                # The broker took it but had nobody to give it to: the region's consumers are not
                # subscribed (a broker restart forgets shared subscriptions until they come back).
                # Keep it, and send again from here after a while — never count it delivered.
                self.unrouted += 1
                cursor = acked[-1] if acked else rows[0].seq - 1
                delay = _reconnect_delay(min(self.unrouted, 6), s)
                self._unrouted_log.warning(
                    "uplink: the regional broker has no consumer for %s yet (PUBACK: no matching "
                    "subscribers); the outbox keeps it and sends again in %.1fs",
                    topics.up_topic(s.region, s.community, "…"),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.unrouted = 0
            cursor = rows[-1].seq
            if s.max_rate > 0:
                # Spread a backlog out: no more than max_rate messages a second.
                await asyncio.sleep(max(0.0, len(rows) / s.max_rate - (time.monotonic() - started)))

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "server": address(self.server),
            "connects": self.connects,
            "published": self.published,
            "delivered": self.delivered,
            "refusals": self.refusals,
            "unrouted": self.unrouted,
            "last_error": self.last_error,
        }
