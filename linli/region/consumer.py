"""A stateless regional consumer: a shared subscription in, batched idempotent upserts out.

Every consumer process subscribes with the same MQTT 5 shared subscription
(`$share/<group>/linli/v1/<region>/+/up/#`), so the broker gives each message
to one of them: adding a process adds capacity. A consumer keeps no state of
its own — everything is in PostgreSQL — and acknowledges a message (PUBACK)
only after the transaction that applied it committed. If it dies in between,
the broker delivers the message again (to the same client id when it comes
back: run each consumer with a stable `--index`), and the upsert ignores what
it already has.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
from aiomqtt import MqttError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.common.backoff import backoff_delay
from linli.common.config import host_port
from linli.common.ratelog import RateLimitedLog
from linli.region.deliveries import Ledger, log_path
from linli.region.ingest import BatchResult, apply_batch
from linli.region.schema import ensure_partitions, migrate
from linli.wire import topics
from linli.wire.client import RegionalClient, tls_context
from linli.wire.messages import EnvelopeError, Presence, decode, decode_presence

_LOGGER = logging.getLogger(__name__)
PARTITION_CHECK_S = 6 * 3600


def broker_settings(config: dict[str, Any], server: tuple[str, int] | None = None) -> dict[str, Any]:
    """Host, port, credentials and TLS of the regional broker (or of one node, `server`) for aiomqtt."""
    broker = config["broker"]
    host, port, use_tls = broker["host"], broker["port"], bool(broker.get("tls"))
    if "url" in broker:
        from yarl import URL

        url = URL(broker["url"])
        use_tls = use_tls or url.scheme == "mqtts"
        host, port = url.host or host, url.port or (8883 if url.scheme == "mqtts" else 1883)
    if server is not None:
        host, port = server
    tls = broker.get("tls", {})
    context = (
        tls_context(tls.get("ca_file"), tls.get("cert_file"), tls.get("key_file"), config_key="broker.tls")
        if use_tls
        else None
    )
    return {
        "hostname": host,
        "port": port,
        "username": broker.get("username"),
        "password": broker.get("password"),
        "tls_context": context,
    }


def broker_servers(config: dict[str, Any]) -> list[tuple[str, int] | None]:
    """The nodes to try in turn: `[broker] servers`, or the one broker (None: host/port/url)."""
    nodes: list[tuple[str, int] | None] = [host_port(text) for text in config["broker"].get("servers") or []]
    return nodes or [None]


class Consumer:
    """One consumer process's loop; `index` makes its client id stable across restarts."""

    def __init__(self, config: dict[str, Any], index: int = 0) -> None:
        self.config = config
        self.region = config["region"]["id"]
        prefix = config["broker"]["client_prefix"]
        self.client_id = f"{prefix}-{socket.gethostname()}-{index}"[:64]
        self.index = index
        self._pending: collections.deque[aiomqtt.Message] = collections.deque()
        self._arrivals: collections.deque[float] = collections.deque()  # each pending message's receipt
        self._arrived = asyncio.Event()
        self._db: asyncpg.Connection | None = None
        self.received = 0
        self.applied = 0
        self.duplicates = 0
        self.malformed = 0
        self.batches = 0
        self.sessions = 0  # sessions that got as far as consuming (the retry loop's backoff restarts)
        self.connected = asyncio.Event()
        self._malformed_log = RateLimitedLog(_LOGGER)  # once a minute
        # Every delivery counted as delivered (the drills read it); logged if the region has a data_dir.
        data_dir = Path(config["region"]["data_dir"])
        self.ledger = Ledger(log_path(data_dir, self.client_id) if data_dir.is_dir() else None)

    # -- database ----------------------------------------------------------------

    async def _database(self) -> asyncpg.Connection:
        if self._db is None or self._db.is_closed():
            self._db = await asyncpg.connect(self.config["database"]["dsn"], timeout=10)
            await migrate(self._db, self.region)
        return self._db

    async def _close_database(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None

    # -- MQTT ----------------------------------------------------------------------

    def _client(self) -> RegionalClient:
        consumer = self.config["consumer"]
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = consumer["session_expiry_s"]
        props.ReceiveMaximum = consumer["receive_maximum"]
        pending, arrived, arrivals = self._pending, self._arrived, self._arrivals

        class _Collect(asyncio.Queue[aiomqtt.Message]):
            """Straight from the receive callback into the batch (no task per message)."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                pending.append(item)
                arrivals.append(time.time())  # the delivery ledger's arrival order, to the message
                arrived.set()

        client = RegionalClient(
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=30,
            timeout=10,
            queue_type=_Collect,
            **broker_settings(self.config),
        )
        client.manual_acks()
        return client

    async def run(self) -> None:
        """Consume until cancelled: reconnecting to the broker and the database as needed."""
        attempt = 0
        while True:
            started, sessions = time.monotonic(), self.sessions
            try:
                await self._database()
                reason = await self._session()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                reason = f"database: {type(exc).__name__}: {exc}"
                await self._close_database()
            finally:
                self.connected.clear()
            if self.sessions != sessions or time.monotonic() - started > 30:
                attempt = 0  # it was a working session: start the backoff afresh
            # A handful of consumers, not thousands of gateways: retry soon (the gateways wait for them).
            delay = backoff_delay(attempt, base=0.2, cap=5.0, floor=0.05)
            attempt += 1
            log = _LOGGER.warning if attempt <= 2 or attempt % 20 == 0 else _LOGGER.debug
            log("region consumer %s: %s; retry %d in %.1fs", self.client_id, reason, attempt, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> str:
        """Connect to the broker and consume until the connection ends; why it ended."""
        try:
            async with self._client() as client:
                await self._serve(client)
        except MqttError as exc:
            return f"broker: {exc}"
        finally:
            self._pending.clear()  # not acknowledged: the broker delivers them again
            self._arrivals.clear()
        return "connection ended"

    async def _serve(self, client: RegionalClient) -> None:
        group = self.config["broker"]["group"]
        await client.subscribe([(topics.shared(group, f), 1) for f in topics.region_up_filters(self.region)])
        self.sessions += 1
        self.connected.set()
        _LOGGER.info("region consumer %s consuming %s in group %s", self.client_id, self.region, group)
        pump = asyncio.create_task(self._pump(client), name="region-consumer-pump")
        try:
            await self._batches(client, pump)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, MqttError):
                await pump

    async def _pump(self, client: RegionalClient) -> None:
        async for _ in client.messages:  # ends only on disconnect (messages go to _Collect)
            pass

    async def _batches(self, client: RegionalClient, pump: asyncio.Task[None]) -> None:
        consumer = self.config["consumer"]
        size, window = consumer["batch"], consumer["batch_ms"] / 1000
        next_partition_check = time.monotonic() + PARTITION_CHECK_S
        while True:
            if not self._pending:
                self._arrived.clear()
                waiter = asyncio.create_task(self._arrived.wait())
                done, _ = await asyncio.wait((waiter, pump), return_when=asyncio.FIRST_COMPLETED)
                if pump in done:
                    waiter.cancel()
                    pump.result()
                    raise MqttError("regional broker connection ended")
                continue
            if len(self._pending) < size:
                await asyncio.sleep(window)  # let a batch gather
            taken = min(size, len(self._pending))
            batch = [self._pending.popleft() for _ in range(taken)]
            result = await self.async_apply(batch, [self._arrivals.popleft() for _ in range(taken)])
            for message in batch:
                client.ack(message)  # only now: the transaction has committed
            self.batches += 1
            self.applied += result.new
            self.duplicates += result.duplicates
            if time.monotonic() > next_partition_check:
                next_partition_check = time.monotonic() + PARTITION_CHECK_S
                await ensure_partitions(await self._database(), self.region)

    async def async_apply(
        self, batch: list[aiomqtt.Message], arrived: Sequence[float] | None = None
    ) -> BatchResult:
        return await self.async_apply_items(
            [
                (m.topic.value, m.payload if isinstance(m.payload, bytes) else str(m.payload).encode())
                for m in batch
            ],
            arrived,
        )

    async def async_apply_items(
        self, batch: list[tuple[str, bytes]], arrived: Sequence[float] | None = None
    ) -> BatchResult:
        """Decode (MQTT topic, payload) pairs with linli.wire and upsert them in one transaction.

        `arrived`: each item's receipt time (wall clock), for the delivery ledger; without it,
        the batch's items are taken as arriving now, in their order.
        """
        envelopes, presence = [], []
        taken_up = time.time()
        deliveries: list[tuple[str, int, float]] = []  # for the ledger: gateway, seq, arrived
        for index, (topic, payload) in enumerate(batch):
            self.received += 1
            where = topics.parse_up(topic)
            if where is None:
                self._bad(topic, "not an upward topic")
                continue
            region, community, kind = where
            if kind == topics.PRESENCE:
                item: Presence | None = decode_presence(region, community, payload, received_at=time.time())
                if item is None:
                    self._bad(topic, "presence is not {state, gateway, ts}")
                else:
                    presence.append(item)
                continue
            try:
                envelope = decode(payload)
            except EnvelopeError as exc:
                self._bad(topic, str(exc))
                continue
            if (envelope.region, envelope.community, envelope.kind) != (region, community, kind):
                # A gateway may speak only for its own community (the broker's ACL gives it its topic).
                self._bad(topic, f"envelope says {envelope.region}/{envelope.community}/{envelope.kind}")
                continue
            envelopes.append(envelope)
            at = arrived[index] if arrived is not None else taken_up
            deliveries.append((envelope.gateway, envelope.seq, at))
        self.ledger.record_batch(deliveries)
        for attempt in range(1, 6):
            try:
                result = await apply_batch(await self._database(), envelopes, presence)
                self.ledger.absorbed((e.gateway, e.seq) for e in result.absorbed)
                return result
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                # Rows are locked in one order, so this is rare; the batch is simply applied again.
                if attempt == 5:
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def _bad(self, topic: str, why: str) -> None:
        self.malformed += 1
        self._malformed_log.warning(
            "region consumer: message on %s dropped (%s); %d malformed so far", topic, why, self.malformed
        )

    def stats(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "received": self.received,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "batches": self.batches,
            "deliveries": self.ledger.stats(),
        }

    async def async_close(self) -> None:
        await self._close_database()
        self.ledger.close()
